//! Test support shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use opentelemetry::Value;
use opentelemetry::trace::Status;
use opentelemetry_sdk::trace::SpanData;
use tracewire_diesel::{DieselOptions, DieselTracing};
use tracewire_shared::semconv;
use tracewire_shared::testing::{Telemetry, attr, attr_str, service_url};

/// A marker planted in bind values and passwords; it must never show up in telemetry.
pub const SECRET: &str = "planted-secret-7f3a";

/// A table name unique to this process and call.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "tw_{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn postgres_url() -> String {
    service_url(
        "postgres",
        "TRACEWIRE_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    )
}

/// The PostgreSQL URL with a password planted (trust authentication ignores it).
pub fn postgres_url_with_password() -> String {
    postgres_url().replacen("://postgres@", &format!("://postgres:{SECRET}@"), 1)
}

pub fn mysql_url() -> String {
    service_url(
        "mariadb",
        "TRACEWIRE_MYSQL_URL",
        "mysql://root@127.0.0.1:3306/test",
    )
}

pub fn tracing(t: &Telemetry) -> DieselTracing {
    DieselTracing::new(DieselOptions::new().config(t.config()))
}

/// Finished spans whose `db.query.text` contains `needle`.
pub fn spans_with_text(t: &Telemetry, needle: &str) -> Vec<SpanData> {
    t.finished()
        .into_iter()
        .filter(|s| attr_str(s, semconv::DB_QUERY_TEXT).is_some_and(|q| q.contains(needle)))
        .collect()
}

/// The one finished span whose `db.query.text` contains `needle`.
pub fn span_with_text(t: &Telemetry, needle: &str) -> SpanData {
    let mut found = spans_with_text(t, needle);
    let texts: Vec<_> = t
        .finished()
        .iter()
        .map(|s| (s.name.to_string(), attr_str(s, semconv::DB_QUERY_TEXT)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one span with {needle:?} expected, got {texts:?}"
    );
    found.remove(0)
}

/// Fails when `needle` appears in any span name, attribute, event or status of `t`.
pub fn assert_nowhere(t: &Telemetry, needle: &str) {
    let spans = t.finished();
    assert!(!spans.is_empty());
    for s in spans {
        let dump = format!(
            "{} {:?} {:?} {:?}",
            s.name, s.attributes, s.events.events, s.status
        );
        assert!(!dump.contains(needle), "{needle:?} leaked into {dump}");
    }
    for p in t.metrics() {
        assert!(!format!("{:?}", p.attributes).contains(needle));
    }
}

pub fn is_error(s: &SpanData) -> bool {
    matches!(s.status, Status::Error { .. })
}

pub fn int(s: &SpanData, key: &str) -> Option<i64> {
    match attr(s, key) {
        Some(Value::I64(v)) => Some(*v),
        _ => None,
    }
}

pub fn is_health_check(s: &SpanData) -> bool {
    matches!(
        attr(s, semconv::TRACEWIRE_HEALTH_CHECK),
        Some(Value::Bool(true))
    )
}
