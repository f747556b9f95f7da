//! What the instrumentation adds to a publish + consume + ack round trip through RabbitMQ,
//! measured in alternating blocks (`tracewire_shared::testing::paired`), so that the broker's and
//! the machine's drift between variants cancels. #7's target: ≤ 2 µs added per message, sampled.
//!
//! `cargo bench -p tracewire-lapin --all-features --bench paired -- --rounds 1000 --block 20`

use lapin::BasicProperties;
use opentelemetry_sdk::trace::Sampler;
use tracewire_shared::testing::paired::Paired;

mod common;
use common::{
    bare_round_trips, connect, instrumented_round_trips, sdk_floor_round_trips, telemetry,
    trace_headers,
};
use tracewire_shared::testing::bench_tracer_provider;

fn main() {
    let (rt, connection) = connect();
    let sampled = telemetry(Sampler::AlwaysOn);
    let unsampled = telemetry(Sampler::AlwaysOff);
    let floor = bench_tracer_provider(true);
    let report = Paired::new()
        .rounds(500)
        .block(20)
        .args()
        .variant(
            "bare",
            bare_round_trips(&rt, &connection, "bare", BasicProperties::default()),
        )
        .variant(
            "bare_with_trace_headers",
            bare_round_trips(&rt, &connection, "headers", trace_headers()),
        )
        .variant(
            "bare_with_trace_headers_and_two_sdk_spans",
            sdk_floor_round_trips(&rt, &connection, "floor", &floor),
        )
        .variant(
            "instrumented_sampled",
            instrumented_round_trips(&rt, &connection, "sampled", &sampled),
        )
        .variant(
            "instrumented_unsampled",
            instrumented_round_trips(&rt, &connection, "unsampled", &unsampled),
        )
        .run();
    println!("lapin_round_trip, paired\n{report}");
    for (variant, baseline) in [
        ("instrumented_sampled", "bare_with_trace_headers"),
        (
            "instrumented_sampled",
            "bare_with_trace_headers_and_two_sdk_spans",
        ),
        (
            "bare_with_trace_headers_and_two_sdk_spans",
            "bare_with_trace_headers",
        ),
    ] {
        if let Some(added) = report.added(variant, baseline) {
            println!(
                "{variant} over {baseline}: {:+.3} µs [{:+.3}, {:+.3}]",
                added.median_ns / 1e3,
                added.low_ns / 1e3,
                added.high_ns / 1e3
            );
        }
    }
}
