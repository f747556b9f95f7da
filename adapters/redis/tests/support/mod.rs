//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;
use tracewire_redis::RedisInstrumentation;
use tracewire_shared::testing::{Telemetry, attr_str, service_url};

pub fn redis_url() -> String {
    service_url("redis", "TRACEWIRE_REDIS_URL", "redis://127.0.0.1:6379/")
}

pub fn client() -> redis::Client {
    redis::Client::open(redis_url()).expect("redis URL")
}

/// A key no other test (or test run) uses.
pub fn key(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "tw:test:{tag}:{}:{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn instrumentation(t: &Telemetry, client: &redis::Client) -> RedisInstrumentation {
    RedisInstrumentation::for_client(client, t.config())
}

/// The finished spans called `name`.
pub fn spans_named(t: &Telemetry, name: &str) -> Vec<SpanData> {
    t.finished()
        .into_iter()
        .filter(|s| s.name == name)
        .collect()
}

pub fn text(span: &SpanData) -> Option<String> {
    attr_str(span, tracewire_shared::semconv::DB_QUERY_TEXT)
}

/// Every string a span carries: name, attribute values, event attributes, status description.
pub fn all_strings(span: &SpanData) -> Vec<String> {
    let mut out = vec![span.name.to_string()];
    let value = |v: &Value| v.as_str().into_owned();
    out.extend(span.attributes.iter().map(|kv| value(&kv.value)));
    for event in span.events.iter() {
        out.push(event.name.to_string());
        out.extend(event.attributes.iter().map(|kv| value(&kv.value)));
    }
    if let opentelemetry::trace::Status::Error { description } = &span.status {
        out.push(description.to_string());
    }
    out
}

/// Fails when `marker` appears anywhere in any finished span.
pub fn assert_nowhere(t: &Telemetry, marker: &str) {
    let spans = t.finished();
    assert!(!spans.is_empty(), "no spans to check");
    for span in &spans {
        for s in all_strings(span) {
            assert!(
                !s.contains(marker),
                "{marker:?} leaked into span {:?}: {s:?}",
                span.name
            );
        }
    }
}

pub fn is_error(span: &SpanData) -> bool {
    matches!(span.status, opentelemetry::trace::Status::Error { .. })
}
