//! The HTTP endpoint for Prometheus and probes: `/metrics` (OpenMetrics
//! text when the scraper asks for it, the Prometheus text format 0.0.4
//! otherwise), `/healthz` (the daemon's loops are running) and `/readyz` (every
//! planned resource is registered and the backend answers).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::format::{self, Format};
use super::{Metrics, Readiness};

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(
        "invalid --metrics-address {0:?}: expected HOST:PORT, [IPv6]:PORT or :PORT (all interfaces)"
    )]
    Address(String),
    #[error("cannot listen on metrics address {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

/// Addresses to try for a listen address, in order: `:PORT` means every
/// interface (IPv6 dual-stack first, then IPv4 only); anything else as given.
pub fn parse_listen_address(address: &str) -> Result<Vec<String>, MetricsError> {
    let invalid = || MetricsError::Address(address.to_string());
    let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
    port.parse::<u16>().map_err(|_| invalid())?;
    if host.is_empty() {
        return Ok(vec![format!("[::]:{port}"), format!("0.0.0.0:{port}")]);
    }
    if host.contains(char::is_whitespace) || (host.contains(':') && !host.starts_with('[')) {
        return Err(invalid());
    }
    Ok(vec![address.to_string()])
}

/// The running HTTP server; stops when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `address` and serves `/metrics`, `/healthz` and `/readyz` from `metrics`.
pub async fn serve(address: &str, metrics: Metrics) -> Result<MetricsServer, MetricsError> {
    let mut last = None;
    let mut bound = None;
    for candidate in parse_listen_address(address)? {
        match TcpListener::bind(&candidate).await {
            Ok(listener) => {
                bound = Some(listener);
                break;
            }
            Err(source) => last = Some(source),
        }
    }
    let bind_error = |source| MetricsError::Bind {
        address: address.to_string(),
        source,
    };
    let listener = match (bound, last) {
        (Some(listener), _) => listener,
        (None, Some(source)) => return Err(bind_error(source)),
        (None, None) => return Err(MetricsError::Address(address.to_string())),
    };
    let addr = listener.local_addr().map_err(bind_error)?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(metrics);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server failed");
        }
    });
    tracing::info!("metrics listening on http://{addr}");
    Ok(MetricsServer { addr, task })
}

async fn metrics_text(State(metrics): State<Metrics>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let chosen = format::negotiate(accept);
    let content_type = match chosen {
        Format::OpenMetrics => format::OPENMETRICS,
        Format::PrometheusText => format::PROMETHEUS_TEXT,
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        metrics.encode_as(chosen),
    )
}

async fn healthz(State(metrics): State<Metrics>) -> (StatusCode, String) {
    let dead = metrics.dead_loops();
    if dead.is_empty() {
        (StatusCode::OK, "ok\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stopped: {}\n", dead.join(", ")),
        )
    }
}

async fn readyz(State(metrics): State<Metrics>) -> (StatusCode, String) {
    match metrics.readiness() {
        Readiness::Ready => (StatusCode::OK, "ok\n".into()),
        Readiness::NotReady(reasons) => (
            StatusCode::SERVICE_UNAVAILABLE,
            reasons.iter().map(|r| format!("{r}\n")).collect(),
        ),
    }
}
