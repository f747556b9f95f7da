//! [`InstrumentedPublisherConfirm`]: the publisher confirm that ends the publish span.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use lapin::{Confirmation, PublisherConfirm};
use tracewire_shared::metrics::Timer;
use tracewire_shared::record::{Failure, OperationSpan};

use crate::destinations::Destination;
use crate::telemetry::{Shared, amqp_error_type, failure};

/// The publish span and what its metrics need, until the publish completes.
pub(crate) struct PublishOperation {
    span: OperationSpan,
    timer: Timer,
    destination: Arc<Destination>,
    shared: Arc<Shared>,
}

impl PublishOperation {
    pub(crate) fn new(
        span: OperationSpan,
        timer: Timer,
        destination: Arc<Destination>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            span,
            timer,
            destination,
            shared,
        }
    }

    /// `messaging.client.sent.messages`: counted when the message was handed to lapin (or failed).
    pub(crate) fn count_sent(&self, error_type: Option<&str>) {
        if let Some(metrics) = self.shared.metrics() {
            let attrs = self.destination.metric_attributes(error_type);
            metrics.sent_messages.add(1, &attrs);
        }
    }

    /// Ends the span and records `messaging.client.operation.duration`.
    pub(crate) fn finish(self, failure: Option<Failure<'_>>) {
        // The duration point and the span end at the same reading of the clock.
        let end = self.timer.now();
        if let (Some(metrics), Some(secs)) =
            (self.shared.metrics(), self.timer.elapsed_secs_until(end))
        {
            let attrs = self
                .destination
                .metric_attributes(failure.as_ref().map(Failure::error_type));
            metrics.operation_duration.record(secs, &attrs);
        }
        match failure {
            Some(f) => self.span.end_error_at(&f, end),
            None => self.span.end_ok_at(end),
        }
    }
}

/// The [`PublisherConfirm`] of an instrumented publish: a future resolving to the same
/// `lapin::Result<Confirmation>`. With publisher confirms enabled it ends the publish span when the
/// broker answers: `Ack` ends it as a success, `Nack` as an error (`error.type=nack`), an `Ack`
/// carrying a returned mandatory message as an error named after the reply (`NO-ROUTE`). Dropped
/// unresolved, it ends the span marked `tracewire.cancelled` (lapin still tracks the confirm for
/// `wait_for_confirms`).
///
/// ```no_run
/// # async fn example(channel: tracewire_lapin::InstrumentedChannel) -> lapin::Result<()> {
/// use lapin::{BasicProperties, options::{BasicPublishOptions, ConfirmSelectOptions}};
///
/// channel.confirm_select(ConfirmSelectOptions::default()).await?;
/// let confirmation = channel
///     .basic_publish("".into(), "jobs".into(), BasicPublishOptions::default(), b"hi", BasicProperties::default())
///     .await?
///     .await?; // the publish span ends here
/// assert!(confirmation.is_ack());
/// # Ok(()) }
/// ```
pub struct InstrumentedPublisherConfirm {
    inner: PublisherConfirm,
    pending: Option<PublishOperation>,
}

impl fmt::Debug for InstrumentedPublisherConfirm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedPublisherConfirm")
            .field("inner", &self.inner)
            .field("pending", &self.pending.is_some())
            .finish()
    }
}

impl InstrumentedPublisherConfirm {
    pub(crate) fn pending(inner: PublisherConfirm, op: PublishOperation) -> Self {
        Self {
            inner,
            pending: Some(op),
        }
    }

    pub(crate) fn done(inner: PublisherConfirm) -> Self {
        Self {
            inner,
            pending: None,
        }
    }

    /// Gives lapin's confirm back; a publish span still open ends now, marked cancelled.
    pub fn into_inner(self) -> PublisherConfirm {
        self.inner
    }
}

impl Future for InstrumentedPublisherConfirm {
    type Output = lapin::Result<Confirmation>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = ready!(Pin::new(&mut this.inner).poll(cx));
        if let Some(op) = this.pending.take() {
            match &result {
                Ok(Confirmation::Nack(_)) => op.finish(Some(Failure::new(
                    "nack",
                    "the broker did not accept the message (basic.nack)",
                ))),
                Ok(Confirmation::Ack(Some(returned))) => {
                    let reason = returned.reply_text.as_str().to_owned();
                    let kind = returned
                        .error()
                        .map_or_else(|| "returned".to_owned(), |e| amqp_error_type(e.kind()));
                    op.finish(Some(Failure::new(kind, reason)));
                }
                Ok(_) => op.finish(None),
                Err(error) => op.finish(Some(failure(error))),
            }
        }
        Poll::Ready(result)
    }
}
