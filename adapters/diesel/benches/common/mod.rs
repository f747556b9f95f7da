//! The workload both diesel benches time: a SQLite select by primary key on a seeded table, bare,
//! through tracewire, and through diesel-tracing.

use diesel::connection::{LoadConnection, SimpleConnection};
use diesel::prelude::*;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracewire_diesel::{ConnectionInfo, DieselOptions, DieselTracing};
use tracewire_shared::Config;
use tracewire_shared::testing::bench_tracer_provider as provider;
use tracing_subscriber::layer::SubscriberExt;

#[allow(missing_docs)]
pub mod schema {
    diesel::table! {
        users (id) {
            id -> Integer,
            name -> Text,
        }
    }
}
use schema::users;

/// One row of the table.
#[derive(Queryable, Debug)]
#[allow(dead_code)]
pub struct User {
    id: i32,
    name: String,
}

/// Creates the table with 1 000 rows.
pub fn seed<C: SimpleConnection>(conn: &mut C) {
    conn.batch_execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .unwrap();
    let values: Vec<String> = (1..=1000).map(|i| format!("({i}, 'user {i}')")).collect();
    conn.batch_execute(&format!(
        "INSERT INTO users (id, name) VALUES {}",
        values.join(",")
    ))
    .unwrap();
}

/// A seeded in-memory connection without instrumentation.
pub fn bare() -> SqliteConnection {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    seed(&mut conn);
    conn
}

/// A seeded in-memory connection traced by tracewire; `summary` puts `db.query.summary` on
/// duration points.
pub fn ours(sampled: bool, metrics: bool, summary: bool) -> SqliteConnection {
    let config = Config::new()
        .with_tracer_provider(provider(sampled))
        .with_metrics(metrics);
    let tracing = DieselTracing::new(
        DieselOptions::new()
            .config(config)
            .metrics_query_summary(summary),
    );
    let mut conn = bare();
    conn.set_instrumentation(tracing.for_open_connection(ConnectionInfo::parse(":memory:")));
    conn
}

/// A `tracing` dispatcher exporting to OpenTelemetry through tracing-opentelemetry, sampling
/// everything or nothing; its provider is returned to be shut down.
pub fn diesel_tracing_dispatch(sampled: bool) -> (tracing::Dispatch, SdkTracerProvider) {
    let provider = provider(sampled);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("diesel-tracing")));
    (tracing::Dispatch::new(subscriber), provider)
}

/// A seeded diesel-tracing connection; spans go to the dispatcher current when it is used.
pub fn diesel_tracing(
    dispatch: &tracing::Dispatch,
) -> diesel_tracing::sqlite::InstrumentedSqliteConnection {
    tracing::dispatcher::with_default(dispatch, || {
        let mut conn =
            diesel_tracing::sqlite::InstrumentedSqliteConnection::establish(":memory:").unwrap();
        seed(&mut conn);
        conn
    })
}

/// The next primary key of the 1 000, in turn.
pub fn next_id(id: &mut i32) -> i32 {
    *id = *id % 1000 + 1;
    *id
}

/// Selects the user with primary key `id`.
pub fn select<C>(conn: &mut C, id: i32) -> User
where
    C: Connection<Backend = diesel::sqlite::Sqlite> + LoadConnection,
{
    users::table.find(id).first::<User>(conn).unwrap()
}

/// The floor of any OpenTelemetry instrumentation of diesel, for comparison: one CLIENT span per
/// query with a constant name and no attributes, and, when `render`, the query's SQL rendered by
/// diesel (as any instrumentation recording it must), without its binds, into a string that is
/// dropped. No parent lookup, no sanitizing, no metrics.
pub fn floor(sampled: bool, render: bool) -> SqliteConnection {
    let mut conn = bare();
    conn.set_instrumentation(Floor {
        tracer: provider(sampled).tracer("floor"),
        span: None,
        render,
    });
    conn
}

/// Keeps what diesel writes before ` -- binds: ` and stops it there, so that the bind values are
/// neither formatted nor kept. diesel writes that marker in one piece.
struct SqlOnly(String);

impl std::fmt::Write for SqlOnly {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if s == " -- binds: " {
            return Err(std::fmt::Error);
        }
        self.0.push_str(s);
        Ok(())
    }
}

struct Floor {
    tracer: opentelemetry_sdk::trace::SdkTracer,
    span: Option<opentelemetry_sdk::trace::Span>,
    render: bool,
}

impl diesel::connection::Instrumentation for Floor {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::connection::InstrumentationEvent;
        use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                if self.render {
                    let mut sql = SqlOnly(String::new());
                    // Stops with an error at the binds, as intended.
                    let _ = std::fmt::Write::write_fmt(&mut sql, format_args!("{query}"));
                    std::hint::black_box(sql.0);
                }
                self.span = Some(
                    self.tracer
                        .span_builder("SELECT users")
                        .with_kind(SpanKind::Client)
                        .start(&self.tracer),
                );
            }
            InstrumentationEvent::FinishQuery { .. } => {
                if let Some(mut span) = self.span.take() {
                    span.end();
                }
            }
            _ => {}
        }
    }
}
