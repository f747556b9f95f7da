//! Publish + consume + ack round trip through a real RabbitMQ: bare lapin vs instrumented (sampled,
//! batch processor over a no-op exporter) vs instrumented (unsampled), in one group, with bare
//! lapin carrying the propagation headers, and that plus two empty SDK spans (the floor of any
//! OpenTelemetry instrumentation). `benches/paired.rs` measures them in alternating blocks.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use lapin::options::BasicAckOptions;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection};
use opentelemetry_sdk::trace::Sampler;

// `#[macro_use]` for `publish!`, which `publish_only` also uses.
#[macro_use]
mod common;
use common::{
    bare_round_trips, connect, instrumented_round_trips, sdk_floor_round_trips, telemetry,
    trace_headers,
};
use tracewire_shared::testing::bench_tracer_provider;

fn round_trip(c: &mut Criterion) {
    let (rt, connection) = connect();
    let mut group = c.benchmark_group("lapin_round_trip");

    // Bare lapin twice: without headers, and with the `traceparent`/`tracestate` headers the
    // instrumented variants carry, which separates the broker's cost of a header table from ours.
    let mut bare = bare_round_trips(&rt, &connection, "bare", BasicProperties::default());
    group.bench_function("bare", |b| b.iter_custom(&mut bare));
    let mut with_headers = bare_round_trips(&rt, &connection, "headers", trace_headers());
    group.bench_function("bare_with_trace_headers", |b| {
        b.iter_custom(&mut with_headers)
    });
    // The floor of any OpenTelemetry instrumentation: two bare SDK spans per round trip.
    let floor = bench_tracer_provider(true);
    let mut with_spans = sdk_floor_round_trips(&rt, &connection, "floor", &floor);
    group.bench_function("bare_with_trace_headers_and_two_sdk_spans", |b| {
        b.iter_custom(&mut with_spans)
    });
    for (label, sampler) in [
        ("instrumented_sampled", Sampler::AlwaysOn),
        ("instrumented_unsampled", Sampler::AlwaysOff),
    ] {
        let mut round_trips =
            instrumented_round_trips(&rt, &connection, label, &telemetry(sampler));
        group.bench_function(label, |b| b.iter_custom(&mut round_trips));
    }
    group.finish();
    publish_only(c, &rt, &connection);
    consume_side(c, &rt);
}

/// Publish without confirms to the default exchange with no routing key (the broker drops the
/// message): the client-side publish path, without a broker round trip.
fn publish_only(c: &mut Criterion, rt: &tokio::runtime::Runtime, connection: &Connection) {
    let mut group = c.benchmark_group("lapin_publish");
    let bare = rt.block_on(connection.create_channel()).unwrap();
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    publish!(bare, "", BasicProperties::default());
                }
                start.elapsed()
            })
        });
    });
    for (label, sampler) in [
        ("instrumented_sampled", Sampler::AlwaysOn),
        ("instrumented_unsampled", Sampler::AlwaysOff),
    ] {
        let channel = telemetry(sampler).channel(rt.block_on(connection.create_channel()).unwrap());
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        publish!(channel, "", BasicProperties::default());
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

/// The consumer side without the network: a mock delivery carrying a `traceparent` header is
/// wrapped (extract, process span, link) and acked (lapin's mock acker answers at once).
fn consume_side(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    use lapin::message::Delivery;
    use lapin::types::AMQPValue;

    fn mock() -> Delivery {
        let mut delivery = Delivery::mock(1, "".into(), "jobs".into(), false, b"x".to_vec());
        let mut headers = FieldTable::default();
        headers.insert(
            "traceparent".into(),
            AMQPValue::LongString("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        );
        delivery.properties = BasicProperties::default().with_headers(headers);
        delivery
    }

    let mut group = c.benchmark_group("lapin_consume_cpu");
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let delivery = mock();
                    let start = Instant::now();
                    delivery.ack(BasicAckOptions::default()).await.unwrap();
                    drop(delivery);
                    total += start.elapsed();
                }
                total
            })
        });
    });
    for (label, sampler) in [
        ("instrumented_sampled", Sampler::AlwaysOn),
        ("instrumented_unsampled", Sampler::AlwaysOff),
    ] {
        let telemetry = telemetry(sampler);
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let raw = mock();
                        let start = Instant::now();
                        let delivery = telemetry.delivery(raw, "jobs");
                        delivery.ack(BasicAckOptions::default()).await.unwrap();
                        drop(delivery);
                        total += start.elapsed();
                    }
                    total
                })
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(Duration::from_secs(1));
    targets = round_trip
}
criterion_main!(benches);
