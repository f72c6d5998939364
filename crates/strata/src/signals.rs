//! The signals the long-running subcommands obey: Ctrl-C (SIGINT) and
//! SIGTERM stop them cleanly; SIGHUP asks the proxy to reload its cluster
//! file.

use tokio::signal::unix::{SignalKind, signal};

/// Returns on Ctrl-C or SIGTERM.
pub async fn stop() {
    stop_or_reload(|| {}).await;
}

/// Returns on Ctrl-C or SIGTERM, calling `on_hangup` at every SIGHUP until
/// then. Signals that cannot be installed are ignored (Ctrl-C still works).
pub async fn stop_or_reload(mut on_hangup: impl FnMut()) {
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    loop {
        let terminated = async {
            match &mut term {
                Some(term) => term.recv().await,
                None => std::future::pending().await,
            }
        };
        let hung_up = async {
            match &mut hup {
                Some(hup) => hup.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = terminated => return,
            _ = hung_up => on_hangup(),
        }
    }
}
