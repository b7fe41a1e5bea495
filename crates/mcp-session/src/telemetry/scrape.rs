//! `GET /metrics`: the Prometheus scrape of this replica, with the gauges that
//! are read at scrape time (sessions held, streams open, requests in flight,
//! the event buffer, the heap) set from what the replica holds.

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
};
use prometheus_client::encoding::prometheus_text;

use crate::{fleet::Fleet, metrics::Metrics, shutdown::Lifecycle};

/// What `GET /metrics` reads: the metrics, and where the gauges come from.
pub(crate) struct ScrapeState {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) fleet: Fleet,
    pub(crate) lifecycle: Arc<Lifecycle>,
}

/// `GET /metrics`.
pub(crate) fn routes(state: ScrapeState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(state))
}

/// `GET /metrics`: this replica's metrics, for a Prometheus scrape.
async fn scrape(State(state): State<Arc<ScrapeState>>) -> Response {
    state.fleet.update_gauges(state.lifecycle.in_flight()).await;
    if let Some(heap) = crate::allocator::heap() {
        state.metrics.set_heap(heap);
    }
    (
        [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}
