//! The providers the tour installs: every span kept in memory for the waterfall, and OTLP export when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracewire_shared::Config;

use crate::Error;

/// The service name when `OTEL_SERVICE_NAME` is not set.
pub const DEFAULT_SERVICE_NAME: &str = "tracewire-demo";

/// How long one OTLP export may take before it is abandoned.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to export OTLP.
///
/// ```
/// use tracewire_demo::OtlpTarget;
///
/// let grpc = OtlpTarget::from_values("http://localhost:4317", None).unwrap();
/// assert!(grpc.is_grpc());
/// let http = OtlpTarget::from_values("http://localhost:4318", None).unwrap();
/// assert!(!http.is_grpc());
/// let forced = OtlpTarget::from_values("http://collector:4317", Some("http/protobuf")).unwrap();
/// assert!(!forced.is_grpc());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpTarget {
    /// The collector's base URL (`http://localhost:4317`).
    pub endpoint: String,
    grpc: bool,
}

impl OtlpTarget {
    /// OTLP over gRPC to `endpoint`.
    pub fn grpc(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            grpc: true,
        }
    }

    /// OTLP http/protobuf to `endpoint` (the base URL; `/v1/traces` and `/v1/metrics` are appended).
    pub fn http(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            grpc: false,
        }
    }

    /// Whether the transport is gRPC (else http/protobuf).
    pub fn is_grpc(&self) -> bool {
        self.grpc
    }

    /// Reads `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_EXPORTER_OTLP_PROTOCOL`; `Ok(None)` when no endpoint
    /// is set.
    pub fn from_env() -> Result<Option<Self>, Error> {
        let Some(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .ok()
            .filter(|e| !e.trim().is_empty())
        else {
            return Ok(None);
        };
        let protocol = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").ok();
        Self::from_values(&endpoint, protocol.as_deref()).map(Some)
    }

    /// The target for an endpoint and an optional protocol (`grpc` or `http/protobuf`). Without a
    /// protocol, port 4318 (the collector's OTLP/HTTP port) means http/protobuf and anything else gRPC,
    /// so the usual `http://localhost:4317` works as it is.
    pub fn from_values(endpoint: &str, protocol: Option<&str>) -> Result<Self, Error> {
        let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
        match protocol.map(str::trim).filter(|p| !p.is_empty()) {
            Some("grpc") => Ok(Self::grpc(endpoint)),
            Some("http/protobuf") => Ok(Self::http(endpoint)),
            Some(other) => Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported by the demo (use `grpc` or `http/protobuf`)"
            )
            .into()),
            None if endpoint.ends_with(":4318") => Ok(Self::http(endpoint)),
            None => Ok(Self::grpc(endpoint)),
        }
    }
}

impl fmt::Display for OtlpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = if self.grpc { "grpc" } else { "http/protobuf" };
        write!(f, "{} ({protocol})", self.endpoint)
    }
}

/// A span exporter that keeps every finished span, for the waterfall.
#[derive(Clone, Debug, Default)]
pub struct SpanCollector(Arc<Mutex<Vec<SpanData>>>);

impl SpanCollector {
    /// The spans finished so far.
    pub fn spans(&self) -> Vec<SpanData> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl SpanExporter for SpanCollector {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if let Ok(mut spans) = self.0.lock() {
            spans.extend(batch);
        }
        Ok(())
    }
}

/// The tour's tracer and meter providers.
///
/// Spans go to a [`SpanCollector`] through a simple processor (so they are there as soon as they
/// end) and, with an [`OtlpTarget`], to an OTLP exporter through a batch processor. Metrics are
/// exported over OTLP only. Build it inside a tokio runtime (the gRPC client needs one) and call
/// [`shutdown`](Self::shutdown) before the runtime ends, so everything is flushed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tracewire_demo::Error> {
/// use tracewire_demo::DemoTelemetry;
///
/// let telemetry = DemoTelemetry::new("tracewire-demo", None)?;
/// let config = telemetry.config(); // hand it to the adapters
/// # let _ = config;
/// telemetry.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DemoTelemetry {
    tracer_provider: SdkTracerProvider,
    meter_provider: Option<SdkMeterProvider>,
    spans: SpanCollector,
    target: Option<OtlpTarget>,
}

impl DemoTelemetry {
    /// From the environment: `OTEL_SERVICE_NAME` (default `tracewire-demo`),
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn from_env() -> Result<Self, Error> {
        let name = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
        Self::new(name, OtlpTarget::from_env()?)
    }

    /// Providers for service `name`, exporting to `target` when given.
    pub fn new(name: impl Into<String>, target: Option<OtlpTarget>) -> Result<Self, Error> {
        let resource = Resource::builder().with_service_name(name.into()).build();
        let spans = SpanCollector::default();
        let mut tracer = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_simple_exporter(spans.clone());
        let mut meter_provider = None;
        if let Some(target) = &target {
            tracer = tracer.with_batch_exporter(span_exporter(target)?);
            meter_provider = Some(
                SdkMeterProvider::builder()
                    .with_resource(resource)
                    .with_periodic_exporter(metric_exporter(target)?)
                    .build(),
            );
        }
        Ok(Self {
            tracer_provider: tracer.build(),
            meter_provider,
            spans,
            target,
        })
    }

    /// The adapters' configuration: these providers and the W3C trace-context propagator.
    pub fn config(&self) -> Config {
        let config = Config::new()
            .with_tracer_provider(self.tracer_provider.clone())
            .with_propagator(TraceContextPropagator::new());
        match &self.meter_provider {
            Some(meters) => config.with_meter_provider(meters.clone()),
            // Nothing reads metrics without a collector: skip recording them.
            None => config.with_metrics(false),
        }
    }

    /// The spans finished so far.
    pub fn spans(&self) -> Vec<SpanData> {
        self.spans.spans()
    }

    /// Where OTLP goes, if anywhere.
    pub fn target(&self) -> Option<&OtlpTarget> {
        self.target.as_ref()
    }

    /// Flushes and shuts both providers down (on a blocking thread: the processors wait for their
    /// exports, which the runtime drives). Export failures are returned, never panics.
    pub async fn shutdown(self) -> Result<(), Error> {
        let Self {
            tracer_provider,
            meter_provider,
            ..
        } = self;
        tokio::task::spawn_blocking(move || -> Result<(), Error> {
            let traces = tracer_provider.shutdown();
            let metrics = meter_provider.map_or(Ok(()), |m| m.shutdown());
            match (traces, metrics) {
                (Ok(()), Ok(())) => Ok(()),
                (Err(e), _) => Err(format!("span export: {e}").into()),
                (_, Err(e)) => Err(format!("metric export: {e}").into()),
            }
        })
        .await
        .map_err(|e| Error::from(format!("telemetry shutdown: {e}")))?
    }
}

fn span_exporter(target: &OtlpTarget) -> Result<opentelemetry_otlp::SpanExporter, Error> {
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = if target.grpc {
        builder
            .with_tonic()
            .with_endpoint(target.endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()?
    } else {
        builder
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", target.endpoint))
            .with_timeout(EXPORT_TIMEOUT)
            .build()?
    };
    Ok(exporter)
}

fn metric_exporter(target: &OtlpTarget) -> Result<opentelemetry_otlp::MetricExporter, Error> {
    let builder = opentelemetry_otlp::MetricExporter::builder();
    let exporter = if target.grpc {
        builder
            .with_tonic()
            .with_endpoint(target.endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()?
    } else {
        builder
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/metrics", target.endpoint))
            .with_timeout(EXPORT_TIMEOUT)
            .build()?
    };
    Ok(exporter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_follows_the_variable_then_the_port() {
        let t = OtlpTarget::from_values("http://localhost:4318/", None).unwrap();
        assert_eq!(t, OtlpTarget::http("http://localhost:4318"));
        let t = OtlpTarget::from_values("http://localhost:4318", Some("grpc")).unwrap();
        assert_eq!(t, OtlpTarget::grpc("http://localhost:4318"));
        assert!(OtlpTarget::from_values("http://localhost:4318", Some("http/json")).is_err());
        assert_eq!(
            OtlpTarget::grpc("http://localhost:4317").to_string(),
            "http://localhost:4317 (grpc)"
        );
    }
}
