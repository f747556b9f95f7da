//! Benchmarks of the shared crate: SQL analysis throughput, cache hits, Redis command sanitizing, and
//! one span through the recording helper against the raw OpenTelemetry API.
//!
//! `cargo bench -p tracewire-shared --all-features --bench shared`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{
    Span, SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
    TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracewire_shared::cache::AnalysisCache;
use tracewire_shared::config::Domain;
use tracewire_shared::record::SpanRequest;
use tracewire_shared::sanitize::redis::sanitize_command;
use tracewire_shared::sanitize::sql::{Dialect, analyze};
use tracewire_shared::testing::NoopExporter;
use tracewire_shared::{Config, Instrumentation, semconv};

/// A realistic mix: ORM-style parameterized queries, hand-written statements with literals, DDL,
/// comments, a long IN list and a multi-row insert.
const STATEMENTS: &[&str] = &[
    "SELECT u.id, u.email, u.created_at FROM users u WHERE u.id = $1",
    "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON o.customer_id = c.id WHERE o.status = 'shipped' AND o.total > 100.50 ORDER BY o.created_at DESC LIMIT 20",
    "INSERT INTO events (kind, payload, created_at) VALUES ('signup', '{\"plan\":\"pro\",\"seats\":12}', '2026-11-24 10:00:00')",
    "UPDATE accounts SET balance = balance - 42.00, updated_at = now() WHERE id = 7 AND version = 3",
    "DELETE FROM sessions WHERE expires_at < '2026-01-01' -- nightly cleanup",
    "SELECT * FROM products WHERE id IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)",
    "/* report */ SELECT date_trunc('day', created_at) AS d, count(*) FROM orders WHERE created_at >= $1 GROUP BY d",
    "INSERT INTO line_items (order_id, sku, qty, price) VALUES (1, 'A-1', 2, 9.99), (1, 'B-7', 1, 19.5), (2, 'C-3', 4, 1.25)",
    "WITH recent AS (SELECT customer_id, max(created_at) AS last FROM orders GROUP BY customer_id) SELECT c.* FROM customers c JOIN recent r ON r.customer_id = c.id WHERE r.last > '2026-06-01'",
    "CREATE TABLE IF NOT EXISTS audit_log (id BIGSERIAL PRIMARY KEY, actor TEXT NOT NULL, action TEXT, at TIMESTAMPTZ DEFAULT now())",
];

fn sql(c: &mut Criterion) {
    let bytes: usize = STATEMENTS.iter().map(|s| s.len()).sum();
    let mut g = c.benchmark_group("sql");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("analyze_mix_uncached", |b| {
        b.iter(|| {
            for s in STATEMENTS {
                black_box(analyze(black_box(s), Dialect::Postgres));
            }
        })
    });
    g.finish();

    let cache = AnalysisCache::new(Dialect::Postgres, 32 * 1024);
    for s in STATEMENTS {
        cache.analyze(s);
    }
    let mut g = c.benchmark_group("cache");
    g.bench_function("hit", |b| {
        b.iter(|| black_box(cache.analyze(black_box(STATEMENTS[1]))))
    });
    g.finish();
}

fn redis(c: &mut Criterion) {
    let get: [&[u8]; 2] = [b"GET", b"user:1234:profile"];
    let hset: [&[u8]; 6] = [
        b"HSET",
        b"session:abc",
        b"user",
        b"1234",
        b"token",
        b"s3cr3t-t0ken-value",
    ];
    let mut g = c.benchmark_group("redis");
    g.bench_function("sanitize_get", |b| {
        b.iter(|| black_box(sanitize_command(black_box(get))))
    });
    g.bench_function("sanitize_hset", |b| {
        b.iter(|| black_box(sanitize_command(black_box(hset))))
    });
    g.finish();
}

/// The attributes of a typical database span, pushed the way adapters push them.
fn fill(attrs: &mut Vec<KeyValue>) {
    attrs.extend([
        KeyValue::new(semconv::DB_SYSTEM_NAME, semconv::db_system::POSTGRESQL),
        KeyValue::new(semconv::DB_NAMESPACE, "shop"),
        KeyValue::new(semconv::SERVER_ADDRESS, "db.internal"),
        KeyValue::new(semconv::DB_QUERY_TEXT, "SELECT * FROM users WHERE id = $1"),
        KeyValue::new(semconv::DB_QUERY_SUMMARY, "SELECT users"),
    ]);
}

/// The same attributes as one Vec, for the raw API (the helper's own Vec is sized 8 as well).
fn attrs() -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(8);
    fill(&mut attrs);
    attrs
}

/// A client span is nearly always a child (of a request, a job): the parent's sampling decision
/// drives the usual parent-based sampler, so each variant runs under a sampled or unsampled parent.
fn parent(sampled: bool) -> Context {
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::NOT_SAMPLED
    };
    let sc = SpanContext::new(
        TraceId::from(1u128),
        SpanId::from(2u64),
        flags,
        true,
        TraceState::default(),
    );
    Context::new().with_remote_span_context(sc)
}

fn span(c: &mut Criterion) {
    let mut g = c.benchmark_group("span");
    for sampled in [true, false] {
        let label = if sampled { "sampled" } else { "unsampled" };
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_batch_exporter(NoopExporter)
            .build();
        let tracer = provider.tracer("bench-raw");
        let boxed = BoxedTracer::new(Box::new(provider.tracer("bench-boxed")));
        let parent = parent(sampled);
        g.bench_function(format!("raw_api_{label}"), |b| {
            b.iter(|| {
                let mut span = tracer
                    .span_builder("SELECT users")
                    .with_kind(SpanKind::Client)
                    .with_attributes(attrs())
                    .start_with_context(&tracer, &parent);
                span.end();
            })
        });
        g.bench_function(format!("raw_boxed_api_{label}"), |b| {
            b.iter(|| {
                let mut span = boxed
                    .span_builder("SELECT users")
                    .with_kind(SpanKind::Client)
                    .with_attributes(attrs())
                    .start_with_context(&boxed, &parent);
                span.end();
            })
        });
        let inst = Instrumentation::new(
            Config::new()
                .with_tracer_provider(provider.clone())
                .with_metrics(false),
            "bench-helper",
            "0",
            Domain::Database,
        );
        g.bench_function(format!("helper_{label}"), |b| {
            b.iter(|| {
                inst.start(
                    SpanRequest::client("SELECT users").with_parent(&parent),
                    fill,
                )
                .end_ok();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, sql, redis, span);
criterion_main!(benches);
