//! Instrumented connections: a pooled connection from [`InstrumentedPool::acquire`], or the
//! connection a transaction runs on.
//!
//! [`InstrumentedPool::acquire`]: crate::InstrumentedPool::acquire

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Database, Error, Executor, SqlSafeStr, SqlStr, Transaction};
use sqlx_core::transaction::TransactionManager;

use crate::InstrumentedDatabase;
use crate::instruments::{Instruments, Lease};
use crate::operation::{InstrumentsRef, instrumented_executor_methods};
use crate::transaction::InstrumentedTransaction;

/// A database connection whose queries are traced: what `&mut *conn` and `&mut *tx` give.
///
/// `&mut InstrumentedConnection` is a [`sqlx::Executor`], so it goes wherever `&mut PgConnection`
/// (or `impl PgExecutor`) went. `C` is the connection holder: a [`PoolConnection`] (from
/// [`InstrumentedPool::acquire`](crate::InstrumentedPool::acquire)) or a [`Transaction`].
///
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # async fn example(pool: tracewire_sqlx::InstrumentedPool<sqlx::Postgres>) -> sqlx::Result<()> {
/// let mut conn = pool.acquire().await?;
/// sqlx::query("SET search_path TO shop").execute(&mut *conn).await?;
/// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(&mut *conn).await?;
/// # let _ = n; Ok(()) }
/// ```
pub struct InstrumentedConnection<DB: Database, C = PoolConnection<DB>> {
    conn: C,
    inst: Arc<Instruments>,
    _db: PhantomData<fn() -> DB>,
}

impl<DB: Database, C: fmt::Debug> fmt::Debug for InstrumentedConnection<DB, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedConnection")
            .field("conn", &self.conn)
            .field("pool", &self.inst.pool_name())
            .finish()
    }
}

impl<DB, C> InstrumentedConnection<DB, C>
where
    DB: InstrumentedDatabase,
    C: DerefMut<Target = DB::Connection>,
{
    pub(crate) fn new(conn: C, inst: Arc<Instruments>) -> Self {
        Self {
            conn,
            inst,
            _db: PhantomData,
        }
    }

    pub(crate) fn into_parts(self) -> (C, Arc<Instruments>) {
        (self.conn, self.inst)
    }

    /// The wrapped connection holder.
    pub fn inner(&self) -> &C {
        &self.conn
    }

    /// The wrapped connection holder, mutably: queries run through it are not traced.
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.conn
    }

    /// The bare sqlx connection, for APIs that need the concrete type (`&mut PgConnection`);
    /// queries run through it are not traced.
    pub fn as_raw(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }

    fn parts(&mut self) -> (InstrumentsRef<'_>, &mut DB::Connection) {
        (InstrumentsRef::Borrowed(&self.inst), &mut self.conn)
    }

    /// Begins a transaction on this connection (a savepoint when already in one), like
    /// [`sqlx::Connection::begin`]. The `BEGIN` is traced.
    pub async fn begin(&mut self) -> Result<InstrumentedTransaction<'_, DB>, Error> {
        let depth = DB::TransactionManager::get_transaction_depth(&self.conn);
        let text = begin_text(depth);
        begin_on(&self.inst, &mut *self.conn, text, None, None).await
    }

    /// [`begin`](Self::begin) with a custom statement (`BEGIN READ ONLY`), like
    /// [`sqlx::Connection::begin_with`].
    pub async fn begin_with(
        &mut self,
        statement: impl SqlSafeStr,
    ) -> Result<InstrumentedTransaction<'_, DB>, Error> {
        let statement = statement.into_sql_str();
        begin_on(
            &self.inst,
            &mut *self.conn,
            statement.clone(),
            Some(statement),
            None,
        )
        .await
    }
}

/// The statement sqlx sends to begin a transaction at `depth`.
pub(crate) fn begin_text(depth: usize) -> SqlStr {
    if depth == 0 {
        SqlStr::from_static("BEGIN")
    } else {
        sqlx::AssertSqlSafe(format!("SAVEPOINT _sqlx_savepoint_{depth}")).into_sql_str()
    }
}

/// Begins a transaction on `conn` under a span for `text`.
pub(crate) async fn begin_on<'c, DB, C>(
    inst: &Arc<Instruments>,
    conn: C,
    text: SqlStr,
    statement: Option<SqlStr>,
    lease: Option<Lease>,
) -> Result<InstrumentedTransaction<'c, DB>, Error>
where
    DB: InstrumentedDatabase,
    C: Into<sqlx_core::pool::MaybePoolConnection<'c, DB>>,
{
    let op = inst.client.sql_with(text.as_str(), None, false);
    let result = Transaction::begin(conn, statement).await;
    inst.finish::<DB, _>(op, &result, |_| None);
    Ok(InstrumentedTransaction::new(result?, inst.clone(), lease))
}

impl<'c, DB, C> Executor<'c> for &'c mut InstrumentedConnection<DB, C>
where
    DB: InstrumentedDatabase,
    C: DerefMut<Target = DB::Connection> + Send + fmt::Debug,
    for<'x> &'x mut DB::Connection: Executor<'x, Database = DB>,
{
    type Database = DB;

    instrumented_executor_methods!(self);
}

/// A connection checked out of an [`InstrumentedPool`](crate::InstrumentedPool); goes back to the pool
/// when dropped, like sqlx's [`PoolConnection`]. Use it as `&mut *conn`.
///
/// ```no_run
/// # #[cfg(feature = "sqlite")]
/// # async fn example(pool: tracewire_sqlx::InstrumentedPool<sqlx::Sqlite>) -> sqlx::Result<()> {
/// let mut conn = pool.acquire().await?;
/// sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
/// # Ok(()) }
/// ```
pub struct InstrumentedPoolConnection<DB: Database> {
    conn: InstrumentedConnection<DB, PoolConnection<DB>>,
    _lease: Lease,
}

impl<DB: Database> fmt::Debug for InstrumentedPoolConnection<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.conn, f)
    }
}

impl<DB: InstrumentedDatabase> InstrumentedPoolConnection<DB> {
    pub(crate) fn new(conn: PoolConnection<DB>, inst: Arc<Instruments>) -> Self {
        Self {
            _lease: Lease::start(inst.clone()),
            conn: InstrumentedConnection::new(conn, inst),
        }
    }

    pub(crate) fn into_parts(self) -> (PoolConnection<DB>, Arc<Instruments>, Lease) {
        let Self { conn, _lease } = self;
        let (conn, inst) = conn.into_parts();
        (conn, inst, _lease)
    }

    /// The sqlx pooled connection (its later queries are not traced).
    pub fn into_inner(self) -> PoolConnection<DB> {
        self.into_parts().0
    }
}

impl<DB: Database> Deref for InstrumentedPoolConnection<DB> {
    type Target = InstrumentedConnection<DB, PoolConnection<DB>>;

    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl<DB: Database> DerefMut for InstrumentedPoolConnection<DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}
