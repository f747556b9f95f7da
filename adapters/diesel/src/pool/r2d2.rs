//! r2d2 pools (feature `r2d2`).

use std::fmt;

use diesel::Connection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, R2D2Connection};
use r2d2::HandleEvent;
use r2d2::event::{CheckinEvent, CheckoutEvent, TimeoutEvent};
use tracewire_shared::Config;
use tracewire_shared::metrics::{PoolMetrics, PoolObservers, PoolSnapshot, observe_pool};

use crate::{ConnectionInfo, DieselTracing};

/// Reports `db.client.connection.count` (idle / used), `.max` and `.idle.min` of an r2d2 pool from
/// its state, under `db.client.connection.pool.name = name`.
///
/// The observers hold a handle on the pool (r2d2 has no weak handle): drop them with the pool.
///
/// ```no_run
/// use diesel::r2d2::{ConnectionManager, Pool};
/// use diesel::PgConnection;
/// use tracewire_shared::Config;
///
/// let pool = Pool::new(ConnectionManager::<PgConnection>::new("postgres://localhost/app")).unwrap();
/// let _observers = tracewire_diesel::pool::observe_r2d2_pool(&pool, "main", &Config::new());
/// ```
pub fn observe_r2d2_pool<C>(
    pool: &Pool<ConnectionManager<C>>,
    name: &str,
    config: &Config,
) -> PoolObservers
where
    C: R2D2Connection + 'static,
{
    let pool = pool.clone();
    observe_pool(&super::meter(config), name, move || {
        let state = pool.state();
        Some(PoolSnapshot {
            idle: Some(u64::from(state.idle_connections)),
            used: Some(u64::from(
                state.connections.saturating_sub(state.idle_connections),
            )),
            max: Some(u64::from(pool.max_size())),
            idle_max: None,
            idle_min: pool.min_idle().map(u64::from),
            pending_requests: None,
        })
    })
}

/// An r2d2 event handler recording `db.client.connection.wait_time` (checkout),
/// `db.client.connection.use_time` (checkout to checkin) and `db.client.connection.timeouts`.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use diesel::r2d2::{ConnectionManager, Pool};
/// use diesel::SqliteConnection;
/// use tracewire_diesel::pool::R2d2EventMetrics;
/// use tracewire_shared::Config;
///
/// let pool = Pool::builder()
///     .event_handler(Box::new(R2d2EventMetrics::new("main", &Config::new())))
///     .build(ConnectionManager::<SqliteConnection>::new(":memory:"))
///     .unwrap();
/// # let _ = pool;
/// # }
/// ```
pub struct R2d2EventMetrics {
    metrics: Option<PoolMetrics>,
}

impl fmt::Debug for R2d2EventMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("R2d2EventMetrics").finish_non_exhaustive()
    }
}

impl R2d2EventMetrics {
    /// The handler for the pool called `name` (nothing is recorded when `config` turns metrics off).
    pub fn new(name: &str, config: &Config) -> Self {
        Self {
            metrics: config
                .metrics_enabled()
                .then(|| PoolMetrics::new(&super::meter(config), name)),
        }
    }
}

impl HandleEvent for R2d2EventMetrics {
    fn handle_checkout(&self, event: CheckoutEvent) {
        if let Some(m) = &self.metrics {
            m.wait_time
                .record(event.duration().as_secs_f64(), m.attributes());
        }
    }

    fn handle_checkin(&self, event: CheckinEvent) {
        if let Some(m) = &self.metrics {
            m.use_time
                .record(event.duration().as_secs_f64(), m.attributes());
        }
    }

    fn handle_timeout(&self, _event: TimeoutEvent) {
        if let Some(m) = &self.metrics {
            m.timeouts.add(1, m.attributes());
        }
    }
}

/// An r2d2 connection customizer that traces each connection the pool opens with a given
/// [`DieselTracing`], for pools that should not rely on the process-wide default.
///
/// ```no_run
/// use diesel::r2d2::{ConnectionManager, Pool};
/// use diesel::PgConnection;
/// use tracewire_diesel::{DieselTracing, pool::R2d2Customizer};
///
/// let url = "postgres://app@localhost/app";
/// let tracing = DieselTracing::default();
/// let pool = Pool::builder()
///     .connection_customizer(Box::new(R2d2Customizer::new(&tracing, url)))
///     .build(ConnectionManager::<PgConnection>::new(url))
///     .unwrap();
/// # let _ = pool;
/// ```
#[derive(Debug, Clone)]
pub struct R2d2Customizer {
    tracing: DieselTracing,
    info: ConnectionInfo,
}

impl R2d2Customizer {
    /// Traces the pool's connections to `url` (only host, port and database are kept).
    pub fn new(tracing: &DieselTracing, url: &str) -> Self {
        Self {
            tracing: tracing.clone(),
            info: tracing.connection_info(url),
        }
    }
}

impl<C> CustomizeConnection<C, diesel::r2d2::Error> for R2d2Customizer
where
    C: Connection + 'static,
{
    fn on_acquire(&self, conn: &mut C) -> Result<(), diesel::r2d2::Error> {
        conn.set_instrumentation(self.tracing.for_open_connection(self.info.clone()));
        Ok(())
    }
}
