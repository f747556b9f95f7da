//! deadpool-redis: [`InstrumentedPool`].

use std::fmt;

use deadpool_redis::{Connection, Pool, PoolError};
use tracewire_shared::metrics::{PoolMetrics, PoolObservers, PoolSnapshot, Timer, observe_pool};

use crate::{InstrumentedConnection, RedisInstrumentation};

/// A deadpool-redis [`Pool`] whose connections are [`InstrumentedConnection`]s.
///
/// Records `db.client.connection.wait_time` for each `get`, `db.client.connection.timeouts` when it
/// times out, and observes `db.client.connection.count` (idle / used), `.max` and
/// `.pending_requests` from [`Pool::status`] while the pool exists, all with
/// `db.client.connection.pool.name`.
///
/// ```no_run
/// use redis::AsyncCommands;
/// use tracewire_redis::{RedisInstrumentation, deadpool::InstrumentedPool};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cfg = deadpool_redis::Config::from_url("redis://127.0.0.1/");
/// let pool = cfg.create_pool(Some(deadpool_redis::Runtime::Tokio1))?;
/// let redis = RedisInstrumentation::builder().server("127.0.0.1", Some(6379)).build();
/// let pool = InstrumentedPool::named(pool, &redis, "cache");
///
/// let mut con = pool.get().await?;
/// let _: () = con.set("k", 1).await?; // span `SET`
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct InstrumentedPool {
    pool: Pool,
    instrumentation: RedisInstrumentation,
    metrics: Option<(PoolMetrics, std::sync::Arc<PoolObservers>)>,
}

impl InstrumentedPool {
    /// Wraps `pool`; its metrics carry `db.client.connection.pool.name` = `redis`.
    pub fn new(pool: Pool, instrumentation: &RedisInstrumentation) -> Self {
        Self {
            pool,
            instrumentation: instrumentation.clone(),
            metrics: None,
        }
        .observe(super::DEFAULT_POOL_NAME.to_owned())
    }

    /// Wraps `pool`; its metrics carry `db.client.connection.pool.name` = `name`.
    pub fn named(
        pool: Pool,
        instrumentation: &RedisInstrumentation,
        name: impl Into<String>,
    ) -> Self {
        Self {
            pool,
            instrumentation: instrumentation.clone(),
            metrics: None,
        }
        .observe(name.into())
    }

    // Observable instruments cannot be unregistered, so the name is fixed at construction.
    fn observe(mut self, name: String) -> Self {
        self.metrics = self.instrumentation.config().metrics_enabled().then(|| {
            let meter = self.instrumentation.db_client().instrumentation().meter();
            let weak = self.pool.weak();
            let observers = observe_pool(meter, name.clone(), move || {
                weak.upgrade().map(|pool| snapshot(pool.status()))
            });
            (
                PoolMetrics::new(meter, name),
                std::sync::Arc::new(observers),
            )
        });
        self
    }

    /// A connection from the pool, instrumented.
    pub async fn get(&self) -> Result<InstrumentedConnection<Connection>, PoolError> {
        let timer = Timer::start(self.metrics.is_some());
        let result = self.pool.get().await;
        if let Some((metrics, _)) = &self.metrics {
            match &result {
                Ok(_) => {
                    if let Some(secs) = timer.elapsed_secs() {
                        metrics.wait_time.record(secs, metrics.attributes());
                    }
                }
                Err(PoolError::Timeout(_)) => metrics.timeouts.add(1, metrics.attributes()),
                Err(_) => {}
            }
        }
        result.map(|con| InstrumentedConnection::new(con, &self.instrumentation))
    }

    /// The wrapped pool.
    pub fn inner(&self) -> &Pool {
        &self.pool
    }

    /// The wrapped pool back.
    pub fn into_inner(self) -> Pool {
        self.pool
    }
}

fn snapshot(status: deadpool_redis::Status) -> PoolSnapshot {
    let to = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    PoolSnapshot {
        idle: Some(to(status.available)),
        used: Some(to(status.size.saturating_sub(status.available))),
        max: Some(to(status.max_size)),
        pending_requests: Some(to(status.waiting)),
        ..PoolSnapshot::default()
    }
}

impl fmt::Debug for InstrumentedPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedPool")
            .field("status", &self.pool.status())
            .finish_non_exhaustive()
    }
}
