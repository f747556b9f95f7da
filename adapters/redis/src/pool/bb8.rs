//! bb8-redis: [`InstrumentedPool`].

use std::fmt;
use std::sync::{Arc, Weak};

use ::bb8::{ManageConnection, Pool, PooledConnection, RunError};
use bb8_redis::RedisConnectionManager;
use tracewire_shared::metrics::{PoolMetrics, PoolObservers, PoolSnapshot, Timer, observe_pool};

use crate::{InstrumentedGuard, RedisInstrumentation};

/// A bb8 [`Pool`] whose guards are wrapped in [`InstrumentedGuard`]s.
///
/// Records `db.client.connection.wait_time` for each `get`, `db.client.connection.timeouts` when it
/// times out, and observes `db.client.connection.count` (idle / used), `.max`, `.idle.min` and
/// `.pending_requests` from [`Pool::state`], all with `db.client.connection.pool.name`. bb8 has no
/// weak pool handle, so the gauges are reported while this wrapper (or a clone) exists.
///
/// ```no_run
/// use redis::AsyncCommands;
/// use tracewire_redis::{RedisInstrumentation, bb8::InstrumentedPool};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = bb8_redis::RedisConnectionManager::new("redis://127.0.0.1/")?;
/// let pool = bb8::Pool::builder().max_size(8).build(manager).await?;
/// let redis = RedisInstrumentation::builder().server("127.0.0.1", Some(6379)).build();
/// let pool = InstrumentedPool::named(pool, &redis, "cache");
///
/// let mut con = pool.get().await?;
/// let _: () = con.set("k", 1).await?; // span `SET`
/// # Ok(()) }
/// ```
pub struct InstrumentedPool<M: ManageConnection = RedisConnectionManager> {
    pool: Arc<Pool<M>>,
    instrumentation: RedisInstrumentation,
    metrics: Option<(PoolMetrics, Arc<PoolObservers>)>,
}

impl<M: ManageConnection> Clone for InstrumentedPool<M> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            instrumentation: self.instrumentation.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl<M> InstrumentedPool<M>
where
    M: ManageConnection,
    M::Connection: redis::aio::ConnectionLike,
{
    /// Wraps `pool`; its metrics carry `db.client.connection.pool.name` = `redis`.
    pub fn new(pool: Pool<M>, instrumentation: &RedisInstrumentation) -> Self {
        Self {
            pool: Arc::new(pool),
            instrumentation: instrumentation.clone(),
            metrics: None,
        }
        .observe(super::DEFAULT_POOL_NAME.to_owned())
    }

    /// Wraps `pool`; its metrics carry `db.client.connection.pool.name` = `name`.
    pub fn named(
        pool: Pool<M>,
        instrumentation: &RedisInstrumentation,
        name: impl Into<String>,
    ) -> Self {
        Self {
            pool: Arc::new(pool),
            instrumentation: instrumentation.clone(),
            metrics: None,
        }
        .observe(name.into())
    }

    // Observable instruments cannot be unregistered, so the name is fixed at construction.
    fn observe(mut self, name: String) -> Self {
        self.metrics = self.instrumentation.config().metrics_enabled().then(|| {
            let meter = self.instrumentation.db_client().instrumentation().meter();
            let weak: Weak<Pool<M>> = Arc::downgrade(&self.pool);
            let observers = observe_pool(meter, name.clone(), move || {
                weak.upgrade().map(|pool| snapshot(&pool))
            });
            (PoolMetrics::new(meter, name), Arc::new(observers))
        });
        self
    }

    /// A guard from the pool, instrumented; the connection goes back to the pool when it drops.
    pub async fn get(
        &self,
    ) -> Result<InstrumentedGuard<PooledConnection<'_, M>>, RunError<M::Error>> {
        let timer = Timer::start(self.metrics.is_some());
        let result = self.pool.get().await;
        self.record(&result, timer);
        result.map(|guard| InstrumentedGuard::new(guard, &self.instrumentation))
    }

    /// An owned guard from the pool (see bb8's `Pool::get_owned`), instrumented.
    pub async fn get_owned(
        &self,
    ) -> Result<InstrumentedGuard<PooledConnection<'static, M>>, RunError<M::Error>> {
        let timer = Timer::start(self.metrics.is_some());
        let result = self.pool.get_owned().await;
        self.record(&result, timer);
        result.map(|guard| InstrumentedGuard::new(guard, &self.instrumentation))
    }

    fn record<T>(&self, result: &Result<T, RunError<M::Error>>, timer: Timer) {
        let Some((metrics, _)) = &self.metrics else {
            return;
        };
        match result {
            Ok(_) => {
                if let Some(secs) = timer.elapsed_secs() {
                    metrics.wait_time.record(secs, metrics.attributes());
                }
            }
            Err(RunError::TimedOut) => metrics.timeouts.add(1, metrics.attributes()),
            Err(RunError::User(_)) => {}
        }
    }

    /// The wrapped pool.
    pub fn inner(&self) -> &Pool<M> {
        &self.pool
    }
}

fn snapshot<M: ManageConnection>(pool: &Pool<M>) -> PoolSnapshot {
    let state = pool.state();
    let config = pool.config();
    PoolSnapshot {
        idle: Some(u64::from(state.idle_connections)),
        used: Some(u64::from(
            state.connections.saturating_sub(state.idle_connections),
        )),
        max: Some(u64::from(config.max_size)),
        idle_min: config.min_idle.map(u64::from),
        pending_requests: Some(state.statistics.pending_gets()),
        ..PoolSnapshot::default()
    }
}

impl<M: ManageConnection> fmt::Debug for InstrumentedPool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedPool")
            .field("state", &self.pool.state())
            .finish_non_exhaustive()
    }
}
