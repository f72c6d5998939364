//! The admin HTTP endpoint: `/metrics` (Prometheus text format) and
//! `/healthz`.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use strata_session::admin;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, PrometheusCollector};

/// Serves the admin endpoint until shutdown.
pub(crate) async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(PrometheusCollector(metrics)));
    let registry = Arc::new(registry);
    admin::serve(
        listener,
        admin::metrics_router(move || admin::encode(&registry)),
        shutdown,
    )
    .await;
}
