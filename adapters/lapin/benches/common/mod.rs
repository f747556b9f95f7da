//! What the lapin benches share: the broker's URL, the telemetry set-ups, and the publish + consume
//! + ack round trip, bare and instrumented.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use tokio::runtime::Runtime;
use tracewire_lapin::LapinTelemetry;
use tracewire_shared::Config;
use tracewire_shared::propagation::W3cTraceContext;
use tracewire_shared::testing::NoopExporter;

// lapin's channel and tracewire's have the same methods with different types: macros, not a trait
// over both, keep the steps written once.

/// Publishes the bench's payload on `channel` (lapin's or tracewire's) through the default
/// exchange to `routing_key`, and awaits the broker's confirmation (immediate without confirms).
macro_rules! publish {
    ($channel:expr, $routing_key:expr, $properties:expr) => {
        $channel
            .basic_publish(
                "".into(),
                $routing_key.into(),
                lapin::options::BasicPublishOptions::default(),
                b"benchmark payload",
                $properties,
            )
            .await
            .unwrap()
            .await
            .unwrap()
    };
}

/// Declares the queue `name` on `channel` (lapin's or tracewire's) and starts consuming it.
macro_rules! consume {
    ($channel:expr, $name:expr) => {{
        queue(&$channel, &$name).await;
        $channel
            .basic_consume(
                $name.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap()
    }};
}

/// The broker, `TRACEWIRE_AMQP_URL` or the local RabbitMQ.
pub fn url() -> String {
    std::env::var("TRACEWIRE_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// The runtime the round trips run on, and a connection to the broker.
pub fn connect() -> (Runtime, Connection) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let connection = rt
        .block_on(Connection::connect(&url(), ConnectionProperties::default()))
        .expect("RabbitMQ on 127.0.0.1:5672 (scripts/services up rabbitmq)");
    (rt, connection)
}

/// Declares `name`, deleted by the broker once its last consumer is gone.
pub async fn queue(channel: &Channel, name: &str) {
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

/// Instrumentation with `sampler`: a batch processor over [`NoopExporter`], the W3C propagator.
pub fn telemetry(sampler: Sampler) -> LapinTelemetry {
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

/// The properties of a message carrying the `traceparent`/`tracestate` headers the instrumented
/// variants send, to separate the broker's and lapin's cost of a header table from ours.
pub fn trace_headers() -> BasicProperties {
    let mut table = FieldTable::default();
    table.insert(
        "traceparent".into(),
        AMQPValue::LongString("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
    );
    table.insert("tracestate".into(), AMQPValue::LongString("".into()));
    BasicProperties::default().with_headers(table)
}

/// A queue of its own for each variant.
fn queue_name(label: &str) -> String {
    format!("tw-bench-{label}-{}", std::process::id())
}

/// Round trips with bare lapin on a queue of its own: publish (with `properties`) to the default
/// exchange, await the confirmation, take the delivery from the consumer, ack it. Returns the time
/// of `iters` round trips.
pub fn bare_round_trips<'a>(
    rt: &'a Runtime,
    connection: &Connection,
    label: &str,
    properties: BasicProperties,
) -> impl FnMut(u64) -> Duration + 'a {
    round_trips(rt, connection, label, properties, None)
}

/// The floor of any OpenTelemetry instrumentation of a round trip, for comparison: bare lapin
/// carrying the trace headers, with one span of `provider` around the publish and one from the
/// delivery to its ack, with no attributes, no injection and no extraction.
pub fn sdk_floor_round_trips<'a>(
    rt: &'a Runtime,
    connection: &Connection,
    label: &str,
    provider: &SdkTracerProvider,
) -> impl FnMut(u64) -> Duration + 'a {
    use opentelemetry::trace::TracerProvider as _;
    let tracer = provider.tracer("sdk-floor");
    round_trips(rt, connection, label, trace_headers(), Some(tracer))
}

fn round_trips<'a>(
    rt: &'a Runtime,
    connection: &Connection,
    label: &str,
    properties: BasicProperties,
    tracer: Option<SdkTracer>,
) -> impl FnMut(u64) -> Duration + 'a {
    use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
    let span = move |name: &'static str, kind: SpanKind| {
        tracer
            .as_ref()
            .map(|tracer| tracer.span_builder(name).with_kind(kind).start(tracer))
    };
    let name = queue_name(label);
    let (channel, mut consumer) = rt.block_on(async {
        let channel = connection.create_channel().await.unwrap();
        let consumer = consume!(channel, name);
        (channel, consumer)
    });
    timed(rt, async move || {
        let publish = span("publish bench", SpanKind::Producer);
        publish!(channel, name.as_str(), properties.clone());
        if let Some(mut span) = publish {
            span.end();
        }
        let delivery = consumer.next().await.unwrap().unwrap();
        let process = span("process bench", SpanKind::Consumer);
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        if let Some(mut span) = process {
            span.end();
        }
    })
}

/// The same round trips through tracewire's channel and consumer.
pub fn instrumented_round_trips<'a>(
    rt: &'a Runtime,
    connection: &Connection,
    label: &str,
    telemetry: &LapinTelemetry,
) -> impl FnMut(u64) -> Duration + 'a {
    let name = queue_name(label);
    let (channel, mut consumer) = rt.block_on(async {
        let channel = telemetry.channel(connection.create_channel().await.unwrap());
        let consumer = consume!(channel, name);
        (channel, consumer)
    });
    timed(rt, async move || {
        publish!(channel, name.as_str(), BasicProperties::default());
        let delivery = consumer.next().await.unwrap().unwrap();
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    })
}

/// Times `iters` round trips, each `one`, on `rt`.
fn timed<'a>(rt: &'a Runtime, mut one: impl AsyncFnMut() + 'a) -> impl FnMut(u64) -> Duration + 'a {
    move |iters| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                one().await;
            }
            start.elapsed()
        })
    }
}
