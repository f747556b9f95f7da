//! What each variant of `benches/reqwest.rs` adds to a GET, measured in alternating blocks
//! (`tracewire_shared::testing::paired`), so that the machine's drift between variants cancels,
//! over loopback and in memory. Also scales tracewire's cost to the machine #6's targets were set
//! on, by what reqwest-tracing adds here in the same rounds (+5.6 µs sampled, +3.6 µs unsampled
//! there, over loopback).
//!
//! Each chain is measured twice. First tracewire alone: once a `tracing` dispatcher has been set,
//! tracewire's parent lookup (feature `tracing`) also consults `tracing` for the rest of the process,
//! which an application without `tracing` does not pay. Then tracewire and reqwest-tracing in the
//! same rounds, for the scaled figures: there tracewire pays that lookup too, so they err against it.
//!
//! `cargo bench -p tracewire-reqwest --all-features --bench paired -- --rounds 500`
//! (`--block N` sets the requests per block of every group).

use std::hint::black_box;
use std::time::{Duration, Instant};

use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware};
use tokio::runtime::Runtime;
use tracewire_reqwest::OtelMiddleware;
use tracewire_shared::testing::paired::{Paired, PairedReport};

mod common;
use common::{
    Answer, Floor, IN_MEMORY_URL, PassThrough, config, otel, reqwest_tracing_dispatch,
    reqwest_tracing_middleware, runtime, start_server,
};

/// Where a request's chain ends.
#[derive(Clone, Copy)]
enum Chain {
    /// At reqwest, over loopback to an axum server.
    Loopback,
    /// At a middleware answering in memory.
    InMemory,
}

impl Chain {
    fn name(self) -> &'static str {
        match self {
            Chain::Loopback => "loopback_get",
            Chain::InMemory => "in_memory",
        }
    }

    /// The variant the others are paired with: the middleware client without our middleware.
    fn baseline(self) -> &'static str {
        match self {
            Chain::Loopback => "middleware_client_no_middleware",
            Chain::InMemory => "no_otel",
        }
    }

    /// Blocks last a few milliseconds either way.
    fn paired(self) -> Paired<'static> {
        match self {
            Chain::Loopback => Paired::new().rounds(300).block(100),
            Chain::InMemory => Paired::new().rounds(500).block(2_000),
        }
        .args()
    }

    /// A client whose chain is `middleware` (if any), then this chain's end.
    fn client(self, middleware: Option<impl Middleware>) -> ClientWithMiddleware {
        let mut builder = ClientBuilder::new(reqwest::Client::new());
        if let Some(middleware) = middleware {
            builder = builder.with(middleware);
        }
        if let Chain::InMemory = self {
            builder = builder.with(Answer::new());
        }
        builder.build()
    }
}

/// Times `iters` GETs of `url` through `client`, reading each body.
fn gets<'a>(
    rt: &'a Runtime,
    client: ClientWithMiddleware,
    url: &'a str,
) -> impl FnMut(u64) -> Duration + 'a {
    move |iters| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                let response = client.get(url).send().await.unwrap();
                black_box(response.bytes().await.unwrap());
            }
            start.elapsed()
        })
    }
}

/// `routine` run with `dispatch` as the current `tracing` dispatcher.
fn under<'a>(
    dispatch: &tracing::Dispatch,
    mut routine: impl FnMut(u64) -> Duration + 'a,
) -> impl FnMut(u64) -> Duration + 'a {
    let dispatch = dispatch.clone();
    move |iters| tracing::dispatcher::with_default(&dispatch, || routine(iters))
}

/// The baseline, tracewire's variants, and the floor any OpenTelemetry instrumentation pays (a span
/// and its `traceparent`), on `chain`.
fn ours<'a>(paired: Paired<'a>, rt: &'a Runtime, chain: Chain, url: &'a str) -> Paired<'a> {
    let no_metrics = OtelMiddleware::new(config(false).with_metrics(false));
    paired
        .variant(
            chain.baseline(),
            gets(rt, chain.client(None::<PassThrough>), url),
        )
        .variant(
            "otel_sampled",
            gets(rt, chain.client(Some(otel(true))), url),
        )
        .variant(
            "otel_unsampled",
            gets(rt, chain.client(Some(otel(false))), url),
        )
        .variant(
            "otel_unsampled_metrics_off",
            gets(rt, chain.client(Some(no_metrics)), url),
        )
        .variant(
            "floor_sampled",
            gets(rt, chain.client(Some(Floor::new(true))), url),
        )
        .variant(
            "floor_unsampled",
            gets(rt, chain.client(Some(Floor::new(false))), url),
        )
}

/// Prints what tracewire adds on `chain`, scaled to #6's machine by reqwest-tracing's cost there.
fn print_scaled(report: &PairedReport, chain: Chain) {
    // #6: reqwest-tracing with context propagation adds +5.6 µs sampled and +3.6 µs unsampled on
    // the machine its targets were set on (over loopback).
    for (variant, calibration, reference_us, target_us) in [
        ("otel_sampled", "reqwest_tracing_sampled", 5.6, 1.5),
        ("otel_unsampled", "reqwest_tracing_unsampled", 3.6, 0.3),
        (
            "otel_unsampled_metrics_off",
            "reqwest_tracing_unsampled",
            3.6,
            0.3,
        ),
        ("floor_sampled", "reqwest_tracing_sampled", 5.6, 1.5),
        ("floor_unsampled", "reqwest_tracing_unsampled", 3.6, 0.3),
    ] {
        let reference = Duration::from_secs_f64(reference_us / 1e6);
        if let Some(scaled) = report.scaled(variant, chain.baseline(), calibration, reference) {
            println!(
                "{variant:<44} scaled to #6's machine: +{:.3} µs (target ≤ {target_us} µs)",
                scaled.as_secs_f64() * 1e6
            );
        }
    }
}

fn main() {
    let rt = runtime();
    let server = start_server();
    let url = |chain| match chain {
        Chain::Loopback => server.as_str(),
        Chain::InMemory => IN_MEMORY_URL,
    };

    for chain in [Chain::Loopback, Chain::InMemory] {
        let mut paired = ours(chain.paired(), &rt, chain, url(chain));
        if let Chain::InMemory = chain {
            paired = paired.variant(
                "passthrough_middleware",
                gets(&rt, chain.client(Some(PassThrough)), url(chain)),
            );
        }
        println!("{}, tracewire, paired\n{}", chain.name(), paired.run());
    }

    let sampled = reqwest_tracing_dispatch(true);
    let unsampled = reqwest_tracing_dispatch(false);
    for chain in [Chain::Loopback, Chain::InMemory] {
        let report = ours(chain.paired(), &rt, chain, url(chain))
            .variant(
                "reqwest_tracing_sampled",
                under(
                    &sampled,
                    gets(
                        &rt,
                        chain.client(Some(reqwest_tracing_middleware())),
                        url(chain),
                    ),
                ),
            )
            .variant(
                "reqwest_tracing_unsampled",
                under(
                    &unsampled,
                    gets(
                        &rt,
                        chain.client(Some(reqwest_tracing_middleware())),
                        url(chain),
                    ),
                ),
            )
            .run();
        println!("{}, with reqwest-tracing, paired\n{report}", chain.name());
        print_scaled(&report, chain);
        println!();
    }
}
