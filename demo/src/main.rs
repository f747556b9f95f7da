//! `cargo run -p tracewire-demo`: runs the order flow once and prints its trace.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use tracewire_demo::{DemoTelemetry, Environment, Order, run_order_flow, waterfall};

#[tokio::main]
async fn main() -> ExitCode {
    let telemetry = match DemoTelemetry::from_env() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tracewire-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let env = Environment::detect(Duration::from_millis(300));
    println!("tracewire tour — one order, one trace\n");
    println!(
        "  orders database: {}",
        if env.postgres.is_some() {
            "postgresql (sqlx)"
        } else {
            "sqlite in memory (sqlx)"
        }
    );
    println!("  catalog:         sqlite in memory (diesel)");
    for line in &env.skipped {
        println!("  {line}");
    }
    match telemetry.target() {
        Some(target) => println!("  OTLP export:     {target}"),
        None => println!(
            "  OTLP export:     off (set OTEL_EXPORTER_OTLP_ENDPOINT to send the trace to a collector)"
        ),
    }
    println!();

    let outcome = run_order_flow(&env, &telemetry.config(), &Order::default()).await;
    let style = waterfall::Style {
        color: std::io::stdout().is_terminal(),
    };
    print!("{}", waterfall::render(&telemetry.spans(), style));
    let code = match &outcome {
        Ok(report) => {
            let why = if report.queue.is_none() {
                " (no RabbitMQ: no worker confirmed it)"
            } else {
                ""
            };
            println!(
                "order {} placed (HTTP {}), total {}.{:02}, status {}{why}",
                report.order_id,
                report.http_status,
                report.total_cents / 100,
                report.total_cents % 100,
                report.status
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tracewire-demo: the order flow failed: {e}");
            ExitCode::FAILURE
        }
    };
    let target = telemetry.target().cloned();
    match (telemetry.shutdown().await, target) {
        (Ok(()), Some(target)) => println!(
            "exported to {target}; with docker/compose.yml, find trace {} at http://localhost:16686",
            outcome
                .as_ref()
                .map_or_else(|_| "?".to_owned(), |r| r.trace_id.to_string())
        ),
        (Ok(()), None) => {}
        (Err(e), target) => eprintln!(
            "tracewire-demo: OTLP export to {} failed ({e}); is the collector running? \
             `docker compose -f docker/compose.yml up -d otel-collector jaeger` starts one",
            target.map_or_else(|| "?".to_owned(), |t| t.to_string())
        ),
    }
    code
}
