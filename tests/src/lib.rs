//! Support for tracewire's cross-adapter tests: an in-process OTLP/gRPC receiver, a port nothing
//! listens on, and unique secrets to plant.
//!
//! The tests themselves live in `tests/`: `order_flow` (the tour against PostgreSQL, MariaDB, Redis
//! and RabbitMQ, one connected trace, no secret anywhere), `otlp_export` (spans and metrics reach an
//! OTLP receiver with their semantic-conventions attributes) and `collector_down` (a dead collector
//! changes nothing for the application).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

pub use opentelemetry_proto;

#[derive(Clone, Default)]
struct Store {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Store {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        if let Ok(mut traces) = self.traces.lock() {
            traces.push(request.into_inner());
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Store {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        if let Ok(mut metrics) = self.metrics.lock() {
            metrics.push(request.into_inner());
        }
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

/// An OTLP/gRPC receiver (trace and metrics services) on `127.0.0.1`, keeping what it receives.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let receiver = tracewire_tests::OtlpReceiver::start().await;
/// assert!(receiver.endpoint().starts_with("http://127.0.0.1:"));
/// assert!(receiver.spans().is_empty());
/// receiver.stop().await;
/// # }
/// ```
pub struct OtlpReceiver {
    addr: SocketAddr,
    store: Store,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl OtlpReceiver {
    /// Starts serving on a free port of 127.0.0.1.
    ///
    /// # Panics
    ///
    /// When no port can be bound (it is a test).
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OTLP receiver");
        let addr = listener.local_addr().expect("receiver address");
        let store = Store::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(store.clone()))
            .add_service(MetricsServiceServer::new(store.clone()));
        let task = tokio::spawn(async move {
            let _ = server
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            store,
            stop,
            task,
        }
    }

    /// The endpoint to give an OTLP/gRPC exporter.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received, with its resource and scope.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        let requests = self
            .store
            .traces
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        for request in requests {
            for rs in request.resource_spans {
                let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
                for ss in rs.scope_spans {
                    let scope = ss.scope.map(|s| s.name).unwrap_or_default();
                    for span in ss.spans {
                        out.push(ReceivedSpan {
                            resource: resource.clone(),
                            scope: scope.clone(),
                            span,
                        });
                    }
                }
            }
        }
        out
    }

    /// Every metric received, with its resource and scope (one entry per metric per export).
    pub fn metrics(&self) -> Vec<ReceivedMetric> {
        let requests = self
            .store
            .metrics
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        for request in requests {
            for rm in request.resource_metrics {
                let resource = rm.resource.map(|r| r.attributes).unwrap_or_default();
                for sm in rm.scope_metrics {
                    let scope = sm.scope.map(|s| s.name).unwrap_or_default();
                    for metric in sm.metrics {
                        out.push(ReceivedMetric {
                            resource: resource.clone(),
                            scope: scope.clone(),
                            metric,
                        });
                    }
                }
            }
        }
        out
    }

    /// Stops serving.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// One span as it arrived over OTLP.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    /// The resource's attributes (`service.name`, …).
    pub resource: Vec<KeyValue>,
    /// The instrumentation scope's name (the adapter crate).
    pub scope: String,
    /// The span.
    pub span: Span,
}

impl ReceivedSpan {
    /// The span attribute `key`, rendered as a string.
    pub fn attr(&self, key: &str) -> Option<String> {
        find(&self.span.attributes, key)
    }

    /// The resource attribute `key`, rendered as a string.
    pub fn resource_attr(&self, key: &str) -> Option<String> {
        find(&self.resource, key)
    }
}

/// One metric as it arrived over OTLP.
#[derive(Clone, Debug)]
pub struct ReceivedMetric {
    /// The resource's attributes.
    pub resource: Vec<KeyValue>,
    /// The instrumentation scope's name.
    pub scope: String,
    /// The metric.
    pub metric: Metric,
}

impl ReceivedMetric {
    /// The attributes of each data point, and its count (histograms) or value (sums, gauges).
    pub fn points(&self) -> Vec<(Vec<KeyValue>, f64)> {
        match &self.metric.data {
            Some(metric::Data::Histogram(h)) => h
                .data_points
                .iter()
                .map(|p| (p.attributes.clone(), p.count as f64))
                .collect(),
            Some(metric::Data::Sum(s)) => s
                .data_points
                .iter()
                .map(|p| (p.attributes.clone(), number(p.value.as_ref())))
                .collect(),
            Some(metric::Data::Gauge(g)) => g
                .data_points
                .iter()
                .map(|p| (p.attributes.clone(), number(p.value.as_ref())))
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn number(
    value: Option<&opentelemetry_proto::tonic::metrics::v1::number_data_point::Value>,
) -> f64 {
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
    match value {
        Some(Value::AsDouble(d)) => *d,
        Some(Value::AsInt(i)) => *i as f64,
        None => 0.0,
    }
}

/// The attribute `key` of `attributes`, rendered as a string.
pub fn find(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| render(kv.value.as_ref()))
}

/// Every string in `attributes` (values of any type, rendered), for "nothing carries X" checks.
pub fn rendered(attributes: &[KeyValue]) -> Vec<String> {
    attributes
        .iter()
        .map(|kv| format!("{}={}", kv.key, render(kv.value.as_ref())))
        .collect()
}

fn render(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|v| render(Some(v))).collect();
            format!("[{}]", items.join(","))
        }
        Some(any_value::Value::BytesValue(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// An address on 127.0.0.1 where nothing listens: bound, then released.
///
/// # Panics
///
/// When no port can be bound (it is a test).
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    listener.local_addr().expect("port")
}

/// A marker no other test (or run) uses, to plant in data and look for in telemetry.
pub fn secret(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "SECRET-{tag}-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique() {
        assert_ne!(secret("a"), secret("a"));
        assert!(secret("x").starts_with("SECRET-x-"));
    }

    #[test]
    fn closed_port_refuses_connections() {
        let addr = closed_port();
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
}

/// The repository README's examples, compiled as doctests so the quick starts cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
