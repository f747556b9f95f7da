//! Connection pools: tracing the connections a pool opens without the process-wide default, and the
//! `db.client.connection.*` metrics from the pool's own state.
//!
//! Every observer function returns [`PoolObservers`]; keep it alive as long as the metrics should be
//! reported.

#[cfg(feature = "async")]
mod diesel_async;
#[cfg(feature = "r2d2")]
mod r2d2;

#[cfg(feature = "async")]
pub use self::diesel_async::{observe_bb8_pool, observe_deadpool_pool, traced_setup};
#[cfg(feature = "r2d2")]
pub use self::r2d2::{R2d2Customizer, R2d2EventMetrics, observe_r2d2_pool};

pub use tracewire_shared::metrics::PoolObservers;

use tracewire_shared::Config;
use tracewire_shared::config::Domain;

/// The meter of `config` under this crate's scope.
#[allow(dead_code)]
fn meter(config: &Config) -> opentelemetry::metrics::Meter {
    tracewire_shared::Instrumentation::new(
        config.clone(),
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
        Domain::Database,
    )
    .meter()
    .clone()
}
