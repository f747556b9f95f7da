//! SQLite select by primary key: bare diesel vs tracewire (sampled, unsampled) vs diesel-tracing 0.4
//! under tracing-opentelemetry, in one criterion group.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use diesel::prelude::*;
use opentelemetry::trace::TracerProvider as _;
use tracewire_diesel::{ConnectionInfo, DieselOptions, DieselTracing};
use tracewire_shared::Config;
use tracewire_shared::testing::bench_tracer_provider as provider;
use tracing_subscriber::layer::SubscriberExt;

#[allow(missing_docs)]
mod schema {
    diesel::table! {
        users (id) {
            id -> Integer,
            name -> Text,
        }
    }
}
use schema::users;

#[derive(Queryable, Debug)]
#[allow(dead_code)]
struct User {
    id: i32,
    name: String,
}

fn seed<C: Connection<Backend = diesel::sqlite::Sqlite>>(conn: &mut C) {
    conn.batch_execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .unwrap();
    let values: Vec<String> = (1..=1000).map(|i| format!("({i}, 'user {i}')")).collect();
    conn.batch_execute(&format!(
        "INSERT INTO users (id, name) VALUES {}",
        values.join(",")
    ))
    .unwrap();
}

fn ours(sampled: bool, metrics: bool, summary: bool) -> SqliteConnection {
    let config = Config::new()
        .with_tracer_provider(provider(sampled))
        .with_metrics(metrics);
    let tracing = DieselTracing::new(
        DieselOptions::new()
            .config(config)
            .metrics_query_summary(summary),
    );
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    seed(&mut conn);
    conn.set_instrumentation(tracing.for_open_connection(ConnectionInfo::parse(":memory:")));
    conn
}

fn select<C>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    conn: &mut C,
) where
    C: Connection<Backend = diesel::sqlite::Sqlite> + diesel::connection::LoadConnection,
{
    let mut id = 0;
    group.bench_function(name, |b| {
        b.iter(|| {
            id = id % 1000 + 1;
            black_box(users::table.find(id).first::<User>(conn).unwrap())
        })
    });
}

fn bench(c: &mut Criterion) {
    let mut bare = SqliteConnection::establish(":memory:").unwrap();
    seed(&mut bare);
    // Defaults: metrics on (through the global no-op meter), no summary on duration points.
    let mut sampled = ours(true, true, false);
    let mut unsampled = ours(false, true, false);
    let mut unsampled_summary = ours(false, true, true);
    let mut unsampled_no_metrics = ours(false, false, false);

    let mut group = c.benchmark_group("sqlite_select_by_pk");
    select(&mut group, "bare", &mut bare);
    select(&mut group, "tracewire_sampled", &mut sampled);
    select(&mut group, "tracewire_unsampled", &mut unsampled);
    select(
        &mut group,
        "tracewire_unsampled_metrics_with_summary",
        &mut unsampled_summary,
    );
    select(
        &mut group,
        "tracewire_unsampled_metrics_off",
        &mut unsampled_no_metrics,
    );

    for (name, is_sampled) in [
        ("diesel_tracing_sampled", true),
        ("diesel_tracing_unsampled", false),
    ] {
        let provider = provider(is_sampled);
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("diesel-tracing")));
        tracing::subscriber::with_default(subscriber, || {
            let mut conn =
                diesel_tracing::sqlite::InstrumentedSqliteConnection::establish(":memory:")
                    .unwrap();
            seed(&mut conn);
            select(&mut group, name, &mut conn);
        });
        let _ = provider.shutdown();
    }
    group.finish();

    // What the instrumentation pays to learn a query's SQL: diesel renders it on request.
    let mut parts = c.benchmark_group("components");
    let mut id = 0;
    parts.bench_function("render_debug_query", |b| {
        b.iter(|| {
            id = id % 1000 + 1;
            let query = users::table.find(id).limit(1);
            black_box(diesel::debug_query::<diesel::sqlite::Sqlite, _>(&query).to_string())
        })
    });
    parts.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
