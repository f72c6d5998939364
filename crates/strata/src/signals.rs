//! The signals the long-running subcommands obey: Ctrl-C (SIGINT) and
//! SIGTERM stop them cleanly; SIGHUP asks the proxy to reload its cluster
//! file.
//!
//! The handlers are installed when [`stop`] or [`stop_or_reload`] is
//! *called*, not when the future is first polled: call it before binding
//! any listener, so a signal sent as soon as the process answers is never
//! met by the default action (death by SIGTERM, status 143).

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// Resolves on Ctrl-C or SIGTERM. Must be called inside the runtime.
pub fn stop() -> impl Future<Output = ()> {
    stop_or_reload(|| {})
}

/// Resolves on Ctrl-C or SIGTERM, calling `on_hangup` at every SIGHUP until
/// then. Signals that cannot be installed are ignored.
pub fn stop_or_reload(mut on_hangup: impl FnMut()) -> impl Future<Output = ()> {
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    async move {
        loop {
            let interrupted = async {
                match &mut interrupt {
                    Some(interrupt) => interrupt.recv().await,
                    None => std::future::pending().await,
                }
            };
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
                _ = interrupted => return,
                _ = terminated => return,
                _ = hung_up => on_hangup(),
            }
        }
    }
}
