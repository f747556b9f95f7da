//! [`InstrumentedPool`]: a sqlx pool whose queries are traced.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Weak};

use sqlx::pool::PoolOptions;
use sqlx::{Database, Error, Executor, Pool, SqlSafeStr};
use tracewire_shared::metrics::{PoolSnapshot, Timer, observe_pool};

use crate::InstrumentedDatabase;
use crate::builder::InstrumentedPoolBuilder;
use crate::connection::{InstrumentedPoolConnection, begin_on, begin_text};
use crate::instruments::{Instruments, Observe};
use crate::operation::{InstrumentsRef, instrumented_executor_methods};
use crate::transaction::InstrumentedTransaction;

/// A [`sqlx::Pool`] whose every query is one OpenTelemetry CLIENT span, with the
/// `db.client.operation.duration` metric and the pool's connection metrics. Cheap to clone.
///
/// `&InstrumentedPool` is a [`sqlx::Executor`], so `query(..).fetch_all(&pool)` and functions taking
/// `impl PgExecutor` keep compiling; [`acquire`](Self::acquire) and [`begin`](Self::begin) give
/// instrumented connections and transactions used as `&mut *conn` / `&mut *tx`.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> sqlx::Result<()> {
/// use tracewire_sqlx::InstrumentedPool;
///
/// let pool = InstrumentedPool::new(sqlx::SqlitePool::connect("sqlite::memory:").await?);
/// let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await?;
/// assert_eq!(one, 1);
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
pub struct InstrumentedPool<DB: Database> {
    state: Arc<PoolState<DB>>,
}

struct PoolState<DB: Database> {
    pool: Pool<DB>,
    inst: Arc<Instruments>,
}

impl<DB: Database> Clone for InstrumentedPool<DB> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
        }
    }
}

impl<DB: Database> fmt::Debug for InstrumentedPool<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedPool")
            .field("pool", &self.state.pool)
            .field("name", &self.state.inst.pool_name())
            .finish()
    }
}

fn snapshot<DB: Database>(pool: &Pool<DB>) -> Option<PoolSnapshot> {
    if pool.is_closed() {
        return None;
    }
    let size = u64::from(pool.size());
    let idle = pool.num_idle() as u64;
    Some(PoolSnapshot {
        idle: Some(idle),
        used: Some(size.saturating_sub(idle)),
        max: Some(u64::from(pool.options().get_max_connections())),
        ..PoolSnapshot::default()
    })
}

impl<DB: InstrumentedDatabase> InstrumentedPool<DB> {
    /// Instruments `pool` with the default configuration (global providers, sanitized text).
    pub fn new(pool: Pool<DB>) -> Self {
        Self::builder(pool).build()
    }

    /// A builder taking the shared [`Config`](tracewire_shared::Config) and a pool name.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tracewire_shared::Config;
    /// use tracewire_sqlx::InstrumentedPool;
    ///
    /// let bare = sqlx::SqlitePool::connect_lazy("sqlite::memory:").unwrap();
    /// let pool = InstrumentedPool::builder(bare)
    ///     .config(Config::new().with_metrics(false))
    ///     .pool_name("cache")
    ///     .build();
    /// assert_eq!(pool.pool_name(), "cache");
    /// # }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn builder(pool: Pool<DB>) -> InstrumentedPoolBuilder<DB> {
        InstrumentedPoolBuilder::new(pool)
    }

    pub(crate) fn from_parts(pool: Pool<DB>, make: impl FnOnce(Observe) -> Instruments) -> Self {
        let state = Arc::new_cyclic(|weak: &Weak<PoolState<DB>>| {
            let weak = weak.clone();
            // The gauges hold only a weak handle: once the last clone of this pool is gone they
            // report nothing, and the pool is not kept alive by the meter provider.
            let inst = make(Box::new(move |meter, name| {
                observe_pool(meter, name.to_owned(), move || {
                    weak.upgrade().and_then(|state| snapshot(&state.pool))
                })
            }));
            PoolState {
                pool,
                inst: Arc::new(inst),
            }
        });
        Self { state }
    }

    /// The bare sqlx pool (queries run through it are not traced).
    pub fn inner(&self) -> &Pool<DB> {
        &self.state.pool
    }

    /// The bare sqlx pool, by value.
    pub fn into_inner(self) -> Pool<DB> {
        self.state.pool.clone()
    }

    /// The pool name (`db.client.connection.pool.name`).
    pub fn pool_name(&self) -> &str {
        self.state.inst.pool_name()
    }

    fn parts(&self) -> (InstrumentsRef<'static>, &Pool<DB>) {
        (
            InstrumentsRef::Shared(self.state.inst.clone()),
            &self.state.pool,
        )
    }

    /// Checks a connection out of the pool, like [`Pool::acquire`]; records
    /// `db.client.connection.wait_time` (or a timeout) and, when the connection goes back,
    /// `db.client.connection.use_time`.
    pub fn acquire(
        &self,
    ) -> impl Future<Output = Result<InstrumentedPoolConnection<DB>, Error>> + 'static {
        let inst = self.state.inst.clone();
        let acquire = self.state.pool.acquire();
        async move {
            let timer = Timer::start(inst.timing());
            let result = acquire.await;
            inst.record_acquire(timer, &result);
            Ok(InstrumentedPoolConnection::new(result?, inst))
        }
    }

    /// Checks out an idle connection if one is available now, like [`Pool::try_acquire`].
    pub fn try_acquire(&self) -> Option<InstrumentedPoolConnection<DB>> {
        let conn = self.state.pool.try_acquire()?;
        Some(InstrumentedPoolConnection::new(
            conn,
            self.state.inst.clone(),
        ))
    }

    /// Checks a connection out and begins a transaction, like [`Pool::begin`]. The `BEGIN` is a span.
    pub async fn begin(&self) -> Result<InstrumentedTransaction<'static, DB>, Error> {
        let (conn, inst, lease) = self.acquire().await?.into_parts();
        begin_on(&inst, conn, begin_text(0), None, Some(lease)).await
    }

    /// [`begin`](Self::begin) with a custom statement, like [`Pool::begin_with`].
    pub async fn begin_with(
        &self,
        statement: impl SqlSafeStr,
    ) -> Result<InstrumentedTransaction<'static, DB>, Error> {
        let statement = statement.into_sql_str();
        let (conn, inst, lease) = self.acquire().await?.into_parts();
        begin_on(&inst, conn, statement.clone(), Some(statement), Some(lease)).await
    }

    /// Closes the pool, like [`Pool::close`].
    pub fn close(&self) -> impl Future<Output = ()> + '_ {
        self.state.pool.close()
    }

    /// Whether the pool is closed, like [`Pool::is_closed`].
    pub fn is_closed(&self) -> bool {
        self.state.pool.is_closed()
    }

    /// Open connections, like [`Pool::size`].
    pub fn size(&self) -> u32 {
        self.state.pool.size()
    }

    /// Idle connections, like [`Pool::num_idle`].
    pub fn num_idle(&self) -> usize {
        self.state.pool.num_idle()
    }

    /// The pool's options, like [`Pool::options`].
    pub fn options(&self) -> &PoolOptions<DB> {
        self.state.pool.options()
    }
}

impl<DB: InstrumentedDatabase> From<Pool<DB>> for InstrumentedPool<DB> {
    fn from(pool: Pool<DB>) -> Self {
        Self::new(pool)
    }
}

impl<'c, DB> Executor<'c> for &'_ InstrumentedPool<DB>
where
    DB: InstrumentedDatabase,
    for<'x> &'x mut DB::Connection: Executor<'x, Database = DB>,
{
    type Database = DB;

    instrumented_executor_methods!(self);
}
