//! The shared database operation layer: SQL statements and generic (Redis) calls, spans and metrics.

use std::cell::Cell;

use opentelemetry::trace::Status;
use tracewire_shared::config::Domain;
use tracewire_shared::db::{DbCall, DbClient, DbTarget};
use tracewire_shared::record::Failure;
use tracewire_shared::sanitize::sql::Dialect;
use tracewire_shared::semconv::{self, metric};
use tracewire_shared::testing::{Telemetry, attr, attr_str};
use tracewire_shared::{Config, Instrumentation, QueryText};

fn client(t: &Telemetry, config: Config, system: &'static str, dialect: Dialect) -> DbClient {
    let inst = Instrumentation::new(config, "tracewire-test", "0", Domain::Database);
    let target =
        DbTarget::new(system)
            .with_namespace("shop")
            .with_server("127.0.0.1", Some(6543), 5432);
    let _ = t;
    DbClient::new(inst, target).with_sql_dialect(dialect)
}

#[test]
fn sql_span_and_metric() {
    let t = Telemetry::new();
    let c = client(
        &t,
        t.config(),
        semconv::db_system::POSTGRESQL,
        Dialect::Postgres,
    );
    c.sql("SELECT * FROM orders WHERE note = 'hunter2' AND id = $1")
        .end_ok();
    let span = t.span("SELECT orders");
    assert_eq!(
        attr_str(&span, semconv::DB_SYSTEM_NAME).as_deref(),
        Some("postgresql")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_NAMESPACE).as_deref(),
        Some("shop")
    );
    assert_eq!(
        attr_str(&span, semconv::SERVER_ADDRESS).as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(attr(&span, semconv::SERVER_PORT), Some(&6543i64.into()));
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_TEXT).as_deref(),
        Some("SELECT * FROM orders WHERE note = ? AND id = $1")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_SUMMARY).as_deref(),
        Some("SELECT orders")
    );
    assert!(attr(&span, semconv::DB_OPERATION_BATCH_SIZE).is_none());
    assert!(
        span.attributes
            .iter()
            .all(|kv| !kv.value.as_str().contains("hunter2"))
    );

    let points = t.metric(metric::DB_CLIENT_OPERATION_DURATION);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].count, 1);
    assert_eq!(
        points[0].attr_str(semconv::DB_QUERY_SUMMARY).as_deref(),
        Some("SELECT orders")
    );
    assert!(
        points[0].attr(semconv::DB_QUERY_TEXT).is_none(),
        "no high-cardinality text on metrics"
    );
    assert!(points[0].attr(semconv::ERROR_TYPE).is_none());
}

#[test]
fn batches_unknown_statements_and_text_modes() {
    let t = Telemetry::new();
    let c = client(&t, t.config(), semconv::db_system::SQLITE, Dialect::Sqlite);
    c.sql("INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)")
        .end_ok();
    let span = t.span("INSERT a INSERT b");
    assert_eq!(
        attr(&span, semconv::DB_OPERATION_BATCH_SIZE),
        Some(&2i64.into())
    );
    c.sql("frobnicate 'x'").end_ok();
    assert_eq!(
        attr_str(&t.span("sqlite"), semconv::DB_QUERY_TEXT).as_deref(),
        Some("frobnicate ?")
    );

    let raw = client(
        &t,
        t.config()
            .with_query_text(QueryText::Raw)
            .with_max_text_len(12),
        "sqlite",
        Dialect::Sqlite,
    );
    raw.sql("SELECT 1 FROM raw_table").end_ok();
    assert_eq!(
        attr_str(&t.span("SELECT raw_table"), semconv::DB_QUERY_TEXT).as_deref(),
        Some("SELECT 1 FRO")
    );
    let off = client(
        &t,
        t.config().with_query_text(QueryText::Off),
        "sqlite",
        Dialect::Sqlite,
    );
    off.sql("SELECT 1 FROM off_table").end_ok();
    let span = t.span("SELECT off_table");
    assert!(attr(&span, semconv::DB_QUERY_TEXT).is_none());
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_SUMMARY).as_deref(),
        Some("SELECT off_table")
    );
}

#[test]
fn errors_reach_span_and_metric_and_cancellation_records_no_duration() {
    let t = Telemetry::new();
    let c = client(&t, t.config(), semconv::db_system::MARIADB, Dialect::MySql);
    let message = c.sanitize_message("Duplicate entry 'alice@example.com' for key 'email'");
    assert_eq!(message, "Duplicate entry ? for key ?");
    c.sql("INSERT INTO users (email) VALUES ('alice@example.com')")
        .end_error(&Failure::new("1062", message).with_db_status_code("1062"));
    let span = t.span("INSERT users");
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some("1062")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_RESPONSE_STATUS_CODE).as_deref(),
        Some("1062")
    );
    assert_eq!(span.status, Status::error("Duplicate entry ? for key ?"));
    drop(c.sql("SELECT * FROM slow"));
    assert_eq!(
        attr(&t.span("SELECT slow"), semconv::TRACEWIRE_CANCELLED),
        Some(&true.into())
    );
    let points = t.metric(metric::DB_CLIENT_OPERATION_DURATION);
    assert_eq!(
        points.len(),
        1,
        "the cancelled query records no duration: {points:?}"
    );
    assert_eq!(
        points[0]
            .attr_str(semconv::DB_RESPONSE_STATUS_CODE)
            .as_deref(),
        Some("1062")
    );
}

#[test]
fn returned_rows_only_when_opted_in() {
    let t = Telemetry::new();
    let c = client(&t, t.config(), "sqlite", Dialect::Sqlite);
    c.sql("SELECT * FROM plain").end_ok_with_rows(Some(3));
    assert!(attr(&t.span("SELECT plain"), semconv::DB_RESPONSE_RETURNED_ROWS).is_none());
    assert!(
        t.metric(metric::DB_CLIENT_RESPONSE_RETURNED_ROWS)
            .is_empty()
    );
    let c = client(
        &t,
        t.config().with_opt_in(semconv::DB_RESPONSE_RETURNED_ROWS),
        "sqlite",
        Dialect::Sqlite,
    );
    c.sql("SELECT * FROM counted").end_ok_with_rows(Some(3));
    assert_eq!(
        attr(
            &t.span("SELECT counted"),
            semconv::DB_RESPONSE_RETURNED_ROWS
        ),
        Some(&3i64.into())
    );
    assert_eq!(
        t.metric(metric::DB_CLIENT_RESPONSE_RETURNED_ROWS)[0].value,
        3.0
    );
}

#[test]
fn generic_operation_like_a_redis_command() {
    let t = Telemetry::new();
    let inst = Instrumentation::new(t.config(), "tracewire-test", "0", Domain::Database);
    let c = DbClient::new(
        inst,
        DbTarget::new(semconv::db_system::REDIS).with_namespace("0"),
    );
    c.operation(
        DbCall::new("EVALSHA")
            .with_operation_name("EVALSHA")
            .with_query_text(|| "EVALSHA abc 1 k ?".to_owned())
            .with_stored_procedure("abc")
            .with_namespace("3")
            .with_batch_size(1)
            .health_check(true),
    )
    .end_ok();
    let span = t.span("EVALSHA");
    assert_eq!(
        attr_str(&span, semconv::DB_OPERATION_NAME).as_deref(),
        Some("EVALSHA")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_TEXT).as_deref(),
        Some("EVALSHA abc 1 k ?")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_STORED_PROCEDURE_NAME).as_deref(),
        Some("abc")
    );
    assert_eq!(attr_str(&span, semconv::DB_NAMESPACE).as_deref(), Some("3"));
    assert!(
        attr(&span, semconv::DB_OPERATION_BATCH_SIZE).is_none(),
        "a batch of one is not a batch"
    );
    assert_eq!(
        attr(&span, semconv::TRACEWIRE_HEALTH_CHECK),
        Some(&true.into())
    );
    let p = &t.metric(metric::DB_CLIENT_OPERATION_DURATION)[0];
    assert_eq!(
        p.attr_str(semconv::DB_OPERATION_NAME).as_deref(),
        Some("EVALSHA")
    );
    assert_eq!(p.attr_str(semconv::DB_NAMESPACE).as_deref(), Some("3"));
}

#[test]
fn a_command_ended_in_place_records_once() {
    let t = Telemetry::new();
    let inst = Instrumentation::new(t.config(), "tracewire-test", "0", Domain::Database);
    let c = DbClient::new(inst, DbTarget::new(semconv::db_system::REDIS));
    let mut op = c.operation(
        DbCall::command("MGET", || "MGET a b c".to_owned())
            .with_namespace("2")
            .with_batch_size(3),
    );
    op.end_error_in_place(
        &Failure::new("WRONGTYPE", "wrong kind").with_db_status_code("WRONGTYPE"),
    );
    op.end_ok_in_place(None);
    drop(op);

    let spans = t.finished();
    assert_eq!(
        spans.len(),
        1,
        "one span, ended by the first end: {spans:?}"
    );
    let span = &spans[0];
    assert_eq!(span.name, "MGET");
    assert_eq!(
        attr_str(span, semconv::DB_OPERATION_NAME).as_deref(),
        Some("MGET")
    );
    assert_eq!(
        attr_str(span, semconv::DB_QUERY_TEXT).as_deref(),
        Some("MGET a b c")
    );
    assert_eq!(
        attr(span, semconv::DB_OPERATION_BATCH_SIZE),
        Some(&3_i64.into())
    );
    assert_eq!(
        attr_str(span, semconv::ERROR_TYPE).as_deref(),
        Some("WRONGTYPE")
    );
    assert!(
        attr(span, semconv::TRACEWIRE_CANCELLED).is_none(),
        "the drop after an in-place end is not a cancellation"
    );
    let points = t.metric(metric::DB_CLIENT_OPERATION_DURATION);
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!(points[0].count, 1, "one duration recorded");
    assert_eq!(
        points[0].attr_str(semconv::ERROR_TYPE).as_deref(),
        Some("WRONGTYPE")
    );
}

#[test]
fn unsampled_operations_build_no_text() {
    let t = Telemetry::unsampled();
    let inst = Instrumentation::new(t.config(), "tracewire-test", "0", Domain::Database);
    let c = DbClient::new(inst, DbTarget::new(semconv::db_system::REDIS));
    let built = Cell::new(false);
    c.operation(DbCall::new("GET").with_query_text(|| {
        built.set(true);
        "GET k".into()
    }))
    .end_ok();
    assert!(!built.get());
    assert!(t.finished().is_empty());
    assert_eq!(
        t.metric(metric::DB_CLIENT_OPERATION_DURATION)[0].count,
        1,
        "metrics do not depend on sampling"
    );
}

#[test]
fn deferred_statements_render_only_when_recording() {
    let sampled = Telemetry::new();
    let c = client(&sampled, sampled.config(), "postgresql", Dialect::Postgres);
    let (op, stmt) = c.start_deferred(None, || {
        Some(c.statement("SELECT * FROM deferred WHERE a = 'x'"))
    });
    op.end_ok();
    assert_eq!(stmt.as_deref().map(|s| s.name()), Some("SELECT deferred"));
    let span = sampled.span("SELECT deferred");
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_TEXT).as_deref(),
        Some("SELECT * FROM deferred WHERE a = ?")
    );
    let point = &sampled.metric(metric::DB_CLIENT_OPERATION_DURATION)[0];
    assert!(
        point.attr(semconv::DB_QUERY_SUMMARY).is_none(),
        "deferred metric series do not depend on sampling"
    );

    let unsampled = Telemetry::unsampled();
    let c = client(
        &unsampled,
        unsampled.config(),
        "postgresql",
        Dialect::Postgres,
    );
    let (op, stmt) = c.start_deferred(None, || panic!("an unsampled operation renders nothing"));
    op.end_ok();
    assert!(stmt.is_none());
    assert_eq!(
        unsampled.metric(metric::DB_CLIENT_OPERATION_DURATION)[0].count,
        1
    );
}

#[test]
fn pool_pings_are_marked_and_summary_can_leave_metrics() {
    let t = Telemetry::new();
    let c = client(&t, t.config(), "postgresql", Dialect::Postgres).with_metrics_summary(false);
    assert!(!c.metrics_need_summary());
    c.sql("select 1;").end_ok();
    c.sql("SELECT 2").end_ok();
    let spans = t.finished();
    let marked: Vec<bool> = spans
        .iter()
        .map(|s| attr(s, semconv::TRACEWIRE_HEALTH_CHECK).is_some())
        .collect();
    assert_eq!(marked, vec![true, false]);
    assert!(
        t.metric(metric::DB_CLIENT_OPERATION_DURATION)
            .iter()
            .all(|p| p.attr(semconv::DB_QUERY_SUMMARY).is_none())
    );
}

#[test]
fn span_and_duration_point_share_their_clock_reads() {
    let t = Telemetry::new();
    let c = client(&t, t.config(), "postgresql", Dialect::Postgres);
    let op = c.sql("SELECT * FROM orders WHERE id = $1");
    std::thread::sleep(std::time::Duration::from_millis(2));
    op.end_ok();
    let span = t.span("SELECT orders");
    let span_secs = span
        .end_time
        .duration_since(span.start_time)
        .unwrap()
        .as_secs_f64();
    let p = &t.metric(metric::DB_CLIENT_OPERATION_DURATION)[0];
    assert_eq!(p.count, 1);
    assert!(span_secs >= 0.002, "{span_secs}");
    assert_eq!(
        p.value, span_secs,
        "the histogram and the span agree exactly"
    );
}

#[test]
fn prebuilt_operation_attributes_follow_namespace_and_outcome() {
    let t = Telemetry::new();
    let inst = Instrumentation::new(t.config(), "tracewire-test", "0", Domain::Database);
    let c = DbClient::new(inst, DbTarget::new(semconv::db_system::REDIS));
    let get = |ns: &'static str| {
        DbCall::new("GET")
            .with_operation_name("GET")
            .with_namespace(ns)
    };
    c.operation(get("0")).end_ok();
    c.operation(get("0")).end_ok();
    c.operation(get("5")).end_ok();
    c.operation(get("0"))
        .end_error(&Failure::new("WRONGTYPE", "wrong kind of value"));
    let points = t.metric(metric::DB_CLIENT_OPERATION_DURATION);
    let find = |ns: &str, error: Option<&str>| {
        points
            .iter()
            .find(|p| {
                p.attr_str(semconv::DB_NAMESPACE).as_deref() == Some(ns)
                    && p.attr_str(semconv::ERROR_TYPE).as_deref() == error
            })
            .unwrap_or_else(|| panic!("no point for {ns} {error:?} in {points:?}"))
    };
    assert_eq!(points.len(), 3, "{points:?}");
    assert_eq!(find("0", None).count, 2);
    assert_eq!(find("5", None).count, 1);
    assert_eq!(find("0", Some("WRONGTYPE")).count, 1);
    for p in &points {
        assert_eq!(
            p.attr_str(semconv::DB_OPERATION_NAME).as_deref(),
            Some("GET")
        );
        assert_eq!(
            p.attr_str(semconv::DB_SYSTEM_NAME).as_deref(),
            Some("redis")
        );
    }
}
