//! OpenTelemetry instrumentation for [sqlx](https://docs.rs/sqlx) pools.
//!
//! Swap a `sqlx::Pool` for an [`InstrumentedPool`] and every query becomes one CLIENT span following
//! the stable database semantic conventions — named by `db.query.summary` (`SELECT orders`), with
//! `db.system.name`, `db.namespace`, `server.address`/`server.port`, sanitized `db.query.text`, and
//! on failure `error.type` and `db.response.status_code` (SQLSTATE, MySQL error number, SQLite
//! extended code) — plus the `db.client.operation.duration` histogram and the pool's connection
//! metrics. Call sites do not change: `&pool`, `&mut *conn` and `&mut *tx` are sqlx executors.
//!
//! # PostgreSQL
//! ```no_run
//! # #[cfg(feature = "postgres")]
//! # async fn example() -> sqlx::Result<()> {
//! use tracewire_sqlx::InstrumentedPool;
//!
//! let pool = InstrumentedPool::new(sqlx::PgPool::connect("postgres://postgres@localhost/shop").await?);
//! let name: String = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
//!     .bind(42_i64)
//!     .fetch_one(&pool)
//!     .await?;
//! # let _ = name; Ok(()) }
//! ```
//!
//! # MySQL / MariaDB
//! ```no_run
//! # #[cfg(feature = "mysql")]
//! # async fn example() -> sqlx::Result<()> {
//! use tracewire_sqlx::InstrumentedPool;
//!
//! let bare = sqlx::MySqlPool::connect("mysql://root@localhost/shop").await?;
//! // `.mariadb(true)` states the flavour; `.detect_server().await` asks the server once.
//! let pool = InstrumentedPool::builder(bare).mariadb(true).build();
//! sqlx::query("UPDATE users SET seen = NOW() WHERE id = ?").bind(42_i64).execute(&pool).await?;
//! # Ok(()) }
//! ```
//!
//! # SQLite
//! ```
//! # #[cfg(feature = "sqlite")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> sqlx::Result<()> {
//! use tracewire_shared::Config;
//! use tracewire_sqlx::InstrumentedPool;
//!
//! let pool = InstrumentedPool::builder(sqlx::SqlitePool::connect("sqlite::memory:").await?)
//!     .config(Config::new()) // providers, statement text, opt-ins
//!     .pool_name("local")
//!     .build();
//! let mut tx = pool.begin().await?;
//! sqlx::raw_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)").execute(&mut *tx).await?;
//! sqlx::query("INSERT INTO t (name) VALUES (?)").bind("a").execute(&mut *tx).await?;
//! tx.commit().await?;
//! let rows = sqlx::query("SELECT id, name FROM t").fetch_all(&pool).await?;
//! assert_eq!(rows.len(), 1);
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```
//!
//! # What is traced
//! Every [`sqlx::Executor`] method (`execute`, `execute_many`, `fetch`, `fetch_many`, `fetch_all`,
//! `fetch_one`, `fetch_optional`) on the pool, a pooled connection or a transaction is one span,
//! started when sqlx is handed the query and ended when its future resolves or its stream ends — or,
//! when the future or stream is dropped first, at drop with `tracewire.cancelled = true`. `BEGIN`,
//! `COMMIT` and `ROLLBACK` (savepoints when nested) are spans too. `prepare`/`describe` are not
//! traced: they run no statement.

mod builder;
mod connection;
mod database;
mod execute;
mod instruments;
mod operation;
mod pool;
mod transaction;

pub use builder::InstrumentedPoolBuilder;
pub use connection::{InstrumentedConnection, InstrumentedPoolConnection};
pub use database::InstrumentedDatabase;
pub use pool::InstrumentedPool;
pub use transaction::InstrumentedTransaction;

/// An instrumented PostgreSQL pool.
#[cfg(feature = "postgres")]
pub type InstrumentedPgPool = InstrumentedPool<sqlx::Postgres>;

/// An instrumented MySQL / MariaDB pool.
#[cfg(feature = "mysql")]
pub type InstrumentedMySqlPool = InstrumentedPool<sqlx::MySql>;

/// An instrumented SQLite pool.
#[cfg(feature = "sqlite")]
pub type InstrumentedSqlitePool = InstrumentedPool<sqlx::Sqlite>;
