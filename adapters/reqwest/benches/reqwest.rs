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
//!   `floor_sampled` / `floor_unsampled` are the floor of any OpenTelemetry instrumentation: a
//!   middleware with one span per request and its `traceparent`, nothing else.
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
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tracewire_reqwest::OtelMiddleware;

mod common;
use common::{
    Answer, Floor, IN_MEMORY_URL, PassThrough, config, otel, reqwest_tracing_dispatch,
    reqwest_tracing_middleware, runtime, start_server,
};

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
    let unsampled_no_metrics = ClientBuilder::new(client.clone())
        .with(OtelMiddleware::new(config(false).with_metrics(false)))
        .with(Answer::new())
        .build();
    // The floor any OpenTelemetry instrumentation pays: a span and its `traceparent`.
    let floor_sampled = ClientBuilder::new(client.clone())
        .with(Floor::new(true))
        .with(Answer::new())
        .build();
    let floor_unsampled = ClientBuilder::new(client)
        .with(Floor::new(false))
        .with(Answer::new())
        .build();

    let mut g = c.benchmark_group("in_memory");
    for (name, client) in [
        ("no_otel", &baseline),
        ("passthrough_middleware", &passthrough),
        ("otel_sampled", &sampled),
        ("otel_unsampled", &unsampled),
        ("otel_unsampled_metrics_off", &unsampled_no_metrics),
        ("floor_sampled", &floor_sampled),
        ("floor_unsampled", &floor_unsampled),
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
    let client = reqwest::Client::new();
    let loopback = ClientBuilder::new(client.clone())
        .with(reqwest_tracing_middleware())
        .build();
    let in_memory = ClientBuilder::new(client)
        .with(reqwest_tracing_middleware())
        .with(Answer::new())
        .build();

    let mut g = c.benchmark_group("reqwest_tracing");
    for sampled in [true, false] {
        let suffix = if sampled { "sampled" } else { "unsampled" };
        tracing::dispatcher::with_default(&reqwest_tracing_dispatch(sampled), || {
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
