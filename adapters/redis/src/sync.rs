//! Synchronous connections: [`InstrumentedSyncConnection`].

use std::fmt;

use redis::{Cmd, ConnectionLike, RedisResult, Value};

use crate::RedisInstrumentation;
use crate::recorder::{Recorder, cmd_args, packed_heads};
use crate::resp;

/// A synchronous connection whose commands and pipelines become spans.
///
/// Wraps any [`redis::ConnectionLike`]: `redis::Connection`, an r2d2 `PooledConnection`, the sync
/// cluster connection. `Commands` methods, `cmd(..).query(&mut con)` and `pipe().query(&mut con)`
/// work unchanged; replies and errors are exactly the wrapped connection's.
///
/// Pipelines reach a sync connection as packed RESP bytes: the wrapper reads the commands back from
/// them (bounded, and without panicking on any input) to name the span and write its text.
/// `db.namespace` follows `SELECT` as described on [`InstrumentedConnection`](crate::InstrumentedConnection)
/// (when available); a sync connection is not shared, so the index is exact.
///
/// The wrapper does not dereference to the connection (redis implements `ConnectionLike` for every
/// `DerefMut` to a connection, which would bypass the wrapper): use [`inner`](Self::inner) and
/// [`inner_mut`](Self::inner_mut) for the connection's own methods.
///
/// ```no_run
/// use redis::Commands;
/// use tracewire_redis::RedisInstrumentation;
///
/// # fn run() -> redis::RedisResult<()> {
/// let client = redis::Client::open("redis://127.0.0.1/")?;
/// let redis = RedisInstrumentation::for_client(&client, tracewire_shared::Config::new());
/// let mut con = redis.wrap_sync(client.get_connection()?);
/// let _: () = con.set("k", 1)?;                                   // span `SET`
/// let (v,): (i64,) = redis::pipe().atomic().get("k").query(&mut con)?; // span `MULTI GET`
/// # let _ = v;
/// # Ok(()) }
/// ```
pub struct InstrumentedSyncConnection<C> {
    inner: C,
    recorder: Recorder,
}

impl<C: ConnectionLike> InstrumentedSyncConnection<C> {
    /// Wraps `connection`; the database index is read from it once.
    pub fn new(connection: C, instrumentation: &RedisInstrumentation) -> Self {
        let db = connection.get_db();
        Self {
            inner: connection,
            recorder: instrumentation.recorder(db),
        }
    }
}

impl<C> InstrumentedSyncConnection<C> {
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

impl<C> fmt::Debug for InstrumentedSyncConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedSyncConnection")
            .field("connection", &std::any::type_name::<C>())
            .field("db", &self.recorder.db())
            .finish_non_exhaustive()
    }
}

impl<C: ConnectionLike> ConnectionLike for InstrumentedSyncConnection<C> {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        let mut op = self.recorder.start_packed(cmd);
        let result = self.inner.req_packed_command(cmd);
        let args = || resp::commands(cmd).next().into_iter().flatten();
        self.recorder.end_cmd(&mut op, args, &result);
        result
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let (mut op, shape, atomic) = self.recorder.start_packed_pipeline(cmd, offset, count);
        let result = self.inner.req_packed_commands(cmd, offset, count);
        self.recorder.end_pipeline(
            &mut op,
            &shape,
            atomic,
            || packed_heads(cmd, atomic),
            &result,
        );
        result
    }

    // `Cmd::query` comes here with the command unpacked: no need to read it back from bytes.
    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        let mut op = self.recorder.start_cmd(cmd);
        let result = self.inner.req_command(cmd);
        self.recorder.end_cmd(&mut op, || cmd_args(cmd), &result);
        result
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }

    fn supports_pipelining(&self) -> bool {
        self.inner.supports_pipelining()
    }

    fn check_connection(&mut self) -> bool {
        self.inner.check_connection()
    }

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }
}
