//! [`InstrumentedDelivery`]: a delivery carrying its CONSUMER span until it is settled.

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use tracewire_shared::Config;
use tracewire_shared::context::{self, FutureExt};
use tracewire_shared::metrics::Timer;
use tracewire_shared::record::{Failure, OperationSpan, SpanRequest};
use tracewire_shared::semconv::{self, messaging};

use crate::carrier;
use crate::channel::push_message_attributes;
use crate::destinations::Destination;
use crate::telemetry::{Shared, failure, operation};

/// How a delivery was settled (`tracewire.messaging.outcome`).
mod outcome {
    pub(super) const ACK: &str = "ack";
    pub(super) const NACK: &str = "nack";
    pub(super) const REJECT: &str = "reject";
    pub(super) const DROPPED: &str = "dropped";
}

/// The delivery attributes of process and receive spans.
pub(crate) fn push_delivery_attributes(
    attrs: &mut Vec<KeyValue>,
    config: &Config,
    delivery: &Delivery,
) {
    push_message_attributes(
        attrs,
        config,
        delivery.routing_key.as_str(),
        &delivery.properties,
        delivery.data.len(),
    );
    attrs.push(KeyValue::new(
        semconv::MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG,
        i64::try_from(delivery.delivery_tag).unwrap_or(i64::MAX),
    ));
}

/// A [`Delivery`] with its CONSUMER span `process {destination}`.
///
/// The span's parent is the ambient span when one is current where the consumer is polled, otherwise
/// the creation context extracted from the message headers; it always links to the creation context
/// (when the headers carry a valid one). It ends when the delivery is settled through
/// [`ack`](Self::ack), [`nack`](Self::nack) or [`reject`](Self::reject) — the outcome recorded as
/// `tracewire.messaging.outcome` and, for nack and reject, `tracewire.messaging.requeue` — or when
/// the delivery is dropped unsettled (outcome `dropped`, marked cancelled). On a `no_ack` consumer
/// the span ends at drop as a success.
///
/// `Deref` gives the lapin [`Delivery`] (`data`, `properties`, `routing_key`, …). Settle through the
/// methods of this type: settling through the raw `acker` bypasses the span.
///
/// Run the handling code inside the delivery's context so the spans it makes (SQL, Redis, HTTP)
/// are children of the process span:
///
/// ```no_run
/// # async fn handle(_: &[u8]) {}
/// # async fn example(mut consumer: tracewire_lapin::InstrumentedConsumer) -> lapin::Result<()> {
/// use futures_util::StreamExt;
/// use lapin::options::BasicAckOptions;
///
/// while let Some(delivery) = consumer.next().await {
///     let delivery = delivery?;
///     delivery.in_context(handle(&delivery.data)).await;
///     delivery.ack(BasicAckOptions::default()).await?;
/// }
/// # Ok(()) }
/// ```
pub struct InstrumentedDelivery {
    delivery: Delivery,
    settlement: Settlement,
}

/// The span half of a delivery, kept apart so [`InstrumentedDelivery::into_inner`] can move the
/// delivery out while this still ends the span on drop.
struct Settlement {
    shared: Arc<Shared>,
    context: Context,
    no_ack: bool,
    pending: Mutex<Option<Pending>>,
}

struct Pending {
    span: OperationSpan,
    timer: Timer,
    destination: Arc<Destination>,
    failure: Option<(String, String)>,
}

impl fmt::Debug for InstrumentedDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedDelivery")
            .field("delivery", &self.delivery)
            .field(
                "span_context",
                &self.settlement.context.span().span_context(),
            )
            .field("settled", &self.settlement.lock().is_none())
            .finish()
    }
}

impl Deref for InstrumentedDelivery {
    type Target = Delivery;

    fn deref(&self) -> &Delivery {
        &self.delivery
    }
}

impl DerefMut for InstrumentedDelivery {
    fn deref_mut(&mut self) -> &mut Delivery {
        &mut self.delivery
    }
}

impl InstrumentedDelivery {
    pub(crate) fn new(delivery: Delivery, shared: &Arc<Shared>, queue: &str, no_ack: bool) -> Self {
        let timer = Timer::start(shared.metrics_enabled());
        let config = shared.inst.config();
        let creation = carrier::extract(config.propagator(), &delivery.properties);
        let ambient = context::parent();
        let parent = if ambient.has_active_span() {
            &ambient
        } else {
            &creation
        };
        let destination = shared.processed_from(
            delivery.exchange.as_str(),
            delivery.routing_key.as_str(),
            queue,
        );
        let mut request = SpanRequest::new(SpanKind::Consumer, destination.span_name())
            .with_parent(parent)
            .with_link(creation.span().span_context().clone(), Vec::new());
        // The duration point and the span share their clock readings: two reads instead of four.
        if let Some(at) = timer.started_at() {
            request = request.with_start_time(at);
        }
        let span = shared.inst.start(request, |attrs| {
            shared.push_common(attrs, messaging::PROCESS, operation::PROCESS);
            attrs.push(KeyValue::new(
                semconv::MESSAGING_DESTINATION_NAME,
                destination.name().clone(),
            ));
            push_delivery_attributes(attrs, config, &delivery);
        });
        if let Some(metrics) = shared.metrics() {
            metrics
                .consumed_messages
                .add(1, &destination.metric_attributes(None));
        }
        let context = span.context();
        Self {
            delivery,
            settlement: Settlement {
                shared: shared.clone(),
                context,
                no_ack,
                pending: Mutex::new(Some(Pending {
                    span,
                    timer,
                    destination,
                    failure: None,
                })),
            },
        }
    }

    /// A context holding the process span: attach it (or use [`in_context`](Self::in_context)) so
    /// work done for this message is parented to it.
    ///
    /// ```no_run
    /// # fn example(delivery: &tracewire_lapin::InstrumentedDelivery) {
    /// let _guard = delivery.context().attach(); // synchronous code only: never across an .await
    /// # }
    /// ```
    pub fn context(&self) -> Context {
        self.settlement.context.clone()
    }

    /// Runs `future` inside the delivery's context.
    ///
    /// ```no_run
    /// # async fn example(delivery: tracewire_lapin::InstrumentedDelivery) {
    /// let length = delivery.in_context(async { 42 }).await;
    /// # }
    /// ```
    pub fn in_context<F: Future>(&self, future: F) -> opentelemetry::context::WithContext<F> {
        future.with_context(self.context())
    }

    /// Marks the process span failed: it ends with `error.type = error_type`, an error status and an
    /// `exception` event when the delivery is settled (whatever the settlement). The message must be
    /// free of secrets.
    ///
    /// ```no_run
    /// # async fn example(delivery: tracewire_lapin::InstrumentedDelivery) -> lapin::Result<()> {
    /// use lapin::options::BasicRejectOptions;
    ///
    /// delivery.record_error("invalid_payload", "the order has no lines");
    /// delivery.reject(BasicRejectOptions { requeue: false }).await?;
    /// # Ok(()) }
    /// ```
    pub fn record_error(&self, error_type: impl Into<String>, message: impl Into<String>) {
        if let Some(p) = self.settlement.lock().as_mut() {
            p.failure = Some((error_type.into(), message.into()));
        }
    }

    /// Whether the span is still waiting for a settlement.
    pub fn is_settled(&self) -> bool {
        self.settlement.lock().is_none()
    }

    /// Whether the consumer acknowledges automatically (`no_ack`): such deliveries must not be
    /// settled.
    pub fn is_auto_ack(&self) -> bool {
        self.settlement.no_ack
    }

    /// [`Acker::ack`](lapin::Acker::ack), then ends the span with outcome `ack`.
    pub async fn ack(&self, options: BasicAckOptions) -> lapin::Result<bool> {
        let result = self.delivery.acker.ack(options).await;
        self.settlement
            .settle(&self.delivery, outcome::ACK, None, &result);
        result
    }

    /// [`Acker::nack`](lapin::Acker::nack), then ends the span with outcome `nack` and
    /// `tracewire.messaging.requeue`.
    pub async fn nack(&self, options: BasicNackOptions) -> lapin::Result<bool> {
        let result = self.delivery.acker.nack(options).await;
        self.settlement.settle(
            &self.delivery,
            outcome::NACK,
            Some(options.requeue),
            &result,
        );
        result
    }

    /// [`Acker::reject`](lapin::Acker::reject), then ends the span with outcome `reject` and
    /// `tracewire.messaging.requeue`.
    pub async fn reject(&self, options: BasicRejectOptions) -> lapin::Result<bool> {
        let result = self.delivery.acker.reject(options).await;
        self.settlement.settle(
            &self.delivery,
            outcome::REJECT,
            Some(options.requeue),
            &result,
        );
        result
    }

    /// The lapin delivery.
    pub fn inner(&self) -> &Delivery {
        &self.delivery
    }

    /// Gives the lapin delivery back; an unsettled span ends now (outcome `dropped`).
    pub fn into_inner(self) -> Delivery {
        self.delivery
    }
}

impl Settlement {
    fn lock(&self) -> MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn settle(
        &self,
        delivery: &Delivery,
        outcome: &'static str,
        requeue: Option<bool>,
        result: &lapin::Result<bool>,
    ) {
        let settle_error = match result {
            Ok(true) => None,
            Err(error) => Some(failure(error)),
            Ok(false) if delivery.acker.poisoned() => Some(Failure::new(
                "channel_closed",
                "the channel closed before the delivery was settled",
            )),
            // Someone settled it already (a concurrent call owns the span): leave the span to it.
            Ok(false) => return,
        };
        let Some(pending) = self.lock().take() else {
            return;
        };
        let mut span = pending.span;
        span.set_attribute(KeyValue::new(semconv::TRACEWIRE_MESSAGING_OUTCOME, outcome));
        if let Some(requeue) = requeue {
            span.set_attribute(KeyValue::new(semconv::TRACEWIRE_MESSAGING_REQUEUE, requeue));
        }
        let handler_failure = pending
            .failure
            .as_ref()
            .map(|(t, m)| Failure::new(t.as_str(), m.as_str()));
        let failure = handler_failure.or(settle_error);
        let end = self.record_duration(
            &pending.timer,
            &pending.destination,
            failure.as_ref().map(Failure::error_type),
        );
        match failure {
            Some(f) => span.end_error_at(&f, end),
            None => span.end_ok_at(end),
        }
    }

    /// Records the processing duration, when timing, and returns the instant it ended at: the span
    /// ends at the same reading of the clock.
    fn record_duration(
        &self,
        timer: &Timer,
        destination: &Destination,
        error_type: Option<&str>,
    ) -> Option<SystemTime> {
        let end = timer.now();
        if let (Some(metrics), Some(secs)) = (self.shared.metrics(), timer.elapsed_secs_until(end))
        {
            let attrs = destination.metric_attributes(error_type);
            metrics.process_duration.record(secs, &attrs);
        }
        end
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        let Some(pending) = self.lock().take() else {
            return;
        };
        let mut span = pending.span;
        if self.no_ack {
            // The broker settled it on delivery: the end of the handling is the end of processing.
            let failure = pending
                .failure
                .as_ref()
                .map(|(t, m)| Failure::new(t.as_str(), m.as_str()));
            let end = self.record_duration(
                &pending.timer,
                &pending.destination,
                failure.as_ref().map(Failure::error_type),
            );
            match failure {
                Some(f) => span.end_error_at(&f, end),
                None => span.end_ok_at(end),
            }
            return;
        }
        span.set_attribute(KeyValue::new(
            semconv::TRACEWIRE_MESSAGING_OUTCOME,
            outcome::DROPPED,
        ));
        // Dropping the span ends it marked `tracewire.cancelled`.
        drop(span);
    }
}
