//! Overhead of the instrumentation on a loopback GET, and of the middleware alone.
//!
//! `cargo bench -p tracewire-reqwest --all-features --bench reqwest -- --warm-up-time 1 --measurement-time 3`
//!
//! - `loopback_get`: a real GET against an axum server on 127.0.0.1 — bare `reqwest::Client`,
//!   `ClientWithMiddleware` with no middleware, with [`OtelMiddleware`] sampled, and unsampled.
//! - `in_memory`: the same middleware chains ending in a middleware that answers without a network,
//!   so the instrumentation's own cost is not hidden in the round trip's noise; `passthrough_middleware`
//!   is the cost of any extra middleware layer (a boxed future), instrumentation aside. The answering
//!   middleware merges the client's default headers into the request first, as `reqwest::Client`
//!   does after the chain, so the header map's first allocation is charged where reqwest makes it.
//! - `reqwest_tracing`: the calibration point, reqwest-tracing 0.7 with context propagation
//!   (`TracingMiddleware` under tracing-opentelemetry, W3C propagator, the same sampler and exporter
//!   set-up on OpenTelemetry 0.32, the newest it supports), over loopback and in memory. Its added
//!   cost tells how this machine compares with the one the targets were set on. It runs
//!   last: once a `tracing` subscriber has been set, tracewire's parent lookup also consults
//!   `tracing` (the `tracing` feature), which would charge the variants after it for the
//!   subscriber's presence.
//!
//! Sampled = `BatchSpanProcessor` over an exporter that drops everything; unsampled =
//! `Sampler::AlwaysOff`. The meter provider is the default global no-op one.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Extensions;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use tracewire_reqwest::OtelMiddleware;
use tracewire_shared::Config;
use tracewire_shared::propagation::W3cTraceContext;
use tracewire_shared::testing::NoopExporter;

fn otel(sampled: bool) -> OtelMiddleware {
    OtelMiddleware::new(config(sampled))
}

fn config(sampled: bool) -> Config {
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
struct Answer {
    default_headers: http::HeaderMap,
}

impl Answer {
    fn new() -> Self {
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
struct PassThrough;

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
struct NoopExporter032;

impl opentelemetry_sdk_0_32::trace::SpanExporter for NoopExporter032 {
    async fn export(
        &self,
        _batch: Vec<opentelemetry_sdk_0_32::trace::SpanData>,
    ) -> opentelemetry_sdk_0_32::error::OTelSdkResult {
        Ok(())
    }
}

/// A `tracing` subscriber exporting to OpenTelemetry 0.32 with the given sampling, for
/// reqwest-tracing.
fn reqwest_tracing_subscriber(sampled: bool) -> impl tracing::Subscriber + Send + Sync {
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
    tracing_subscriber::registry()
        .with(tracing_opentelemetry_0_33::layer().with_tracer(provider.tracer("reqwest-tracing")))
}

/// The runtime every group runs its requests on: one thread.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// What the in-memory variants request: a host, a port, a path and a query to handle.
const IN_MEMORY_URL: &str = "http://api.example.com:8080/users/42?page=2";

fn start_server() -> String {
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

fn loopback_get(c: &mut Criterion) {
    let url = start_server();
    let rt = runtime();
    let bare = reqwest::Client::new();
    let plain_mw: ClientWithMiddleware = ClientBuilder::new(bare.clone()).build();
    let sampled = ClientBuilder::new(bare.clone()).with(otel(true)).build();
    let unsampled = ClientBuilder::new(bare.clone()).with(otel(false)).build();

    let mut g = c.benchmark_group("loopback_get");
    g.bench_function("bare_reqwest", |b| {
        b.to_async(&rt).iter(|| async {
            let r = bare.get(&url).send().await.unwrap();
            black_box(r.bytes().await.unwrap());
        })
    });
    g.bench_function("middleware_client_no_middleware", |b| {
        b.to_async(&rt).iter(|| async {
            let r = plain_mw.get(&url).send().await.unwrap();
            black_box(r.bytes().await.unwrap());
        })
    });
    g.bench_function("otel_sampled", |b| {
        b.to_async(&rt).iter(|| async {
            let r = sampled.get(&url).send().await.unwrap();
            black_box(r.bytes().await.unwrap());
        })
    });
    g.bench_function("otel_unsampled", |b| {
        b.to_async(&rt).iter(|| async {
            let r = unsampled.get(&url).send().await.unwrap();
            black_box(r.bytes().await.unwrap());
        })
    });
    g.finish();
}

fn in_memory(c: &mut Criterion) {
    let rt = runtime();
    let url = IN_MEMORY_URL;
    let client = reqwest::Client::new();
    let baseline = ClientBuilder::new(client.clone())
        .with(Answer::new())
        .build();
    let passthrough = ClientBuilder::new(client.clone())
        .with(PassThrough)
        .with(Answer::new())
        .build();
    let sampled = ClientBuilder::new(client.clone())
        .with(otel(true))
        .with(Answer::new())
        .build();
    let unsampled = ClientBuilder::new(client.clone())
        .with(otel(false))
        .with(Answer::new())
        .build();
    let unsampled_no_metrics = ClientBuilder::new(client)
        .with(OtelMiddleware::new(config(false).with_metrics(false)))
        .with(Answer::new())
        .build();

    let mut g = c.benchmark_group("in_memory");
    for (name, client) in [
        ("no_otel", &baseline),
        ("passthrough_middleware", &passthrough),
        ("otel_sampled", &sampled),
        ("otel_unsampled", &unsampled),
        ("otel_unsampled_metrics_off", &unsampled_no_metrics),
    ] {
        g.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(client.get(url).send().await.unwrap()) })
        });
    }

    g.finish();
}

/// The calibration point, reqwest-tracing with context propagation, over loopback and in
/// memory. A group of its own and the last one: its `tracing` subscriber must not be around while
/// the groups before it run.
fn reqwest_tracing(c: &mut Criterion) {
    let url = start_server();
    let rt = runtime();
    // reqwest-tracing injects through the global propagator of its OpenTelemetry release.
    opentelemetry_0_32::global::set_text_map_propagator(
        opentelemetry_sdk_0_32::propagation::TraceContextPropagator::new(),
    );
    let client = reqwest::Client::new();
    let loopback = ClientBuilder::new(client.clone())
        .with(reqwest_tracing::TracingMiddleware::default())
        .build();
    let in_memory = ClientBuilder::new(client)
        .with(reqwest_tracing::TracingMiddleware::default())
        .with(Answer::new())
        .build();

    let mut g = c.benchmark_group("reqwest_tracing");
    for sampled in [true, false] {
        let suffix = if sampled { "sampled" } else { "unsampled" };
        tracing::subscriber::with_default(reqwest_tracing_subscriber(sampled), || {
            g.bench_function(format!("loopback_get_{suffix}"), |b| {
                b.to_async(&rt).iter(|| async {
                    let r = loopback.get(&url).send().await.unwrap();
                    black_box(r.bytes().await.unwrap());
                })
            });
            g.bench_function(format!("in_memory_{suffix}"), |b| {
                b.to_async(&rt).iter(|| async {
                    black_box(in_memory.get(IN_MEMORY_URL).send().await.unwrap())
                })
            });
        });
    }
    g.finish();
}

criterion_group!(benches, loopback_get, in_memory, reqwest_tracing);
criterion_main!(benches);
