//! Bare sqlx pool vs instrumented (sampled, unsampled): SQLite in-memory select by primary key.

use std::sync::atomic::{AtomicI64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Executor, Row, Sqlite, SqlitePool};
use tracewire_shared::Config;
use tracewire_shared::testing::NoopExporter;
use tracewire_sqlx::InstrumentedPool;

const QUERY: &str = "SELECT id, name FROM t WHERE id = ?";

async fn setup() -> SqlitePool {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    pool.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    for id in 1..=1000_i64 {
        sqlx::query("INSERT INTO t (id, name) VALUES (?, ?)")
            .bind(id)
            .bind(format!("name-{id}"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    pool
}

fn next_id(counter: &AtomicI64) -> i64 {
    counter.fetch_add(1, Ordering::Relaxed) % 1000 + 1
}

fn instrumented(bare: &SqlitePool, provider: SdkTracerProvider) -> InstrumentedPool<Sqlite> {
    // The meter provider stays the global no-op one, as in an application without metrics.
    InstrumentedPool::builder(bare.clone())
        .config(Config::new().with_tracer_provider(provider))
        .build()
}

fn select_by_primary_key(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bare = rt.block_on(setup());
    let sampled_provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(NoopExporter).build())
        .build();
    let unsampled_provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let sampled = instrumented(&bare, sampled_provider.clone());
    let unsampled = instrumented(&bare, unsampled_provider.clone());
    let counter = AtomicI64::new(0);

    let mut group = c.benchmark_group("sqlite_select_by_pk");
    group.bench_function("bare", |b| {
        b.to_async(&rt).iter(|| async {
            let row = sqlx::query(QUERY)
                .bind(next_id(&counter))
                .fetch_one(&bare)
                .await
                .unwrap();
            row.get::<i64, _>(0)
        })
    });
    group.bench_function("instrumented_sampled", |b| {
        b.to_async(&rt).iter(|| async {
            let row = sqlx::query(QUERY)
                .bind(next_id(&counter))
                .fetch_one(&sampled)
                .await
                .unwrap();
            row.get::<i64, _>(0)
        })
    });
    group.bench_function("instrumented_unsampled", |b| {
        b.to_async(&rt).iter(|| async {
            let row = sqlx::query(QUERY)
                .bind(next_id(&counter))
                .fetch_one(&unsampled)
                .await
                .unwrap();
            row.get::<i64, _>(0)
        })
    });
    group.finish();
    let _ = sampled_provider.shutdown();
    let _ = unsampled_provider.shutdown();
}

/// The instrumentation alone — start and end one operation's span, no query — to tell its cost
/// apart from the machine's noise in the end-to-end numbers.
fn span_only(c: &mut Criterion) {
    use tracewire_shared::db::{DbClient, DbTarget};
    use tracewire_shared::sanitize::sql::Dialect;
    use tracewire_shared::{Instrumentation, config::Domain};

    let client = |provider: SdkTracerProvider, metrics: bool| {
        let config = Config::new()
            .with_tracer_provider(provider)
            .with_metrics(metrics);
        let inst = Instrumentation::new(config, "bench", "0", Domain::Database);
        DbClient::new(inst, DbTarget::new("sqlite").with_namespace(":memory:"))
            .with_sql_dialect(Dialect::Sqlite)
    };
    let sampled_provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(NoopExporter).build())
        .build();
    let unsampled_provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let mut group = c.benchmark_group("span_only");
    let sampled = client(sampled_provider.clone(), true);
    group.bench_function("sampled", |b| b.iter(|| sampled.sql(QUERY).end_ok()));
    let unsampled = client(unsampled_provider.clone(), true);
    group.bench_function("unsampled", |b| b.iter(|| unsampled.sql(QUERY).end_ok()));
    let unsampled_no_metrics = client(unsampled_provider.clone(), false);
    group.bench_function("unsampled_metrics_off", |b| {
        b.iter(|| unsampled_no_metrics.sql(QUERY).end_ok())
    });
    group.finish();
    let _ = sampled_provider.shutdown();
}

criterion_group!(benches, select_by_primary_key, span_only);
criterion_main!(benches);
