//! [`TaskRunner`]: a worker loop over an [`InstrumentedConsumer`], the way Celery-style workers run.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{FutureExt as _, StreamExt};
use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::{DeliveryTag, ShortString};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracewire_shared::context::{self, FutureExt as _};

use crate::{InstrumentedConsumer, InstrumentedDelivery};

/// What happens to a message whose handler returned `Err` or panicked.
///
/// ```
/// use tracewire_lapin::RequeuePolicy;
/// assert_eq!(RequeuePolicy::default(), RequeuePolicy::Never);
/// assert!(RequeuePolicy::UnlessRedelivered.requeue(false));
/// assert!(!RequeuePolicy::UnlessRedelivered.requeue(true));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequeuePolicy {
    /// Never requeue: the broker drops the message or dead-letters it (the default: a failing
    /// message cannot loop forever).
    #[default]
    Never,
    /// Always requeue (retry until it succeeds; pair with a dead-letter policy or a redelivery limit
    /// on the queue).
    Always,
    /// Requeue a first failure; drop or dead-letter a message that fails again after redelivery.
    UnlessRedelivered,
}

impl RequeuePolicy {
    /// Whether a failed message that was (or was not) `redelivered` goes back to the queue.
    pub fn requeue(self, redelivered: bool) -> bool {
        match self {
            Self::Never => false,
            Self::Always => true,
            Self::UnlessRedelivered => !redelivered,
        }
    }
}

/// One message as a handler sees it: the delivery's content, without the means to settle it (the
/// runner settles from the handler's result).
#[derive(Debug)]
#[non_exhaustive]
pub struct Task {
    /// The payload.
    pub data: Vec<u8>,
    /// The properties and headers.
    pub properties: BasicProperties,
    /// The exchange it was published to (empty for the default exchange).
    pub exchange: ShortString,
    /// Its routing key.
    pub routing_key: ShortString,
    /// Whether the broker delivered it before.
    pub redelivered: bool,
    /// The delivery tag.
    pub delivery_tag: DeliveryTag,
}

impl Task {
    fn take_from(delivery: &mut InstrumentedDelivery) -> Self {
        Self {
            data: std::mem::take(&mut delivery.data),
            properties: std::mem::take(&mut delivery.properties),
            exchange: std::mem::take(&mut delivery.exchange),
            routing_key: std::mem::take(&mut delivery.routing_key),
            redelivered: delivery.redelivered,
            delivery_tag: delivery.delivery_tag,
        }
    }
}

/// Runs a handler over an [`InstrumentedConsumer`] with bounded concurrency.
///
/// Each delivery runs its handler on its own tokio task inside the delivery's context, so spans the
/// handler makes are children of the `process` span. `Ok` acks; `Err` rejects, requeueing by the
/// [`RequeuePolicy`]; a panic is caught, recorded on the span (`error.type=panic`) and nacked by the
/// same policy, and the runner keeps going. [`RunnerHandle::shutdown`] stops taking deliveries,
/// cancels the consumer, requeues what the broker had already sent but no handler started, and waits
/// for the handlers in flight.
///
/// Concurrency bounds the handlers running at once; set the channel's prefetch
/// (`basic_qos`) at least as high so the broker keeps them busy. Needs a tokio runtime.
///
/// ```no_run
/// # async fn example(channel: tracewire_lapin::InstrumentedChannel) -> lapin::Result<()> {
/// use lapin::{options::{BasicConsumeOptions, BasicQosOptions}, types::FieldTable};
/// use tracewire_lapin::{RequeuePolicy, Task, TaskRunner};
///
/// channel.basic_qos(16, BasicQosOptions::default()).await?;
/// let consumer = channel
///     .basic_consume("jobs".into(), "worker".into(), BasicConsumeOptions::default(), FieldTable::default())
///     .await?;
/// let handle = TaskRunner::new(consumer)
///     .concurrency(8)
///     .requeue(RequeuePolicy::UnlessRedelivered)
///     .run(|task: Task| async move {
///         let text = String::from_utf8(task.data).map_err(|e| e.to_string())?;
///         println!("{text}");
///         Ok::<(), String>(())
///     });
/// // … later, on SIGTERM:
/// let report = handle.shutdown().await;
/// println!("processed {} messages", report.succeeded);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TaskRunner {
    consumer: InstrumentedConsumer,
    concurrency: usize,
    requeue: RequeuePolicy,
}

impl TaskRunner {
    /// A runner over `consumer`, one handler at a time, [`RequeuePolicy::Never`].
    pub fn new(consumer: InstrumentedConsumer) -> Self {
        Self {
            consumer,
            concurrency: 1,
            requeue: RequeuePolicy::default(),
        }
    }

    /// Runs at most `limit` handlers at once (at least 1).
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// What happens to messages whose handler fails.
    pub fn requeue(mut self, policy: RequeuePolicy) -> Self {
        self.requeue = policy;
        self
    }

    /// Starts the worker loop on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime (like `tokio::spawn`).
    pub fn run<F, Fut, E>(self, handler: F) -> RunnerHandle
    where
        F: Fn(Task) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let join = tokio::spawn(drive(self, Arc::new(handler), stopped));
        RunnerHandle { stop, join }
    }
}

/// Controls a running [`TaskRunner`]. Dropping the handle leaves the runner running until its
/// consumer ends.
#[derive(Debug)]
pub struct RunnerHandle {
    stop: watch::Sender<bool>,
    join: JoinHandle<RunnerReport>,
}

impl RunnerHandle {
    /// Stops taking deliveries, cancels the consumer (requeueing deliveries the broker had sent that
    /// no handler started), waits for the handlers in flight and returns the counts.
    pub async fn shutdown(self) -> RunnerReport {
        let _ = self.stop.send(true);
        self.join.await.unwrap_or_default()
    }

    /// Waits until the consumer ends (cancelled by the broker, channel closed).
    pub async fn wait(self) -> RunnerReport {
        self.join.await.unwrap_or_default()
    }

    /// Whether the runner has stopped.
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }
}

/// What a [`TaskRunner`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunnerReport {
    /// Deliveries handed to a handler.
    pub received: u64,
    /// Handlers that returned `Ok`.
    pub succeeded: u64,
    /// Handlers that returned `Err`.
    pub failed: u64,
    /// Handlers that panicked.
    pub panicked: u64,
    /// Deliveries received after shutdown began, requeued without running a handler.
    pub requeued_on_shutdown: u64,
    /// Settlements (ack, nack, reject) that failed.
    pub settle_errors: u64,
    /// Errors the consumer stream reported.
    pub consumer_errors: u64,
}

#[derive(Default)]
struct Counters {
    succeeded: AtomicU64,
    failed: AtomicU64,
    panicked: AtomicU64,
    settle_errors: AtomicU64,
}

async fn shutdown_requested(stopped: &mut watch::Receiver<bool>) {
    if stopped.wait_for(|stop| *stop).await.is_err() {
        // The handle was dropped: nobody can ask for a shutdown any more.
        std::future::pending::<()>().await;
    }
}

async fn drive<F, Fut, E>(
    runner: TaskRunner,
    handler: Arc<F>,
    mut stopped: watch::Receiver<bool>,
) -> RunnerReport
where
    F: Fn(Task) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    let TaskRunner {
        mut consumer,
        concurrency,
        requeue,
    } = runner;
    let slots = Arc::new(Semaphore::new(concurrency));
    let counters = Arc::new(Counters::default());
    let mut tasks = JoinSet::new();
    let mut report = RunnerReport::default();
    let mut shutting_down = false;
    loop {
        let permit = tokio::select! {
            biased;
            () = shutdown_requested(&mut stopped) => { shutting_down = true; break; }
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let next = tokio::select! {
            biased;
            () = shutdown_requested(&mut stopped) => { shutting_down = true; break; }
            next = consumer.next() => next,
        };
        match next {
            None => break,
            Some(Err(_)) => report.consumer_errors += 1,
            Some(Ok(delivery)) => {
                report.received += 1;
                let (handler, counters) = (handler.clone(), counters.clone());
                tasks.spawn(async move {
                    process(delivery, &*handler, requeue, &counters).await;
                    drop(permit);
                });
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    if shutting_down {
        report.requeued_on_shutdown = requeue_unstarted(&mut consumer).await;
    }
    while tasks.join_next().await.is_some() {}
    report.succeeded = counters.succeeded.load(Ordering::Relaxed);
    report.failed = counters.failed.load(Ordering::Relaxed);
    report.panicked = counters.panicked.load(Ordering::Relaxed);
    report.settle_errors = counters.settle_errors.load(Ordering::Relaxed);
    report
}

/// Cancels the consumer and requeues what the broker delivered before the cancellation took effect
/// (AMQP delivers nothing after `basic.cancel-ok`, which ends lapin's stream).
async fn requeue_unstarted(consumer: &mut InstrumentedConsumer) -> u64 {
    let Some(channel) = consumer.channel().cloned() else {
        return 0;
    };
    if channel
        .basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await
        .is_err()
    {
        return 0;
    }
    let mut requeued = 0;
    while let Some(next) = consumer.next().await {
        if let Ok(delivery) = next {
            if !delivery.is_auto_ack() {
                let options = BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                };
                let _ = delivery.nack(options).await;
            }
            requeued += 1;
        }
    }
    requeued
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the handler panicked".to_owned())
}

enum Outcome<E> {
    Done(Result<(), E>),
    Panicked(String),
}

async fn process<F, Fut, E>(
    mut delivery: InstrumentedDelivery,
    handler: &F,
    policy: RequeuePolicy,
    counters: &Counters,
) where
    F: Fn(Task) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    let task = Task::take_from(&mut delivery);
    let redelivered = task.redelivered;
    let cx = delivery.context();
    let started =
        std::panic::catch_unwind(AssertUnwindSafe(|| context::run_in(&cx, || handler(task))));
    let outcome = match started {
        Ok(future) => match AssertUnwindSafe(future.with_context(cx))
            .catch_unwind()
            .await
        {
            Ok(result) => Outcome::Done(result),
            Err(payload) => Outcome::Panicked(panic_message(&*payload)),
        },
        Err(payload) => Outcome::Panicked(panic_message(&*payload)),
    };
    let requeue = policy.requeue(redelivered);
    let settled = match outcome {
        Outcome::Done(Ok(())) => {
            counters.succeeded.fetch_add(1, Ordering::Relaxed);
            settle(&delivery, |d| d.ack(BasicAckOptions::default())).await
        }
        Outcome::Done(Err(error)) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            delivery.record_error(std::any::type_name::<E>(), error.to_string());
            settle(&delivery, |d| d.reject(BasicRejectOptions { requeue })).await
        }
        Outcome::Panicked(message) => {
            counters.panicked.fetch_add(1, Ordering::Relaxed);
            delivery.record_error("panic", message);
            let options = BasicNackOptions {
                requeue,
                ..BasicNackOptions::default()
            };
            settle(&delivery, |d| d.nack(options)).await
        }
    };
    if !settled {
        counters.settle_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Settles unless the consumer acknowledges automatically; `false` when the settlement failed.
async fn settle<'a, S, Fut>(delivery: &'a InstrumentedDelivery, settlement: S) -> bool
where
    S: FnOnce(&'a InstrumentedDelivery) -> Fut,
    Fut: Future<Output = lapin::Result<bool>>,
{
    if delivery.is_auto_ack() {
        return true;
    }
    matches!(settlement(delivery).await, Ok(true))
}
