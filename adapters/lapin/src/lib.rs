//! OpenTelemetry instrumentation for [lapin](https://docs.rs/lapin) (RabbitMQ).
//!
//! Wrap a channel and keep your call sites:
//!
//! - [`InstrumentedChannel::basic_publish`] records a PRODUCER span `publish {destination}` and
//!   injects `traceparent` / `tracestate` into the message headers; with publisher confirms the span
//!   lasts until the broker confirms.
//! - [`InstrumentedChannel::basic_consume`] returns an [`InstrumentedConsumer`], a stream of
//!   [`InstrumentedDelivery`]: each carries a CONSUMER span `process {destination}` parented to (or
//!   linked with) the producer's span, ending when the delivery is acked, nacked, rejected or
//!   dropped. Handler code runs in its context with [`InstrumentedDelivery::in_context`].
//! - [`InstrumentedChannel::basic_get`] records a CLIENT span `receive {queue}`.
//! - [`TaskRunner`] runs a handler over a consumer with bounded concurrency, settling from the
//!   handler's result, surviving panics and shutting down gracefully.
//!
//! Spans follow the OpenTelemetry messaging semantic conventions for RabbitMQ; the metrics
//! `messaging.client.operation.duration`, `messaging.process.duration`,
//! `messaging.client.sent.messages` and `messaging.client.consumed.messages` are recorded alongside.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use lapin::{BasicProperties, Connection, ConnectionProperties, options::*, types::FieldTable};
//! use tracewire_lapin::LapinTelemetry;
//!
//! # async fn example() -> lapin::Result<()> {
//! let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
//! let telemetry = LapinTelemetry::builder().uri(url).build();
//! let connection = Connection::connect(url, ConnectionProperties::default()).await?;
//! let channel = telemetry.channel(connection.create_channel().await?);
//!
//! channel.queue_declare("jobs".into(), QueueDeclareOptions::default(), FieldTable::default()).await?;
//! channel
//!     .basic_publish("".into(), "jobs".into(), BasicPublishOptions::default(), b"hi", BasicProperties::default())
//!     .await?
//!     .await?;
//!
//! let mut consumer = channel
//!     .basic_consume("jobs".into(), "worker".into(), BasicConsumeOptions::default(), FieldTable::default())
//!     .await?;
//! if let Some(delivery) = consumer.next().await {
//!     let delivery = delivery?;
//!     delivery.in_context(async { /* spans here are children of `process jobs` */ }).await;
//!     delivery.ack(BasicAckOptions::default()).await?;
//! }
//! # Ok(()) }
//! ```

pub mod carrier;
mod channel;
mod consumer;
mod delivery;
pub mod destination;
mod destinations;
mod get;
mod publish;
mod runner;
mod telemetry;

pub use channel::InstrumentedChannel;
pub use consumer::InstrumentedConsumer;
pub use delivery::InstrumentedDelivery;
pub use get::InstrumentedGetMessage;
pub use publish::InstrumentedPublisherConfirm;
pub use runner::{RequeuePolicy, RunnerHandle, RunnerReport, Task, TaskRunner};
pub use telemetry::{LapinTelemetry, LapinTelemetryBuilder};

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn public_types_cross_threads() {
        send_sync::<LapinTelemetry>();
        send_sync::<InstrumentedChannel>();
        send_sync::<InstrumentedDelivery>();
        send_sync::<InstrumentedGetMessage>();
        send::<InstrumentedConsumer>();
        send::<InstrumentedPublisherConfirm>();
        send::<RunnerHandle>();
    }

    #[tokio::test]
    async fn delegate_style_delivery_parents_to_headers_and_links() {
        use lapin::options::BasicRejectOptions;
        use lapin::types::{AMQPValue, FieldTable};
        use opentelemetry::trace::{SpanId, SpanKind, TraceContextExt, TraceId};
        use tracewire_shared::semconv;
        use tracewire_shared::testing::{Telemetry, attr_str};

        let t = Telemetry::new();
        let telemetry = LapinTelemetry::builder().config(t.config()).build();
        let mut raw = lapin::message::Delivery::mock(7, "ex".into(), "rk".into(), true, vec![1]);
        let mut headers = FieldTable::default();
        headers.insert(
            "traceparent".into(),
            AMQPValue::LongString("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        );
        raw.properties = lapin::BasicProperties::default().with_headers(headers);
        let delivery = telemetry.delivery(raw, "q");
        assert_eq!(
            delivery.context().span().span_context().trace_id(),
            TraceId::from(0x0af7651916cd43dd8448eb211c80319cu128)
        );
        delivery.record_error("invalid", "bad payload");
        assert!(
            delivery
                .reject(BasicRejectOptions { requeue: true })
                .await
                .unwrap()
        );
        // A second settlement is refused by lapin and leaves the ended span alone.
        assert!(
            !delivery
                .reject(BasicRejectOptions { requeue: false })
                .await
                .unwrap()
        );

        let span = t.span("process ex:rk:q");
        assert_eq!(span.span_kind, SpanKind::Consumer);
        assert_eq!(span.parent_span_id, SpanId::from(0xb7ad6b7169203331u64));
        assert_eq!(span.links.links.len(), 1);
        assert_eq!(
            attr_str(&span, semconv::ERROR_TYPE).as_deref(),
            Some("invalid")
        );
        assert_eq!(
            attr_str(&span, semconv::TRACEWIRE_MESSAGING_OUTCOME).as_deref(),
            Some("reject")
        );
        assert_eq!(
            tracewire_shared::testing::attr(&span, semconv::TRACEWIRE_MESSAGING_REQUEUE),
            Some(&opentelemetry::Value::Bool(true))
        );
    }
}
