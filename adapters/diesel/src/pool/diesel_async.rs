//! diesel-async's deadpool and bb8 pools (feature `async`).

use diesel_async::AsyncConnection;
use tracewire_shared::Config;
use tracewire_shared::metrics::{PoolObservers, PoolSnapshot, observe_pool};

fn count(n: usize) -> Option<u64> {
    u64::try_from(n).ok()
}

/// Reports `db.client.connection.count` (idle / used), `.max` and `.pending_requests` of a
/// deadpool pool (such as diesel-async's) from `Pool::status`. Holds a weak handle: reports stop with the pool.
///
/// ```no_run
/// # async fn demo() {
/// use diesel_async::AsyncPgConnection;
/// use diesel_async::pooled_connection::AsyncDieselConnectionManager;
/// use diesel_async::pooled_connection::deadpool::Pool;
/// use tracewire_shared::Config;
///
/// let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new("postgres://localhost/app");
/// let pool = Pool::builder(manager).build().unwrap();
/// let _observers = tracewire_diesel::pool::observe_deadpool_pool(&pool, "main", &Config::new());
/// # }
/// ```
pub fn observe_deadpool_pool<M>(
    pool: &::deadpool::managed::Pool<M>,
    name: &str,
    config: &Config,
) -> PoolObservers
where
    M: ::deadpool::managed::Manager + 'static,
{
    let weak = pool.weak();
    observe_pool(&super::meter(config), name, move || {
        let status = weak.upgrade()?.status();
        Some(PoolSnapshot {
            idle: count(status.available),
            used: count(status.size.saturating_sub(status.available)),
            max: count(status.max_size),
            idle_max: None,
            idle_min: None,
            pending_requests: count(status.waiting),
        })
    })
}

/// Reports `db.client.connection.count` (idle / used), `.max` and `.idle.min` of a bb8
/// pool (such as diesel-async's) from `Pool::state`. bb8 has no weak handle: the observers keep the pool alive, drop them with
/// it.
///
/// ```no_run
/// # async fn demo() {
/// use diesel_async::AsyncPgConnection;
/// use diesel_async::pooled_connection::AsyncDieselConnectionManager;
/// use diesel_async::pooled_connection::bb8::Pool;
/// use tracewire_shared::Config;
///
/// let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new("postgres://localhost/app");
/// let pool = Pool::builder().build(manager).await.unwrap();
/// let _observers = tracewire_diesel::pool::observe_bb8_pool(&pool, "main", &Config::new());
/// # }
/// ```
pub fn observe_bb8_pool<M>(pool: &::bb8::Pool<M>, name: &str, config: &Config) -> PoolObservers
where
    M: ::bb8::ManageConnection,
{
    let pool = pool.clone();
    observe_pool(&super::meter(config), name, move || {
        let state = pool.state();
        let config = pool.config();
        Some(PoolSnapshot {
            idle: Some(u64::from(state.idle_connections)),
            used: Some(u64::from(
                state.connections.saturating_sub(state.idle_connections),
            )),
            max: Some(u64::from(config.max_size)),
            idle_max: None,
            idle_min: config.min_idle.map(u64::from),
            pending_requests: None,
        })
    })
}

/// A diesel-async pool setup callback (`ManagerConfig::custom_setup`) that establishes connections
/// traced by `tracing`, for pools that should not rely on the process-wide default. Only the host,
/// port and database of the URL are kept.
///
/// ```no_run
/// use diesel_async::AsyncPgConnection;
/// use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
/// use tracewire_diesel::DieselTracing;
///
/// let mut config = ManagerConfig::default();
/// config.custom_setup = tracewire_diesel::pool::traced_setup::<AsyncPgConnection>(&DieselTracing::default());
/// config.recycling_method = RecyclingMethod::Verified;
/// let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config("postgres://localhost/app", config);
/// # let _ = manager;
/// ```
pub fn traced_setup<C>(
    tracing: &crate::DieselTracing,
) -> diesel_async::pooled_connection::SetupCallback<C>
where
    C: AsyncConnection + 'static,
{
    let tracing = tracing.clone();
    Box::new(move |url| {
        let tracer = tracing.for_open_connection(tracing.connection_info(url));
        let establish = C::establish(url);
        Box::pin(async move {
            let mut conn = establish.await?;
            conn.set_instrumentation(tracer);
            Ok(conn)
        })
    })
}
