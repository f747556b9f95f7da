//! The tracewire tour: a realistic order flow across every adapter, recorded as one trace.
//!
//! `cargo run -p tracewire-demo` runs it with no setup: a client (tracewire-reqwest) posts an order
//! to an in-process axum API whose SERVER span continues the incoming `traceparent`; the handler
//! prices it through Redis (tracewire-redis) and a SQLite catalog (tracewire-diesel), stores it with
//! sqlx (tracewire-sqlx, PostgreSQL when reachable, else SQLite), writes an audit row to MariaDB and
//! publishes an event to RabbitMQ (tracewire-lapin), which a [`TaskRunner`](tracewire_lapin::TaskRunner)
//! consumes to confirm the order. Services that are not reachable are skipped.
//!
//! The library exposes the flow so tests can run it with their own providers:
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), tracewire_demo::Error> {
//! use tracewire_demo::{DemoTelemetry, Environment, Order, run_order_flow, waterfall};
//!
//! let telemetry = DemoTelemetry::new("tracewire-demo", None)?;
//! let report = run_order_flow(&Environment::embedded(), &telemetry.config(), &Order::default()).await?;
//! assert_eq!(report.http_status, 201);
//! print!("{}", waterfall::render(&telemetry.spans(), waterfall::Style::default()));
//! telemetry.shutdown().await?;
//! # Ok(()) }
//! ```

mod backends;
mod env;
mod flow;
mod telemetry;
pub mod waterfall;

pub use env::{Environment, Service, Skipped};
pub use flow::{Order, OrderReport, run_order_flow};
pub use telemetry::{DEFAULT_SERVICE_NAME, DemoTelemetry, OtlpTarget, SpanCollector};

/// The error type of the tour: anything, with its message.
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;
