//! [`OtlpReceiver`]: a real OTLP/HTTP endpoint for trace tests.
//!
//! The services export spans with the OpenTelemetry SDK's OTLP exporter
//! (`POST /v1/traces`, protobuf `ExportTraceServiceRequest`, OTLP
//! specification §OTLP/HTTP). This receiver decodes those requests with the
//! `opentelemetry-proto` types and keeps every span, flattened with its
//! resource's `service.name` and `service.instance.id`, so a test can look
//! for one trace across replicas.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::{AnyValue, KeyValue, any_value},
};
use prost::Message;

/// One span as the receiver got it (ids as lowercase hex).
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The trace id (32 hex digits).
    pub trace_id: String,
    /// The span id (16 hex digits).
    pub span_id: String,
    /// The parent's span id; empty for a root span.
    pub parent_span_id: String,
    /// The span's name.
    pub name: String,
    /// The resource's `service.name`.
    pub service_name: String,
    /// The resource's `service.instance.id` (the replica id).
    pub service_instance: String,
    /// The span's attributes, values as text.
    pub attributes: BTreeMap<String, String>,
    /// The span contexts it links to, as `(trace id, span id)`.
    pub links: Vec<(String, String)>,
}

/// An OTLP/HTTP trace receiver on a free loopback port; stops when dropped.
pub struct OtlpReceiver {
    endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    /// Starts the receiver.
    pub async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(spans.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OTLP receiver");
        let endpoint = format!("http://{}", listener.local_addr().expect("local address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            endpoint,
            spans,
            task,
        }
    }

    /// The base URL for `OTEL_EXPORTER_OTLP_ENDPOINT` (`http://127.0.0.1:<port>`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("spans").clone()
    }

    /// The spans received once `done` holds of them, polling for at most
    /// `within`; panics with what was received otherwise.
    pub async fn wait_for(
        &self,
        within: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let started = Instant::now();
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(
                started.elapsed() < within,
                "the spans expected did not arrive within {within:?}; got:\n{spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `POST /v1/traces`: decodes and keeps the spans.
async fn receive(
    State(spans): State<Arc<Mutex<Vec<ReceivedSpan>>>>,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|resource| resource.attributes)
            .unwrap_or_default();
        let service_name = attribute(&resource, "service.name");
        let service_instance = attribute(&resource, "service.instance.id");
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    service_name: service_name.clone(),
                    service_instance: service_instance.clone(),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|pair| (pair.key.clone(), text(pair.value.as_ref())))
                        .collect(),
                    links: span
                        .links
                        .iter()
                        .map(|link| (hex(&link.trace_id), hex(&link.span_id)))
                        .collect(),
                });
            }
        }
    }
    spans.lock().expect("spans").extend(received);
    let response = ExportTraceServiceResponse::default().encode_to_vec();
    (StatusCode::OK, response)
}

fn attribute(attributes: &[KeyValue], key: &str) -> String {
    attributes
        .iter()
        .find(|pair| pair.key == key)
        .map(|pair| text(pair.value.as_ref()))
        .unwrap_or_default()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(any_value::Value::IntValue(number)) => number.to_string(),
        Some(any_value::Value::BoolValue(flag)) => flag.to_string(),
        Some(any_value::Value::DoubleValue(number)) => number.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
