//! Carrying the caller's trace context into blocking code.
//!
//! diesel's synchronous connections run the query on the calling thread and parent its span to the
//! context current there. In an async service they run inside `tokio::task::spawn_blocking`, whose
//! closure runs on another thread where the request's context is not current: without help, query
//! spans become roots of new traces. [`carry`] captures the context now and attaches it where the
//! closure runs; [`spawn_blocking`] (feature `tokio`) does both steps.

pub use tracewire_shared::context::carry;

/// `tokio::task::spawn_blocking(carry(f))`: runs `f` on tokio's blocking pool inside the context that
/// is current when this is called, so the diesel queries it runs are children of the caller's span.
///
/// ```no_run
/// # #[cfg(feature = "sqlite")]
/// # async fn demo(pool: diesel::r2d2::Pool<diesel::r2d2::ConnectionManager<diesel::SqliteConnection>>) {
/// use diesel::prelude::*;
///
/// let rows = tracewire_diesel::spawn_blocking(move || {
///     let mut conn = pool.get().unwrap();
///     diesel::sql_query("SELECT 1").execute(&mut conn)
/// })
/// .await
/// .unwrap();
/// # let _ = rows;
/// # }
/// ```
#[cfg(feature = "tokio")]
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(carry(f))
}
