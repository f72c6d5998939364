//! The HTTP/JSON API.
//!
//! | route | does |
//! |---|---|
//! | `GET /items/{id}` | `200 {"id","value","version","updated_at_ms","source"}` or `404` |
//! | `PUT /items/{id}` | body `{"value": "…"}` → `200 {"status":"committed","version":N}` (write-behind: `202 {"status":"journaled","seq":N}`) |
//! | `DELETE /items/{id}` | `200 {"status":"committed","existed":bool}` (write-behind: `202`) |
//! | `GET /healthz` | `200 ok`, or `503` with the reason |
//! | `GET /metrics` | Prometheus text |
//!
//! Errors are JSON `{"error": "…"}`: 400 for a bad id or body, 413 for a
//! value over the limit, 503 when the origin is down or write-behind's
//! journal is full (retry later), 500 otherwise.
//!
//! # Trust
//!
//! With `api_token` set, the `/items` routes require `Authorization:
//! Bearer <token>` (RFC 6750); without it, or with another token, they
//! answer `401` with `WWW-Authenticate: Bearer realm="strata"` and touch
//! nothing. The token is compared in constant time ([`Secret::matches`]).
//! `/healthz` and `/metrics` stay open, as the server's admin port is:
//! load balancers and Prometheus scrape them without credentials, and
//! neither shows an item — only counts and health.
//!
//! With `[tls]` set, the API is served over HTTPS only (the same listener
//! speaks TLS; handshakes run on their own tasks with a deadline,
//! `strata_session::tls::TlsListener`).

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use strata_session::{Secret, TlsAcceptor, TlsFiles};
use tokio::net::TcpListener;

use crate::node::{MAX_VALUE_BYTES, Node, NodeError, WriteAck};

/// The router over `node`: `/items` behind the node's `api_token`, if it
/// has one.
pub fn router(node: Node) -> axum::Router {
    let mut items = axum::Router::new().route("/items/{id}", get(read).put(write).delete(remove));
    if let Some(token) = node.config().api_token.clone() {
        items = items.route_layer(axum::middleware::from_fn_with_state(token, require_token));
    }
    items
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_VALUE_BYTES + 4096))
        .with_state(node)
}

/// Serves `node` on `listener` until `shutdown` resolves: over TLS if the
/// node's config has `[tls]` (failing at once if its files cannot be
/// used), plain HTTP otherwise.
pub async fn serve(
    node: Node,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router(node.clone());
    match &node.config().tls {
        Some(tls) => {
            let files = TlsFiles::new(&tls.cert_file, &tls.key_file);
            let acceptor = TlsAcceptor::from_files(&files).map_err(std::io::Error::other)?;
            let listener = strata_session::tls::TlsListener::new(listener, acceptor)?;
            axum::serve(listener, router).with_graceful_shutdown(shutdown).await
        }
        None => axum::serve(listener, router).with_graceful_shutdown(shutdown).await,
    }
}

/// Lets a request through only with `Authorization: Bearer <token>`.
async fn require_token(State(token): State<Secret>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes())
        .map(|value| match value.get(..7) {
            // The scheme is case-insensitive (RFC 7235).
            Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => &value[7..],
            _ => b"",
        });
    match given {
        Some(given) if token.matches(given) => next.run(request).await,
        given => {
            // RFC 6750: say which scheme; `invalid_token` if one was sent.
            let challenge = if given.is_some() {
                "Bearer realm=\"strata\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"strata\""
            };
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required (Authorization: Bearer <token>)",
            );
            if let Ok(value) = header::HeaderValue::from_str(challenge) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
    }
}

#[derive(Deserialize)]
struct PutBody {
    value: String,
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(serde_json::json!({ "error": message.to_string() }))).into_response()
}

fn failure(failed: NodeError) -> Response {
    let status = match &failed {
        NodeError::BadRequest(_) => StatusCode::BAD_REQUEST,
        failed if failed.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, failed)
}

fn acknowledged(ack: WriteAck) -> Response {
    let status = match ack {
        WriteAck::Committed { .. } => StatusCode::OK,
        WriteAck::Journaled { .. } => StatusCode::ACCEPTED,
    };
    (status, Json(ack)).into_response()
}

async fn read(State(node): State<Node>, Path(id): Path<String>) -> Response {
    match node.get(&id).await {
        Ok(Some(item)) => Json(item).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no item {id:?}")),
        Err(failed) => failure(failed),
    }
}

/// The body is read as JSON whatever its declared content type, so a
/// plain `curl -d '{"value":"x"}'` (form-encoded by default) works.
async fn write(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) => return error(StatusCode::PAYLOAD_TOO_LARGE, rejection.body_text()),
    };
    let body: PutBody = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected a JSON body {{\"value\": \"…\"}}: {rejection}"),
            );
        }
    };
    if body.value.len() > MAX_VALUE_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "value of {} bytes exceeds the limit of {MAX_VALUE_BYTES}",
                body.value.len()
            ),
        );
    }
    match node.put(&id, &body.value).await {
        Ok(ack) => acknowledged(ack),
        Err(failed) => failure(failed),
    }
}

async fn remove(State(node): State<Node>, Path(id): Path<String>) -> Response {
    match node.delete(&id).await {
        Ok(ack) => acknowledged(ack),
        Err(failed) => failure(failed),
    }
}

async fn health(State(node): State<Node>) -> Response {
    match node.health().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {why}\n")).into_response(),
    }
}

async fn metrics(State(node): State<Node>) -> Response {
    strata_session::admin::metrics_response(node.metrics().render(node.pending_writes() as i64, node.l1_usable()))
}
