//! [`InstrumentedChannel`]: a lapin [`Channel`] whose publish, consume and get are traced.

use std::ops::Deref;

use lapin::options::{BasicConsumeOptions, BasicGetOptions, BasicPublishOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, TraceContextExt};
use tracewire_shared::metrics::Timer;
use tracewire_shared::record::SpanRequest;
use tracewire_shared::semconv::{self, messaging};

use crate::carrier;
use crate::destination;
use crate::get::InstrumentedGetMessage;
use crate::publish::{InstrumentedPublisherConfirm, PublishOperation};
use crate::telemetry::{LapinTelemetry, failure, operation};
use crate::{InstrumentedConsumer, delivery};
use tracewire_shared::value::shared_str;

/// A [`Channel`] whose `basic_publish`, `basic_consume` and `basic_get` record spans and metrics.
///
/// Every other channel method is reached through `Deref`, so declaring queues, binding, QoS and
/// confirms keep their call sites. [`inner`](Self::inner) / [`into_inner`](Self::into_inner) give the
/// lapin channel back.
///
/// ```no_run
/// # async fn example() -> lapin::Result<()> {
/// use lapin::{BasicProperties, Connection, ConnectionProperties, options::*, types::FieldTable};
/// use tracewire_lapin::InstrumentedChannel;
///
/// let connection = Connection::connect("amqp://127.0.0.1:5672/%2f", ConnectionProperties::default()).await?;
/// let channel = InstrumentedChannel::new(connection.create_channel().await?);
/// channel.queue_declare("jobs".into(), QueueDeclareOptions::default(), FieldTable::default()).await?;
/// channel
///     .basic_publish("".into(), "jobs".into(), BasicPublishOptions::default(), b"hello", BasicProperties::default())
///     .await?
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct InstrumentedChannel {
    channel: Channel,
    telemetry: LapinTelemetry,
}

impl Deref for InstrumentedChannel {
    type Target = Channel;

    fn deref(&self) -> &Channel {
        &self.channel
    }
}

impl InstrumentedChannel {
    /// Instruments `channel` with the default [`LapinTelemetry`] (global providers and propagator).
    pub fn new(channel: Channel) -> Self {
        Self::with_telemetry(channel, &LapinTelemetry::default())
    }

    /// Instruments `channel` with `telemetry`.
    pub fn with_telemetry(channel: Channel, telemetry: &LapinTelemetry) -> Self {
        Self {
            channel,
            telemetry: telemetry.clone(),
        }
    }

    /// The lapin channel.
    pub fn inner(&self) -> &Channel {
        &self.channel
    }

    /// Gives the lapin channel back.
    pub fn into_inner(self) -> Channel {
        self.channel
    }

    /// The telemetry settings.
    pub fn telemetry(&self) -> &LapinTelemetry {
        &self.telemetry
    }

    /// [`Channel::basic_publish`], traced: a PRODUCER span `publish {destination}` whose context is
    /// injected into the message headers as string `traceparent` / `tracestate` (every header the
    /// caller set is kept).
    ///
    /// Without publisher confirms the span ends when the message is handed to the broker. With
    /// confirms ([`Channel::confirm_select`]) it stays open until the returned confirm resolves (a
    /// `basic.nack` or a returned mandatory message is an error) or is dropped unresolved.
    pub async fn basic_publish(
        &self,
        exchange: ShortString,
        routing_key: ShortString,
        options: BasicPublishOptions,
        payload: &[u8],
        properties: BasicProperties,
    ) -> lapin::Result<InstrumentedPublisherConfirm> {
        let shared = &self.telemetry.shared;
        let timer = Timer::start(shared.metrics_enabled());
        let destination = shared.published_to(exchange.as_str(), routing_key.as_str());
        let request = SpanRequest::new(SpanKind::Producer, destination.span_name());
        let request = match timer.started_at() {
            Some(at) => request.with_start_time(at),
            None => request,
        };
        let span = shared.inst.start(request, |attrs| {
            shared.push_common(attrs, messaging::SEND, operation::PUBLISH);
            attrs.push(KeyValue::new(
                semconv::MESSAGING_DESTINATION_NAME,
                destination.name().clone(),
            ));
            push_message_attributes(
                attrs,
                shared.inst.config(),
                routing_key.as_str(),
                &properties,
                payload.len(),
            );
        });
        let properties = carrier::inject(properties, |injector| {
            span.inject(shared.inst.config().propagator(), injector);
        });
        let result = self
            .channel
            .basic_publish(exchange, routing_key, options, payload, properties)
            .await;
        let op = PublishOperation::new(span, timer, destination, shared.clone());
        match result {
            Ok(confirm) if self.channel.status().confirm() => {
                op.count_sent(None);
                Ok(InstrumentedPublisherConfirm::pending(confirm, op))
            }
            Ok(confirm) => {
                op.count_sent(None);
                op.finish(None);
                Ok(InstrumentedPublisherConfirm::done(confirm))
            }
            Err(error) => {
                let failure = failure(&error);
                op.count_sent(Some(failure.error_type()));
                op.finish(Some(failure));
                Err(error)
            }
        }
    }

    /// [`Channel::basic_consume`], returning an [`InstrumentedConsumer`]: each delivery it yields
    /// carries a CONSUMER span `process {destination}`.
    pub async fn basic_consume(
        &self,
        queue: ShortString,
        consumer_tag: ShortString,
        options: BasicConsumeOptions,
        arguments: FieldTable,
    ) -> lapin::Result<InstrumentedConsumer> {
        let no_ack = options.no_ack;
        let consumer = self
            .channel
            .basic_consume(queue, consumer_tag, options, arguments)
            .await?;
        Ok(InstrumentedConsumer::new(
            consumer,
            self.telemetry.shared.clone(),
            Some(self.channel.clone()),
            no_ack,
        ))
    }

    /// [`Channel::basic_get`], traced: a CLIENT span `receive {queue}` (also when the queue is
    /// empty). The message keeps its creation context for the processing that follows
    /// ([`InstrumentedGetMessage::creation_context`]).
    pub async fn basic_get(
        &self,
        queue: ShortString,
        options: BasicGetOptions,
    ) -> lapin::Result<Option<InstrumentedGetMessage>> {
        let shared = &self.telemetry.shared;
        let timer = Timer::start(shared.metrics_enabled());
        let mut request = SpanRequest::client(format!("receive {}", queue.as_str()));
        if let Some(at) = timer.started_at() {
            request = request.with_start_time(at);
        }
        let mut span = shared.inst.start(request, |attrs| {
            shared.push_common(attrs, messaging::RECEIVE, operation::RECEIVE);
        });
        let result = self.channel.basic_get(queue.clone(), options).await;
        let mut destination_name = None;
        let error = match &result {
            Ok(Some(message)) => {
                let delivery = &message.delivery;
                let destination = shared_str(destination::consumer(
                    delivery.exchange.as_str(),
                    delivery.routing_key.as_str(),
                    queue.as_str(),
                ));
                span.set_attributes_with(|attrs| {
                    attrs.push(KeyValue::new(
                        semconv::MESSAGING_DESTINATION_NAME,
                        destination.clone(),
                    ));
                    delivery::push_delivery_attributes(attrs, shared.inst.config(), delivery);
                });
                destination_name = Some(destination);
                None
            }
            Ok(None) => {
                span.set_attribute(KeyValue::new(
                    semconv::MESSAGING_DESTINATION_NAME,
                    queue.as_str().to_owned(),
                ));
                None
            }
            Err(error) => Some(failure(error)),
        };
        let end = timer.now();
        if let Some(metrics) = shared.metrics() {
            let error_type = error.as_ref().map(|f| f.error_type());
            let received = destination_name.is_some();
            let destination = destination_name.unwrap_or_else(|| queue.as_str().to_owned().into());
            let attrs = shared.metric_attributes(
                Some(messaging::RECEIVE),
                operation::RECEIVE,
                Some(&destination),
                error_type,
            );
            if let Some(secs) = timer.elapsed_secs_until(end) {
                metrics.operation_duration.record(secs, &attrs);
            }
            if received {
                metrics.consumed_messages.add(1, &attrs);
            }
        }
        // The creation context is known only now: the receive span links to it.
        let propagator = shared.inst.config().propagator();
        let creation = match &result {
            Ok(Some(message)) => Some(carrier::extract(propagator, &message.delivery.properties)),
            _ => None,
        };
        if let Some(creation) = &creation {
            span.add_link(creation.span().span_context().clone(), Vec::new());
        }
        match error {
            Some(f) => span.end_error_at(&f, end),
            None => span.end_ok_at(end),
        }
        result.map(|message| {
            message
                .map(|message| InstrumentedGetMessage::new(message, creation.unwrap_or_default()))
        })
    }
}

/// The per-message attributes shared by publish spans: routing key, ids, opt-in body size.
pub(crate) fn push_message_attributes(
    attrs: &mut Vec<KeyValue>,
    config: &tracewire_shared::Config,
    routing_key: &str,
    properties: &BasicProperties,
    body_size: usize,
) {
    if !routing_key.is_empty() {
        attrs.push(KeyValue::new(
            semconv::MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY,
            routing_key.to_owned(),
        ));
    }
    if let Some(id) = properties.message_id() {
        attrs.push(KeyValue::new(
            semconv::MESSAGING_MESSAGE_ID,
            id.as_str().to_owned(),
        ));
    }
    if let Some(id) = properties.correlation_id() {
        attrs.push(KeyValue::new(
            semconv::MESSAGING_MESSAGE_CONVERSATION_ID,
            id.as_str().to_owned(),
        ));
    }
    if config.is_opted_in(semconv::MESSAGING_MESSAGE_BODY_SIZE) {
        attrs.push(KeyValue::new(
            semconv::MESSAGING_MESSAGE_BODY_SIZE,
            i64::try_from(body_size).unwrap_or(i64::MAX),
        ));
    }
}
