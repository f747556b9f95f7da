//! What the reqwest benches share: the middlewares compared, the in-memory end of the chain, the
//! loopback server, and reqwest-tracing's set-up.

use std::hint::black_box;

use http::Extensions;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use tracewire_reqwest::OtelMiddleware;
use tracewire_shared::Config;
use tracewire_shared::propagation::W3cTraceContext;
use tracewire_shared::testing::NoopExporter;

/// tracewire's middleware, sampling everything or nothing.
pub fn otel(sampled: bool) -> OtelMiddleware {
    OtelMiddleware::new(config(sampled))
}

/// The configuration of [`otel`]: a batch processor over [`NoopExporter`], the W3C propagator.
pub fn config(sampled: bool) -> Config {
    let provider = SdkTracerProvider::builder()
        .with_sampler(if sampled {
            Sampler::AlwaysOn
        } else {
            Sampler::AlwaysOff
        })
        .with_batch_exporter(NoopExporter)
        .build();
    Config::new()
        .with_tracer_provider(provider)
        .with_propagator(W3cTraceContext::new())
}

/// Answers every request itself: the end of the chain without a network.
///
/// It first does what `reqwest::Client` does to every request after the middleware chain: merge the
/// client's default headers (`accept: */*`) into the request's header map. Without that, whichever
/// layer first inserts a header pays the map's first allocation, which reqwest makes anyway, and it
/// would be charged to the instrumentation's `traceparent`.
pub struct Answer {
    default_headers: http::HeaderMap,
}

impl Answer {
    /// The answering middleware, with reqwest's default `accept: */*`.
    pub fn new() -> Self {
        let mut default_headers = http::HeaderMap::new();
        default_headers.insert(http::header::ACCEPT, http::HeaderValue::from_static("*/*"));
        Self { default_headers }
    }
}

#[async_trait::async_trait]
impl Middleware for Answer {
    async fn handle(
        &self,
        mut request: Request,
        _: &mut Extensions,
        _: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let headers = request.headers_mut();
        for (name, value) in &self.default_headers {
            if let http::header::Entry::Vacant(entry) = headers.entry(name) {
                entry.insert(value.clone());
            }
        }
        black_box(&request);
        Ok(Response::from(http::Response::new("ok")))
    }
}

/// Forwards every request: what any middleware layer costs, instrumentation aside.
pub struct PassThrough;

#[async_trait::async_trait]
impl Middleware for PassThrough {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        next.run(req, extensions).await
    }
}

/// An OpenTelemetry 0.32 exporter that drops everything, for the reqwest-tracing calibration.
#[derive(Debug)]
pub struct NoopExporter032;

impl opentelemetry_sdk_0_32::trace::SpanExporter for NoopExporter032 {
    async fn export(
        &self,
        _batch: Vec<opentelemetry_sdk_0_32::trace::SpanData>,
    ) -> opentelemetry_sdk_0_32::error::OTelSdkResult {
        Ok(())
    }
}

/// A `tracing` dispatcher exporting to OpenTelemetry 0.32 with the given sampling, for
/// reqwest-tracing.
pub fn reqwest_tracing_dispatch(sampled: bool) -> tracing::Dispatch {
    use opentelemetry_0_32::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let provider = opentelemetry_sdk_0_32::trace::SdkTracerProvider::builder()
        .with_sampler(if sampled {
            opentelemetry_sdk_0_32::trace::Sampler::AlwaysOn
        } else {
            opentelemetry_sdk_0_32::trace::Sampler::AlwaysOff
        })
        .with_batch_exporter(NoopExporter032)
        .build();
    tracing::Dispatch::new(
        tracing_subscriber::registry().with(
            tracing_opentelemetry_0_33::layer().with_tracer(provider.tracer("reqwest-tracing")),
        ),
    )
}

/// reqwest-tracing's middleware, which injects through the global propagator of its OpenTelemetry
/// release: set here to W3C trace context.
pub fn reqwest_tracing_middleware()
-> reqwest_tracing::TracingMiddleware<reqwest_tracing::DefaultSpanBackend> {
    opentelemetry_0_32::global::set_text_map_propagator(
        opentelemetry_sdk_0_32::propagation::TraceContextPropagator::new(),
    );
    reqwest_tracing::TracingMiddleware::default()
}

/// The runtime every group runs its requests on: one thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// What the in-memory variants request: a host, a port, a path and a query to handle.
pub const IN_MEMORY_URL: &str = "http://api.example.com:8080/users/42?page=2";

/// Starts an axum server on 127.0.0.1 answering `GET /` with `ok`, on a thread of its own; returns
/// its URL.
pub fn start_server() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}/", rx.recv().unwrap())
}

/// The floor of any OpenTelemetry instrumentation of a request, for comparison: a middleware with
/// one CLIENT span per request, constant name, no attributes, its context injected as
/// `traceparent` through tracewire's W3C propagator (the cheapest there is), no metrics.
pub struct Floor {
    tracer: opentelemetry_sdk::trace::SdkTracer,
    propagator: tracewire_shared::propagation::Propagator,
}

impl Floor {
    /// The floor, sampling everything or nothing.
    pub fn new(sampled: bool) -> Self {
        use opentelemetry::trace::TracerProvider as _;
        Self {
            tracer: tracewire_shared::testing::bench_tracer_provider(sampled).tracer("floor"),
            propagator: tracewire_shared::propagation::Propagator::new(W3cTraceContext::new()),
        }
    }
}

#[async_trait::async_trait]
impl Middleware for Floor {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _};
        let span = self
            .tracer
            .span_builder("GET")
            .with_kind(SpanKind::Client)
            .start(&self.tracer);
        let cx = opentelemetry::Context::current_with_span(span);
        self.propagator.inject_headers(&cx, req.headers_mut());
        let result = next.run(req, extensions).await;
        cx.span().end();
        result
    }
}
