//! OpenTelemetry instrumentation for [diesel] and [diesel-async]: one CLIENT span per query with
//! sanitized SQL and never a bind value, `db.client.operation.duration`, and pool metrics for r2d2,
//! deadpool and bb8.
//!
//! One line at startup traces every connection established afterwards — directly, through r2d2, or
//! through diesel-async's pools:
//!
//! ```no_run
//! tracewire_diesel::install().expect("diesel instrumentation");
//! ```
//!
//! It sets diesel's process-wide default [`Instrumentation`](diesel::connection::Instrumentation) to a
//! [`QueryTracer`]. Each connection reads its target (`db.system.name`, `server.address`,
//! `server.port`, `db.namespace`) from the establish URL, whose password is skipped as it is parsed
//! and never stored. A connection that is already open is traced with
//! `conn.set_instrumentation(tracing.for_open_connection(info))`.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use diesel::prelude::*;
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//! use tracewire_diesel::{ConnectionInfo, DieselOptions, DieselTracing};
//! use tracewire_shared::{Config, semconv};
//!
//! let spans = InMemorySpanExporter::default();
//! let provider = SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
//! let tracing = DieselTracing::new(DieselOptions::new().config(Config::new().with_tracer_provider(provider)));
//!
//! let mut conn = SqliteConnection::establish(":memory:").unwrap();
//! conn.set_instrumentation(tracing.for_open_connection(ConnectionInfo::parse(":memory:")));
//! diesel::sql_query("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)").execute(&mut conn).unwrap();
//! diesel::sql_query("INSERT INTO users (email) VALUES (?)")
//!     .bind::<diesel::sql_types::Text, _>("alice@example.com")
//!     .execute(&mut conn)
//!     .unwrap();
//!
//! let insert = spans.get_finished_spans().unwrap().pop().unwrap();
//! assert_eq!(insert.name, "INSERT users");
//! assert!(insert.attributes.iter().all(|kv| !kv.value.as_str().contains("alice")));
//! # }
//! ```
//!
//! Sync connections run on the caller's thread; inside `spawn_blocking` use [`spawn_blocking`] (or
//! [`carry`]) so query spans keep the request as their parent.
//!
//! [diesel]: https://diesel.rs
//! [diesel-async]: https://docs.rs/diesel-async

mod blocking;
mod client;
mod connection_info;
mod error;
mod install;
mod instrumentation;
mod options;
pub mod pool;
mod query_text;
mod tracing;

pub use blocking::carry;
#[cfg(feature = "tokio")]
pub use blocking::spawn_blocking;
pub use connection_info::{ConnectionInfo, DbSystem};
pub use install::{install, install_with, installed};
pub use instrumentation::{MAX_IN_FLIGHT, QueryTracer};
pub use options::{DieselOptions, MySqlFlavor};
pub use tracing::DieselTracing;
