//! `tracewire-shared`: the attributes, sanitizers, context handling and recording helpers that every
//! tracewire adapter builds on.
//!
//! Adapters (`tracewire-sqlx`, `tracewire-redis`, …) are thin: they translate their client's calls into
//! [`record::OperationSpan`]s started through an [`Instrumentation`], with attribute keys from
//! [`semconv`], statement text from [`sanitize`], parents from [`context::parent`] and instruments from
//! [`metrics`]. The database adapters go through [`db::DbClient`], which adds the per-connection
//! attributes, the statement cache and `db.client.operation.duration` on top. Values copied into every
//! span (a server address, a destination name) are made with [`value::shared_str`] and names with
//! [`span_name::intern`], so a span gets them without an allocation. Everything a user can
//! configure lives in [`Config`]; the `testing` module (feature `testing`) holds the in-memory providers the
//! adapters' tests use.
//!
//! ```
//! use tracewire_shared::sanitize::sql::{analyze, Dialect};
//!
//! let analysis = analyze("SELECT * FROM users WHERE email = 'alice@example.com'", Dialect::Postgres);
//! assert_eq!(analysis.text, "SELECT * FROM users WHERE email = ?");
//! assert_eq!(analysis.summary.as_deref(), Some("SELECT users"));
//! ```

pub mod cache;
pub mod config;
pub mod context;
pub mod db;
mod instrumentation;
pub mod metrics;
pub mod propagation;
pub mod record;
pub mod sanitize;
pub mod semconv;
pub mod span_name;
#[cfg(feature = "testing")]
pub mod testing;
mod tracer;
pub mod value;

pub use config::{Config, QueryText};
pub use instrumentation::Instrumentation;
