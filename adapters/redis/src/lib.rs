//! OpenTelemetry instrumentation for [redis-rs](https://docs.rs/redis): one CLIENT span per command
//! or pipeline, with the stable database semantic conventions, and values never recorded.
//!
//! Wrap the connection you already have; everything that took it keeps working:
//!
//! ```no_run
//! use redis::AsyncCommands;
//! use tracewire_redis::RedisInstrumentation;
//!
//! # async fn run() -> redis::RedisResult<()> {
//! let client = redis::Client::open("redis://127.0.0.1/")?;
//! let redis = RedisInstrumentation::for_client(&client, tracewire_shared::Config::new());
//! let mut con = redis.wrap(client.get_multiplexed_async_connection().await?);
//!
//! let _: () = con.set("session:42", "{\"user\":\"alice\"}").await?; // span `SET`, text `SET session:42 ?`
//! let (a, b): (Option<String>, Option<String>) =
//!     redis::pipe().get("a").get("b").query_async(&mut con).await?;   // span `PIPELINE GET`
//! # let _ = (a, b);
//! # Ok(()) }
//! ```
//!
//! | Connection | Wrapper |
//! |---|---|
//! | `MultiplexedConnection`, `ConnectionManager`, async cluster, deadpool-redis `Connection`, any `redis::aio::ConnectionLike` | [`InstrumentedConnection`] ([`RedisInstrumentation::wrap`]) |
//! | a guard that dereferences to one (bb8 `PooledConnection`, `&mut MultiplexedConnection`) | [`InstrumentedGuard`] ([`RedisInstrumentation::wrap_guard`]) |
//! | `redis::Connection`, r2d2 guards, sync cluster, any `redis::ConnectionLike` | [`InstrumentedSyncConnection`] ([`RedisInstrumentation::wrap_sync`]) |
//! | deadpool-redis / bb8-redis pools | `deadpool::InstrumentedPool` / `bb8::InstrumentedPool` (features `deadpool`, `bb8`) |
//!
//! # Spans
//!
//! - name: the command (`GET`); a pipeline is `PIPELINE`, a transaction (`pipe().atomic()`)
//!   `MULTI`, followed by the command when all commands are the same (`PIPELINE GET`, `MULTI SET`);
//! - `db.system.name` = `redis`, `db.operation.name` (= the name), `db.namespace` (the database
//!   index, following `SELECT`), `server.address`, `server.port` (when not 6379);
//! - `db.query.text`: the command in CLI syntax with values masked (`SET k ?`, `AUTH ? ?`,
//!   `HSET h f1 ? f2 ?`); a pipeline's commands joined by newlines, capped at
//!   [`Config::with_max_text_len`](tracewire_shared::Config::with_max_text_len). Values never
//!   appear: [`QueryText::Raw`](tracewire_shared::QueryText::Raw) records the sanitized text too,
//!   and [`QueryText::Off`](tracewire_shared::QueryText::Off) none;
//! - `db.operation.batch.size` for pipelines (the user's commands, without `MULTI`/`EXEC`),
//!   `db.stored_procedure.name` for `EVALSHA`/`FCALL` (the sha or the function);
//! - errors: a server error reply (`-WRONGTYPE …`, returned by the connection as
//!   `Ok(Value::ServerError)`) fails the span with `error.type` and `db.response.status_code` = the
//!   prefix; a pipeline fails on its first error reply; connection errors get a low-cardinality
//!   `error.type` (`io_error`, `timeout`, `parse_error`, …). The caller always gets exactly what the
//!   bare connection returns.
//!
//! # Metrics
//!
//! `db.client.operation.duration` per command or pipeline; the pool wrappers add the
//! `db.client.connection.*` instruments.

// Without a connection feature (`tokio`, `sync`) there is nothing to wrap and the shared machinery
// goes unused.
#![cfg_attr(
    not(any(feature = "tokio", feature = "sync")),
    allow(dead_code, unused_imports)
)]

mod instrumentation;
mod outcome;
mod recorder;
mod resp;

#[cfg(feature = "tokio")]
mod aio;
#[cfg(any(feature = "deadpool", feature = "bb8"))]
mod pool;
#[cfg(feature = "sync")]
mod sync;

pub use instrumentation::{Builder, RedisInstrumentation};

#[cfg(feature = "tokio")]
pub use aio::{InstrumentedConnection, InstrumentedGuard};
#[cfg(feature = "bb8")]
pub use pool::bb8;
#[cfg(feature = "deadpool")]
pub use pool::deadpool;
#[cfg(feature = "sync")]
pub use sync::InstrumentedSyncConnection;

pub use tracewire_shared::Config;
