//! A collector that is down changes nothing for the application: with the OTLP endpoint on a closed
//! port every operation succeeds with its usual result, nothing panics, the work does not wait on
//! the exporter, and shutting the providers down returns instead of hanging.

use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::SdkTracerProvider;
use sqlx::sqlite::SqlitePoolOptions;
use tracewire_demo::{DemoTelemetry, Environment, Order, OtlpTarget, run_order_flow};
use tracewire_shared::Config;
use tracewire_sqlx::InstrumentedPool;

/// Queries per measurement.
const OPERATIONS: u32 = 200;

/// Runs `OPERATIONS` queries through an instrumented SQLite pool; returns the slowest and the total.
async fn queries(config: Config) -> (Duration, Duration) {
    let bare = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .expect("sqlite");
    let pool = InstrumentedPool::builder(bare).config(config).build();
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    for i in 0..OPERATIONS {
        let one = Instant::now();
        let n: i64 = sqlx::query_scalar("SELECT ? + 1")
            .bind(i64::from(i))
            .fetch_one(&pool)
            .await
            .expect("the query succeeds whatever the collector does");
        assert_eq!(n, i64::from(i) + 1, "the result is unchanged");
        slowest = slowest.max(one.elapsed());
    }
    (slowest, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_changes_nothing_for_the_application() {
    let dead = tracewire_tests::closed_port();
    let telemetry = DemoTelemetry::new(
        "tracewire-dead-collector",
        Some(OtlpTarget::grpc(format!("http://{dead}"))),
    )
    .expect("building the exporters does not need the collector");
    let config = telemetry.config();

    // The whole tour works.
    let report = run_order_flow(&Environment::embedded(), &config, &Order::default())
        .await
        .expect("the order flow with a dead collector");
    assert_eq!(report.http_status, 201);
    assert!(
        telemetry.spans().len() >= 8,
        "spans are still recorded locally"
    );

    // Plain operations cost what they cost without an exporter, give or take noise: the batch
    // processor exports from its own thread, so nothing waits for the dead endpoint.
    let baseline = Config::new()
        .with_tracer_provider(SdkTracerProvider::builder().build())
        .with_metrics(false);
    let (_, without) = queries(baseline).await;
    let (slowest, with) = queries(config).await;
    assert!(
        slowest < Duration::from_secs(1),
        "no operation waits for the collector (slowest {slowest:?})"
    );
    // A generous bound (5 ms per operation), not a benchmark: a blocking export would cost seconds.
    let budget = without + Duration::from_millis(5) * OPERATIONS;
    assert!(
        with < budget,
        "{OPERATIONS} operations took {with:?} with the dead collector, {without:?} without"
    );

    // Shutdown flushes into the void and returns within the export timeout; whether the SDK
    // reports the failed export is its business (an error is allowed), hanging is not.
    tokio::time::timeout(Duration::from_secs(60), telemetry.shutdown())
        .await
        .expect("shutdown returns instead of hanging")
        .ok();
}
