//! What each variant of `benches/diesel.rs` adds to a SQLite select by primary key, measured in
//! alternating blocks (`tracewire_shared::testing::paired`), so that the machine's drift between
//! variants cancels. Also scales tracewire's cost to the machine #4's targets were set on, by what
//! diesel-tracing adds here in the same rounds (+1.74 µs sampled, +0.97 µs unsampled there).
//!
//! `cargo bench -p tracewire-diesel --all-features --bench paired -- --rounds 2000 --block 300`

use std::hint::black_box;
use std::time::{Duration, Instant};

use tracewire_shared::testing::paired::Paired;

mod common;
use common::{bare, diesel_tracing, diesel_tracing_dispatch, floor, next_id, select};

/// Times `iters` selects on `conn`, walking the 1 000 keys in turn.
fn selects<C>(mut conn: C) -> impl FnMut(u64) -> Duration
where
    C: diesel::Connection<Backend = diesel::sqlite::Sqlite> + diesel::connection::LoadConnection,
{
    let mut id = 0;
    move |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(select(&mut conn, next_id(&mut id)));
        }
        start.elapsed()
    }
}

/// Bare diesel, tracewire's variants, and the floor any OpenTelemetry instrumentation pays: a
/// span per query (sampled or not) and, sampled, the SQL rendered.
fn ours(paired: Paired<'_>) -> Paired<'_> {
    paired
        .variant("bare", selects(bare()))
        .variant("tracewire_sampled", selects(ours_traced(true, true)))
        .variant("tracewire_unsampled", selects(ours_traced(false, true)))
        .variant(
            "tracewire_unsampled_metrics_off",
            selects(ours_traced(false, false)),
        )
        .variant("floor_sampled_span_and_sql", selects(floor(true, true)))
        .variant("floor_sampled_span", selects(floor(true, false)))
        .variant("floor_unsampled_span", selects(floor(false, false)))
}

/// A connection traced by tracewire, without `db.query.summary` on duration points (the default).
fn ours_traced(sampled: bool, metrics: bool) -> diesel::SqliteConnection {
    common::ours(sampled, metrics, false)
}

fn paired() -> Paired<'static> {
    Paired::new().rounds(1000).block(300).args()
}

fn main() {
    // tracewire alone first: once a `tracing` dispatcher has been set, tracewire's parent lookup
    // (feature `tracing`) also consults `tracing` for the rest of the process, which an application
    // without `tracing` does not pay.
    println!(
        "sqlite_select_by_pk, tracewire, paired\n{}",
        ours(paired()).run()
    );

    // Then tracewire and diesel-tracing in the same rounds, for the scaled figures: there tracewire
    // pays that lookup too, so they err against it.
    let (dispatch_sampled, _provider_sampled) = diesel_tracing_dispatch(true);
    let (dispatch_unsampled, _provider_unsampled) = diesel_tracing_dispatch(false);
    let mut sampled = selects(diesel_tracing(&dispatch_sampled));
    let mut unsampled = selects(diesel_tracing(&dispatch_unsampled));
    let report = ours(paired())
        .variant("diesel_tracing_sampled", |n| {
            tracing::dispatcher::with_default(&dispatch_sampled, || sampled(n))
        })
        .variant("diesel_tracing_unsampled", |n| {
            tracing::dispatcher::with_default(&dispatch_unsampled, || unsampled(n))
        })
        .run();
    println!("sqlite_select_by_pk, with diesel-tracing, paired\n{report}");

    // #4: diesel-tracing adds +1.74 µs sampled and +0.97 µs unsampled on the machine its targets
    // were set on.
    for (variant, calibration, reference_us, target_us) in [
        ("tracewire_sampled", "diesel_tracing_sampled", 1.74, 1.0),
        ("tracewire_unsampled", "diesel_tracing_unsampled", 0.97, 0.2),
        (
            "tracewire_unsampled_metrics_off",
            "diesel_tracing_unsampled",
            0.97,
            0.2,
        ),
        (
            "floor_sampled_span_and_sql",
            "diesel_tracing_sampled",
            1.74,
            1.0,
        ),
        ("floor_sampled_span", "diesel_tracing_sampled", 1.74, 1.0),
        (
            "floor_unsampled_span",
            "diesel_tracing_unsampled",
            0.97,
            0.2,
        ),
    ] {
        let reference = Duration::from_secs_f64(reference_us / 1e6);
        if let Some(scaled) = report.scaled(variant, "bare", calibration, reference) {
            println!(
                "{variant:<44} scaled to #4's machine: +{:.3} µs (target ≤ {target_us} µs)",
                scaled.as_secs_f64() * 1e6
            );
        }
    }
}
