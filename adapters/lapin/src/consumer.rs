//! [`InstrumentedConsumer`]: a lapin consumer yielding [`InstrumentedDelivery`]s.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use lapin::types::ShortString;
use lapin::{Channel, Consumer};

use crate::InstrumentedDelivery;
use crate::telemetry::Shared;

/// A [`Consumer`] whose deliveries carry CONSUMER spans: a `Stream` of
/// `lapin::Result<InstrumentedDelivery>`, ending when lapin's does.
///
/// The process span's parent is looked up when the stream yields: poll it inside a context holding
/// a span to make that span the parent; otherwise the creation context from the headers is.
///
/// ```no_run
/// # async fn example(channel: tracewire_lapin::InstrumentedChannel) -> lapin::Result<()> {
/// use futures_util::StreamExt;
/// use lapin::{options::{BasicAckOptions, BasicConsumeOptions}, types::FieldTable};
///
/// let mut consumer = channel
///     .basic_consume("jobs".into(), "worker".into(), BasicConsumeOptions::default(), FieldTable::default())
///     .await?;
/// while let Some(delivery) = consumer.next().await {
///     let delivery = delivery?;
///     delivery.ack(BasicAckOptions::default()).await?; // ends `process jobs`
/// }
/// # Ok(()) }
/// ```
pub struct InstrumentedConsumer {
    inner: Consumer,
    shared: Arc<Shared>,
    queue: ShortString,
    channel: Option<Channel>,
    no_ack: bool,
}

impl fmt::Debug for InstrumentedConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedConsumer")
            .field("inner", &self.inner)
            .field("queue", &self.queue)
            .field("no_ack", &self.no_ack)
            .finish()
    }
}

impl InstrumentedConsumer {
    pub(crate) fn new(
        inner: Consumer,
        shared: Arc<Shared>,
        channel: Option<Channel>,
        no_ack: bool,
    ) -> Self {
        let queue = inner.queue();
        Self {
            inner,
            shared,
            queue,
            channel,
            no_ack,
        }
    }

    /// The consumer tag.
    pub fn tag(&self) -> ShortString {
        self.inner.tag()
    }

    /// The queue consumed.
    pub fn queue(&self) -> &ShortString {
        &self.queue
    }

    /// The channel the consumer was created on, when it came from
    /// [`InstrumentedChannel::basic_consume`](crate::InstrumentedChannel::basic_consume).
    pub fn channel(&self) -> Option<&Channel> {
        self.channel.as_ref()
    }

    /// The lapin consumer.
    pub fn inner(&self) -> &Consumer {
        &self.inner
    }

    /// Gives the lapin consumer back.
    pub fn into_inner(self) -> Consumer {
        self.inner
    }
}

impl Stream for InstrumentedConsumer {
    type Item = lapin::Result<InstrumentedDelivery>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = ready!(Pin::new(&mut this.inner).poll_next(cx));
        Poll::Ready(item.map(|result| {
            result.map(|delivery| {
                InstrumentedDelivery::new(delivery, &this.shared, this.queue.as_str(), this.no_ack)
            })
        }))
    }
}
