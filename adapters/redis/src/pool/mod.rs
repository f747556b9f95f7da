//! Pools: wrappers whose `get()` hands out instrumented connections and records the pool metrics.

#[cfg(feature = "bb8")]
pub mod bb8;
#[cfg(feature = "deadpool")]
pub mod deadpool;

/// The pool name metrics carry when none is given.
pub(crate) const DEFAULT_POOL_NAME: &str = "redis";
