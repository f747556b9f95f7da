//! Test support for adapters (feature `testing`): explicit in-memory providers, span and metric
//! lookups, and service URLs that fail loudly when the service is down.
//!
//! Tests never touch the global providers, so they run in parallel.
//!
//! ```
//! use opentelemetry::trace::SpanKind;
//! use tracewire_shared::{Instrumentation, config::Domain, record::SpanRequest, testing::Telemetry};
//!
//! let telemetry = Telemetry::new();
//! let inst = Instrumentation::new(telemetry.config(), "t", "0", Domain::Database);
//! inst.start(SpanRequest::client("GET"), |_| {}).end_ok();
//! let span = telemetry.span("GET");
//! assert_eq!(span.span_kind, SpanKind::Client);
//! ```

use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData};

use crate::Config;

pub mod paired;

/// In-memory tracer and meter providers wired to exporters a test can read.
#[derive(Clone, Debug)]
pub struct Telemetry {
    /// Finished spans land here (through a simple, synchronous processor).
    pub spans: InMemorySpanExporter,
    /// The tracer provider to pass to adapters.
    pub tracer_provider: SdkTracerProvider,
    /// Metrics land here on [`Telemetry::metrics`].
    pub metric_exporter: InMemoryMetricExporter,
    /// The meter provider to pass to adapters.
    pub meter_provider: SdkMeterProvider,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Providers that sample everything.
    pub fn new() -> Self {
        Self::with_sampler(Sampler::AlwaysOn)
    }

    /// Providers that sample nothing (root spans are dropped; children follow their parent).
    pub fn unsampled() -> Self {
        Self::with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
    }

    /// Providers with `sampler`.
    pub fn with_sampler(sampler: Sampler) -> Self {
        let spans = InMemorySpanExporter::default();
        let tracer_provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_simple_exporter(spans.clone())
            .build();
        let metric_exporter = InMemoryMetricExporter::default();
        let meter_provider = SdkMeterProvider::builder()
            .with_periodic_exporter(metric_exporter.clone())
            .build();
        Self {
            spans,
            tracer_provider,
            metric_exporter,
            meter_provider,
        }
    }

    /// A [`Config`] using these providers and the W3C trace-context propagator.
    pub fn config(&self) -> Config {
        Config::new()
            .with_tracer_provider(self.tracer_provider.clone())
            .with_meter_provider(self.meter_provider.clone())
            .with_propagator(TraceContextPropagator::new())
    }

    /// Every finished span so far.
    pub fn finished(&self) -> Vec<SpanData> {
        self.spans.get_finished_spans().unwrap_or_default()
    }

    /// The one finished span called `name`; panics (it is a test) when there are none or several.
    pub fn span(&self, name: &str) -> SpanData {
        let mut found: Vec<SpanData> = self
            .finished()
            .into_iter()
            .filter(|s| s.name == name)
            .collect();
        let names: Vec<String> = self.finished().iter().map(|s| s.name.to_string()).collect();
        assert_eq!(
            found.len(),
            1,
            "expected one span named {name:?}, finished spans: {names:?}"
        );
        found.remove(0)
    }

    /// Finished spans of `kind`.
    pub fn spans_of_kind(&self, kind: SpanKind) -> Vec<SpanData> {
        self.finished()
            .into_iter()
            .filter(|s| s.span_kind == kind)
            .collect()
    }

    /// Starts an INTERNAL span named `name` from this provider and returns a context holding it, to
    /// parent the operations under test. The span ends when the last clone of the context is dropped.
    pub fn parent(&self, name: &'static str) -> Context {
        let tracer = self.tracer_provider.tracer("tracewire-test");
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .start(&tracer);
        Context::new().with_span(span)
    }

    /// Collects and returns every metric data point, flattened.
    pub fn metrics(&self) -> Vec<MetricPoint> {
        self.metric_exporter.reset();
        let _ = self.meter_provider.force_flush();
        let mut points = Vec::new();
        for rm in self
            .metric_exporter
            .get_finished_metrics()
            .unwrap_or_default()
        {
            for sm in rm.scope_metrics() {
                for m in sm.metrics() {
                    flatten(m.name(), m.unit(), m.data(), &mut points);
                }
            }
        }
        points
    }

    /// The data points of metric `name`.
    pub fn metric(&self, name: &str) -> Vec<MetricPoint> {
        self.metrics()
            .into_iter()
            .filter(|p| p.name == name)
            .collect()
    }
}

/// One metric data point, flattened for assertions.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    /// Instrument name.
    pub name: String,
    /// Instrument unit.
    pub unit: String,
    /// `histogram`, `sum` or `gauge`.
    pub kind: &'static str,
    /// The point's attributes.
    pub attributes: Vec<KeyValue>,
    /// Histogram: number of recordings; sum and gauge: 0.
    pub count: u64,
    /// Histogram: sum of recordings; sum and gauge: the value.
    pub value: f64,
    /// Histogram bucket boundaries (empty for others).
    pub bounds: Vec<f64>,
}

impl MetricPoint {
    /// The value of attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    /// The value of attribute `key` as text (any value type, as `Value::as_str` renders it).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use tracewire_shared::testing::MetricPoint;
    ///
    /// let point = MetricPoint {
    ///     name: "db.client.operation.duration".into(),
    ///     unit: "s".into(),
    ///     kind: "histogram",
    ///     attributes: vec![KeyValue::new("db.namespace", "shop")],
    ///     count: 1,
    ///     value: 0.01,
    ///     bounds: vec![],
    /// };
    /// assert_eq!(point.attr_str("db.namespace").as_deref(), Some("shop"));
    /// assert_eq!(point.attr_str("error.type"), None);
    /// ```
    pub fn attr_str(&self, key: &str) -> Option<String> {
        self.attr(key).map(|v| v.as_str().into_owned())
    }
}

/// A span exporter that drops everything: benchmarks pay for recording and batching, not for I/O.
///
/// ```
/// use tracewire_shared::testing::bench_tracer_provider;
///
/// let sampled = bench_tracer_provider(true);
/// let unsampled = bench_tracer_provider(false);
/// # let _ = (sampled, unsampled);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopExporter;

impl opentelemetry_sdk::trace::SpanExporter for NoopExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

/// The tracer provider benchmarks compare against: a `BatchSpanProcessor` over [`NoopExporter`],
/// sampling everything (`sampled`) or nothing.
pub fn bench_tracer_provider(sampled: bool) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(if sampled {
            Sampler::AlwaysOn
        } else {
            Sampler::AlwaysOff
        })
        .with_batch_exporter(NoopExporter)
        .build()
}

/// The number types metric points come in.
trait Number: Copy {
    fn to_f64(self) -> f64;
}

impl Number for f64 {
    fn to_f64(self) -> f64 {
        self
    }
}

impl Number for u64 {
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Number for i64 {
    fn to_f64(self) -> f64 {
        self as f64
    }
}

fn flatten(name: &str, unit: &str, data: &AggregatedMetrics, out: &mut Vec<MetricPoint>) {
    match data {
        AggregatedMetrics::F64(d) => push(name, unit, d, out),
        AggregatedMetrics::U64(d) => push(name, unit, d, out),
        AggregatedMetrics::I64(d) => push(name, unit, d, out),
    }
}

fn push<T: Number>(name: &str, unit: &str, data: &MetricData<T>, out: &mut Vec<MetricPoint>) {
    let point = |kind, attributes: Vec<KeyValue>, count, value: T, bounds| MetricPoint {
        name: name.to_owned(),
        unit: unit.to_owned(),
        kind,
        attributes,
        count,
        value: value.to_f64(),
        bounds,
    };
    match data {
        MetricData::Histogram(h) => out.extend(h.data_points().map(|p| {
            point(
                "histogram",
                p.attributes().cloned().collect(),
                p.count(),
                p.sum(),
                p.bounds().collect(),
            )
        })),
        MetricData::Sum(s) => out.extend(s.data_points().map(|p| {
            point(
                "sum",
                p.attributes().cloned().collect(),
                0,
                p.value(),
                Vec::new(),
            )
        })),
        MetricData::Gauge(g) => out.extend(g.data_points().map(|p| {
            point(
                "gauge",
                p.attributes().cloned().collect(),
                0,
                p.value(),
                Vec::new(),
            )
        })),
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// The value of attribute `key` on a finished span.
///
/// ```
/// use tracewire_shared::testing::{Telemetry, attr};
/// # use tracewire_shared::{Instrumentation, config::Domain, record::SpanRequest};
/// # use opentelemetry::KeyValue;
/// let telemetry = Telemetry::new();
/// # let inst = Instrumentation::new(telemetry.config(), "t", "0", Domain::Database);
/// # inst.start(SpanRequest::client("GET"), |a| a.push(KeyValue::new("k", "v"))).end_ok();
/// let span = telemetry.span("GET");
/// assert_eq!(attr(&span, "k").map(|v| v.as_str().into_owned()), Some("v".to_string()));
/// ```
pub fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// The value of string attribute `key` on a finished span.
pub fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

/// The URL of a service from environment variable `var`, else `default`, after checking that its
/// TCP port accepts connections. When it does not, the test fails with a message saying how to start
/// the service: a test never passes silently without its service.
pub fn service_url(service: &str, var: &str, default: &str) -> String {
    let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let parsed =
        url::Url::parse(&url).unwrap_or_else(|e| panic!("{var}={url:?} is not a URL: {e}"));
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = parsed
        .port_or_known_default()
        .unwrap_or(match parsed.scheme() {
            "postgres" | "postgresql" => 5432,
            "mysql" | "mariadb" => 3306,
            "redis" => 6379,
            "amqp" => 5672,
            _ => 0,
        });
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3)).is_ok()
        });
    assert!(
        reachable,
        "{service} is not reachable at {host}:{port} ({var}={url}). Start it with `scripts/services up {service}` \
         (or `docker compose -f docker/compose.yml up -d {service}`), or point {var} at a running server."
    );
    url
}
