//! SQLite select by primary key: bare diesel vs tracewire (sampled, unsampled) vs diesel-tracing 0.4
//! under tracing-opentelemetry, in one criterion group, with the floor of any OpenTelemetry
//! instrumentation (a span per query, and the SQL rendered). `benches/paired.rs` measures the same
//! variants in alternating blocks, for what each adds.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::{bare, diesel_tracing, diesel_tracing_dispatch, floor, next_id, ours};
use diesel::prelude::*;

fn select<C>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    conn: &mut C,
) where
    C: diesel::Connection<Backend = diesel::sqlite::Sqlite> + diesel::connection::LoadConnection,
{
    let mut id = 0;
    group.bench_function(name, |b| {
        b.iter(|| black_box(common::select(conn, next_id(&mut id))))
    });
}

fn bench(c: &mut Criterion) {
    let mut bare = bare();
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
    // The floor any OpenTelemetry instrumentation pays: a span per query, and the SQL rendered.
    select(
        &mut group,
        "floor_sampled_span_and_sql",
        &mut floor(true, true),
    );
    select(&mut group, "floor_unsampled_span", &mut floor(false, false));

    for (name, is_sampled) in [
        ("diesel_tracing_sampled", true),
        ("diesel_tracing_unsampled", false),
    ] {
        let (dispatch, provider) = diesel_tracing_dispatch(is_sampled);
        let mut conn = diesel_tracing(&dispatch);
        tracing::dispatcher::with_default(&dispatch, || select(&mut group, name, &mut conn));
        let _ = provider.shutdown();
    }
    group.finish();

    let mut parts = c.benchmark_group("components");
    let mut id = 0;
    parts.bench_function("render_debug_query", |b| {
        b.iter(|| black_box(render_debug_query(next_id(&mut id))))
    });
    parts.finish();
}

/// What the instrumentation pays to learn a query's SQL: diesel renders it on request.
fn render_debug_query(id: i32) -> String {
    let query = common::schema::users::table.find(id).limit(1);
    diesel::debug_query::<diesel::sqlite::Sqlite, _>(&query).to_string()
}

criterion_group!(benches, bench);
criterion_main!(benches);
