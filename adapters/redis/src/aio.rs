//! Async connections: [`InstrumentedConnection`] owns any `redis::aio::ConnectionLike`,
//! [`InstrumentedGuard`] holds a guard that dereferences to one (bb8).
//!
//! Both implement `redis::aio::ConnectionLike` themselves, so `AsyncCommands` methods,
//! `cmd(..).query_async(&mut con)` and `pipe().query_async(&mut con)` work on them unchanged.

use std::fmt;
use std::ops::{Deref, DerefMut};

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::RedisInstrumentation;
use crate::recorder::{Recorder, cmd_args, pipeline_heads};

/// One command through `connection`, recorded.
fn command<'a, C>(
    recorder: &'a Recorder,
    connection: &'a mut C,
    cmd: &'a Cmd,
) -> RedisFuture<'a, Value>
where
    C: ConnectionLike + Send + ?Sized,
{
    // Started at the first poll, inside the boxed future, so the operation is built where it lives
    // instead of being moved into the box; the span starts when the command is sent.
    Box::pin(async move {
        let mut op = recorder.start_cmd(cmd);
        let result = connection.req_packed_command(cmd).await;
        recorder.end_cmd(&mut op, || cmd_args(cmd), &result);
        result
    })
}

/// One pipeline through `connection`, recorded.
fn pipeline<'a, C>(
    recorder: &'a Recorder,
    connection: &'a mut C,
    pipeline: &'a Pipeline,
    offset: usize,
    count: usize,
) -> RedisFuture<'a, Vec<Value>>
where
    C: ConnectionLike + Send + ?Sized,
{
    // Started at the first poll, as a single command is.
    Box::pin(async move {
        let (mut op, shape) = recorder.start_pipeline(pipeline);
        let result = connection
            .req_packed_commands(pipeline, offset, count)
            .await;
        let atomic = pipeline.is_transaction();
        recorder.end_pipeline(
            &mut op,
            &shape,
            atomic,
            || pipeline_heads(pipeline),
            &result,
        );
        result
    })
}

/// An async connection whose commands and pipelines become spans.
///
/// Wraps any [`redis::aio::ConnectionLike`]: `MultiplexedConnection`, `ConnectionManager`, the
/// async cluster connection, deadpool-redis's `Connection`. Replies and errors are exactly the
/// wrapped connection's. A command's span starts when its future is first polled, under the context
/// current then; a future dropped before that sent nothing and records nothing.
///
/// `db.namespace` starts at the connection's database index and follows `SELECT` (and `RESET`)
/// commands sent through this wrapper or its clones. Clones share the index because clones of a
/// multiplexed connection share the server connection. A `SELECT` sent around the wrapper (through
/// [`inner_mut`](Self::inner_mut)) is not seen, and after a `ConnectionManager` reconnects, the
/// server is back on the configured database while the wrapper keeps the last selected one:
/// prefer a database per client over `SELECT` on shared connections.
///
/// ```no_run
/// use redis::AsyncCommands;
/// use tracewire_redis::{InstrumentedConnection, RedisInstrumentation};
///
/// # async fn run() -> redis::RedisResult<()> {
/// let client = redis::Client::open("redis://127.0.0.1/")?;
/// let redis = RedisInstrumentation::for_client(&client, tracewire_shared::Config::new());
/// let mut con = InstrumentedConnection::new(client.get_multiplexed_async_connection().await?, &redis);
///
/// let _: () = con.set("k", 1).await?;                        // span `SET`
/// let v: i64 = redis::cmd("GET").arg("k").query_async(&mut con).await?; // span `GET`
/// let (a, b): (i64, i64) = redis::pipe().get("k").get("k").query_async(&mut con).await?; // `PIPELINE GET`
/// # let _ = (v, a, b);
/// # Ok(()) }
/// ```
pub struct InstrumentedConnection<C> {
    inner: C,
    recorder: Recorder,
}

impl<C: ConnectionLike> InstrumentedConnection<C> {
    /// Wraps `connection`; the database index is read from it once.
    pub fn new(connection: C, instrumentation: &RedisInstrumentation) -> Self {
        let db = connection.get_db();
        Self {
            inner: connection,
            recorder: instrumentation.recorder(db),
        }
    }
}

impl<C> InstrumentedConnection<C> {
    /// The wrapped connection.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// The wrapped connection, mutably; commands sent through it are not recorded.
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// The wrapped connection back.
    pub fn into_inner(self) -> C {
        self.inner
    }

    /// The database index spans report as `db.namespace`.
    pub fn db_namespace(&self) -> i64 {
        self.recorder.db()
    }
}

impl<C: Clone> Clone for InstrumentedConnection<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            recorder: self.recorder.clone(),
        }
    }
}

impl<C> fmt::Debug for InstrumentedConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedConnection")
            .field("connection", &std::any::type_name::<C>())
            .field("db", &self.recorder.db())
            .finish_non_exhaustive()
    }
}

impl<C: ConnectionLike + Send> ConnectionLike for InstrumentedConnection<C> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        command(&self.recorder, &mut self.inner, cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        pipeline(&self.recorder, &mut self.inner, cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// A guard that dereferences to an async connection, whose commands become spans: made for pool
/// guards that are not connections themselves, such as bb8's `PooledConnection` (which returns the
/// connection to the pool when dropped). A `&mut MultiplexedConnection` works too.
///
/// Otherwise the same as [`InstrumentedConnection`]; it also dereferences to the connection.
///
/// ```no_run
/// use redis::AsyncCommands;
/// use tracewire_redis::RedisInstrumentation;
///
/// # async fn run() -> redis::RedisResult<()> {
/// let client = redis::Client::open("redis://127.0.0.1/")?;
/// let redis = RedisInstrumentation::for_client(&client, tracewire_shared::Config::new());
/// let mut bare = client.get_multiplexed_async_connection().await?;
/// let mut con = redis.wrap_guard(&mut bare);
/// let _: Option<String> = con.get("k").await?;
/// # Ok(()) }
/// ```
pub struct InstrumentedGuard<G> {
    guard: G,
    recorder: Recorder,
}

impl<G> InstrumentedGuard<G>
where
    G: DerefMut,
    G::Target: ConnectionLike,
{
    /// Wraps `guard`; the database index is read from its connection once.
    pub fn new(guard: G, instrumentation: &RedisInstrumentation) -> Self {
        let db = guard.get_db();
        Self {
            guard,
            recorder: instrumentation.recorder(db),
        }
    }
}

impl<G> InstrumentedGuard<G> {
    /// The wrapped guard.
    pub fn inner(&self) -> &G {
        &self.guard
    }

    /// The wrapped guard, mutably; commands sent through it are not recorded.
    pub fn inner_mut(&mut self) -> &mut G {
        &mut self.guard
    }

    /// The wrapped guard back.
    pub fn into_inner(self) -> G {
        self.guard
    }

    /// The database index spans report as `db.namespace`.
    pub fn db_namespace(&self) -> i64 {
        self.recorder.db()
    }
}

impl<G: Deref> Deref for InstrumentedGuard<G> {
    type Target = G::Target;

    fn deref(&self) -> &G::Target {
        &self.guard
    }
}

impl<G: DerefMut> DerefMut for InstrumentedGuard<G> {
    fn deref_mut(&mut self) -> &mut G::Target {
        &mut self.guard
    }
}

impl<G> fmt::Debug for InstrumentedGuard<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedGuard")
            .field("guard", &std::any::type_name::<G>())
            .field("db", &self.recorder.db())
            .finish_non_exhaustive()
    }
}

impl<G> ConnectionLike for InstrumentedGuard<G>
where
    G: DerefMut + Send,
    G::Target: ConnectionLike + Send,
{
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        command(&self.recorder, &mut *self.guard, cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        pipeline(&self.recorder, &mut *self.guard, cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.guard.get_db()
    }
}
