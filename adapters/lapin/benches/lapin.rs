//! Publish + consume + ack round trip through a real RabbitMQ: bare lapin vs instrumented (sampled,
//! batch processor over a no-op exporter) vs instrumented (unsampled), in one group.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracewire_lapin::LapinTelemetry;
use tracewire_shared::Config;
use tracewire_shared::propagation::W3cTraceContext;
use tracewire_shared::testing::NoopExporter;

fn url() -> String {
    std::env::var("TRACEWIRE_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

async fn queue(channel: &Channel, name: &str) {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare");
}

fn telemetry(sampler: Sampler) -> LapinTelemetry {
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_batch_exporter(NoopExporter)
        .build();
    LapinTelemetry::builder()
        .config(
            Config::new()
                .with_tracer_provider(provider)
                .with_propagator(W3cTraceContext::new()),
        )
        .uri(&url())
        .build()
}

fn round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let connection = rt
        .block_on(Connection::connect(&url(), ConnectionProperties::default()))
        .expect("RabbitMQ on 127.0.0.1:5672 (scripts/services up rabbitmq)");
    let mut group = c.benchmark_group("lapin_round_trip");

    // Bare lapin twice: without headers, and with the `traceparent`/`tracestate` headers the
    // instrumented variants carry, which separates the broker's cost of a header table from ours.
    for (label, headers) in [("bare", false), ("bare_with_trace_headers", true)] {
        group.bench_function(label, |b| {
            let name = format!("tw-bench-{label}-{}", std::process::id());
            let properties = if headers {
                let mut table = FieldTable::default();
                table.insert(
                    "traceparent".into(),
                    lapin::types::AMQPValue::LongString(
                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
                    ),
                );
                table.insert(
                    "tracestate".into(),
                    lapin::types::AMQPValue::LongString("".into()),
                );
                BasicProperties::default().with_headers(table)
            } else {
                BasicProperties::default()
            };
            let (channel, mut consumer) = rt.block_on(async {
                let channel = connection.create_channel().await.unwrap();
                queue(&channel, &name).await;
                let consumer = channel
                    .basic_consume(
                        name.as_str().into(),
                        "".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .unwrap();
                (channel, consumer)
            });
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        channel
                            .basic_publish(
                                "".into(),
                                name.as_str().into(),
                                BasicPublishOptions::default(),
                                b"benchmark payload",
                                properties.clone(),
                            )
                            .await
                            .unwrap()
                            .await
                            .unwrap();
                        let delivery = consumer.next().await.unwrap().unwrap();
                        delivery.ack(BasicAckOptions::default()).await.unwrap();
                    }
                    start.elapsed()
                })
            });
            rt.block_on(async {
                let _ = channel
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await;
            });
        });
    }

    for (label, sampler) in [
        ("instrumented_sampled", Sampler::AlwaysOn),
        ("instrumented_unsampled", Sampler::AlwaysOff),
    ] {
        let telemetry = telemetry(sampler);
        group.bench_function(label, |b| {
            let name = format!("tw-bench-{label}-{}", std::process::id());
            let (channel, mut consumer) = rt.block_on(async {
                let channel = telemetry.channel(connection.create_channel().await.unwrap());
                queue(&channel, &name).await;
                let consumer = channel
                    .basic_consume(
                        name.as_str().into(),
                        "".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .unwrap();
                (channel, consumer)
            });
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        channel
                            .basic_publish(
                                "".into(),
                                name.as_str().into(),
                                BasicPublishOptions::default(),
                                b"benchmark payload",
                                BasicProperties::default(),
                            )
                            .await
                            .unwrap()
                            .await
                            .unwrap();
                        let delivery = consumer.next().await.unwrap().unwrap();
                        delivery.ack(BasicAckOptions::default()).await.unwrap();
                    }
                    start.elapsed()
                })
            });
            rt.block_on(async {
                let _ = channel
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await;
            });
        });
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
                    bare.basic_publish(
                        "".into(),
                        "".into(),
                        BasicPublishOptions::default(),
                        b"benchmark payload",
                        BasicProperties::default(),
                    )
                    .await
                    .unwrap()
                    .await
                    .unwrap();
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
                        channel
                            .basic_publish(
                                "".into(),
                                "".into(),
                                BasicPublishOptions::default(),
                                b"benchmark payload",
                                BasicProperties::default(),
                            )
                            .await
                            .unwrap()
                            .await
                            .unwrap();
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
