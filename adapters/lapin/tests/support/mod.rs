//! Connections, unique queues and span lookups shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::SpanData;
use tracewire_lapin::{InstrumentedChannel, InstrumentedConsumer, LapinTelemetry};
use tracewire_shared::testing::{Telemetry, attr, attr_str, service_url};

pub fn url() -> String {
    service_url(
        "rabbitmq",
        "TRACEWIRE_AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
    )
}

pub async fn connect() -> Connection {
    Connection::connect(&url(), ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ")
}

pub async fn channel(connection: &Connection) -> Channel {
    connection.create_channel().await.expect("open a channel")
}

/// A queue name no other test (or test run) uses.
pub fn unique(test: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "tw-{test}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Declares a queue that the broker removes a minute after it is last used, in case a failing test
/// does not get to delete it.
pub async fn declare_queue(channel: &Channel, name: &str) {
    let mut args = FieldTable::default();
    args.insert("x-expires".into(), AMQPValue::LongInt(60_000));
    channel
        .queue_declare(name.into(), QueueDeclareOptions::default(), args)
        .await
        .expect("declare queue");
}

pub async fn delete_queue(channel: &Channel, name: &str) {
    let _ = channel
        .queue_delete(name.into(), QueueDeleteOptions::default())
        .await;
}

/// The number of ready messages in `name`.
pub async fn ready_messages(channel: &Channel, name: &str) -> u32 {
    let mut args = FieldTable::default();
    args.insert("x-expires".into(), AMQPValue::LongInt(60_000));
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .expect("passive declare")
        .message_count()
}

/// A telemetry wired to the test providers; the URI carries a planted password that must never
/// reach an attribute.
pub const SECRET: &str = "PLANTED-SECRET-7f3a";

pub fn telemetry(t: &Telemetry) -> LapinTelemetry {
    LapinTelemetry::builder()
        .config(t.config())
        .uri(&format!("amqp://guest:{SECRET}@127.0.0.1:5672/%2f"))
        .build()
}

pub fn str_attr(span: &SpanData, key: &str) -> Option<String> {
    attr_str(span, key)
}

pub fn int_attr(span: &SpanData, key: &str) -> Option<i64> {
    match attr(span, key)? {
        opentelemetry::Value::I64(v) => Some(*v),
        _ => None,
    }
}

pub fn bool_attr(span: &SpanData, key: &str) -> Option<bool> {
    match attr(span, key)? {
        opentelemetry::Value::Bool(v) => Some(*v),
        _ => None,
    }
}

pub fn link_ids(span: &SpanData) -> Vec<SpanId> {
    span.links
        .links
        .iter()
        .map(|l| l.span_context.span_id())
        .collect()
}

pub fn assert_no_secret(spans: &[SpanData]) {
    for span in spans {
        for kv in &span.attributes {
            assert!(
                !kv.value.as_str().contains(SECRET),
                "{} leaks the password in {}",
                span.name,
                kv.key
            );
        }
    }
}

/// A consumer on `queue` with lapin's default options and a server-chosen tag.
pub async fn consume(channel: &InstrumentedChannel, queue: &str) -> InstrumentedConsumer {
    channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume")
}

/// Publishes `body` to `queue` through the default exchange, with default options and properties,
/// and waits for its confirmation (immediate when the channel has no confirms).
pub async fn publish_to(channel: &InstrumentedChannel, queue: &str, body: &[u8]) -> Confirmation {
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm")
}
