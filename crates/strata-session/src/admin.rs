//! One way to serve Prometheus metrics over HTTP, for every process that
//! has them (the server's admin port, the request node's `/metrics`, the
//! invalidator's `--metrics-port`): the same content type, the same
//! error handling, the same graceful shutdown.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Encodes `registry` in the text format.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::with_capacity(8 * 1024);
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// The `/metrics` response for already encoded text, or a 500 if encoding
/// failed.
pub fn metrics_response(text: Result<String, std::fmt::Error>) -> Response {
    match text {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed\n").into_response(),
    }
}

/// A router with `GET /metrics` (rendered by `render` on every scrape)
/// and `GET /healthz` (`ok`), to serve as it is or merge into a larger
/// one.
pub fn metrics_router<F>(render: F) -> Router
where
    F: Fn() -> Result<String, std::fmt::Error> + Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let render = render.clone();
                async move { metrics_response(render()) }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
}

/// Serves `router` on `listener` until `shutdown`, logging (not failing)
/// if the listener breaks.
pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(error) = served {
        tracing::warn!(%error, "metrics endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[tokio::test]
    async fn serves_metrics_and_health() {
        let mut registry = Registry::default();
        let counter: Counter = Counter::default();
        registry.register("requests", "Requests served", counter.clone());
        counter.inc();
        let registry = std::sync::Arc::new(registry);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let router = metrics_router(move || encode(&registry));
        let task = tokio::spawn(serve(listener, router, shutdown.clone()));
        let body = http_get(addr, "/metrics").await;
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(body.contains(CONTENT_TYPE), "{body}");
        assert!(body.contains("requests_total 1"), "{body}");
        assert!(http_get(addr, "/healthz").await.ends_with("ok\n"));
        shutdown.cancel();
        task.await.unwrap();
    }

    async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }
}
