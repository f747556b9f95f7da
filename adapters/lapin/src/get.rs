//! [`InstrumentedGetMessage`]: a `basic.get` message with its creation context.

use std::ops::{Deref, DerefMut};

use lapin::message::BasicGetMessage;
use opentelemetry::Context;

/// A message fetched with [`InstrumentedChannel::basic_get`](crate::InstrumentedChannel::basic_get).
///
/// `Deref` gives lapin's [`BasicGetMessage`] (and through it the delivery: `data`, `properties`,
/// `ack`, …). [`creation_context`](Self::creation_context) is the producer's context extracted from
/// the headers, to parent the processing of a pulled message.
///
/// ```no_run
/// # async fn example(channel: tracewire_lapin::InstrumentedChannel) -> lapin::Result<()> {
/// use lapin::options::{BasicAckOptions, BasicGetOptions};
/// use tracewire_shared::context::FutureExt;
///
/// if let Some(message) = channel.basic_get("jobs".into(), BasicGetOptions::default()).await? {
///     async { /* handle message.data */ }.with_context(message.creation_context().clone()).await;
///     message.ack(BasicAckOptions::default()).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct InstrumentedGetMessage {
    message: BasicGetMessage,
    creation: Context,
}

impl InstrumentedGetMessage {
    pub(crate) fn new(message: BasicGetMessage, creation: Context) -> Self {
        Self { message, creation }
    }

    /// The creation context from the message headers (no span when they carry none).
    pub fn creation_context(&self) -> &Context {
        &self.creation
    }

    /// The lapin message.
    pub fn inner(&self) -> &BasicGetMessage {
        &self.message
    }

    /// Gives the lapin message back.
    pub fn into_inner(self) -> BasicGetMessage {
        self.message
    }
}

impl Deref for InstrumentedGetMessage {
    type Target = BasicGetMessage;

    fn deref(&self) -> &BasicGetMessage {
        &self.message
    }
}

impl DerefMut for InstrumentedGetMessage {
    fn deref_mut(&mut self) -> &mut BasicGetMessage {
        &mut self.message
    }
}
