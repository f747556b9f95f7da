//! SQLite: sync connections, r2d2, transactions, errors, context, metrics.
#![cfg(all(feature = "sqlite", feature = "r2d2", feature = "tokio"))]

mod common;

use common::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::sql_types::{Integer, Text};
use opentelemetry::trace::{SpanKind, TraceContextExt};
use tracewire_diesel::pool::{R2d2Customizer, R2d2EventMetrics, observe_r2d2_pool};
use tracewire_diesel::{ConnectionInfo, DieselOptions, DieselTracing};
use tracewire_shared::semconv;
use tracewire_shared::testing::{Telemetry, attr_str};
use tracewire_shared::{Config, QueryText};

fn connect(tracing: &DieselTracing) -> SqliteConnection {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    conn.set_instrumentation(tracing.for_open_connection(ConnectionInfo::parse(":memory:")));
    conn.batch_execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)")
        .unwrap();
    conn
}

#[allow(missing_docs)]
mod schema {
    diesel::table! {
        users (id) {
            id -> Integer,
            email -> Text,
        }
    }
}
use schema::users;

#[test]
fn query_spans_carry_sanitized_sql_and_never_binds() {
    let t = Telemetry::new();
    let mut conn = connect(&tracing(&t));
    diesel::insert_into(users::table)
        .values((users::id.eq(7), users::email.eq(SECRET)))
        .execute(&mut conn)
        .unwrap();
    let found: (i32, String) = users::table
        .filter(users::email.eq(SECRET))
        .first(&mut conn)
        .unwrap();
    assert_eq!(found, (7, SECRET.to_owned()));

    // diesel quotes every identifier; the summary (and so the span name) names them bare.
    let insert = t.span("INSERT users");
    assert_eq!(insert.span_kind, SpanKind::Client);
    assert_eq!(
        attr_str(&insert, semconv::DB_SYSTEM_NAME).as_deref(),
        Some("sqlite")
    );
    assert_eq!(
        attr_str(&insert, semconv::DB_NAMESPACE).as_deref(),
        Some(":memory:")
    );
    assert_eq!(
        attr_str(&insert, semconv::DB_QUERY_TEXT).as_deref(),
        Some("INSERT INTO `users` (`id`, `email`) VALUES (?, ?)")
    );
    assert_eq!(
        attr_str(&insert, semconv::DB_QUERY_SUMMARY).as_deref(),
        Some("INSERT users")
    );
    let select = t.span("SELECT users");
    assert!(
        attr_str(&select, semconv::DB_QUERY_TEXT)
            .unwrap()
            .ends_with("WHERE (`users`.`email` = ?) LIMIT ?")
    );
    assert!(!is_error(&select));
    assert_nowhere(&t, SECRET);
}

#[test]
fn literals_in_raw_sql_are_masked_and_batches_counted() {
    let t = Telemetry::new();
    let mut conn = connect(&tracing(&t));
    conn.batch_execute(&format!(
        "INSERT INTO users (id, email) VALUES (1, '{SECRET}'); UPDATE users SET email = 'x' WHERE id = 1"
    ))
    .unwrap();
    let batch = span_with_text(&t, "UPDATE users");
    assert_eq!(
        attr_str(&batch, semconv::DB_QUERY_TEXT).as_deref(),
        Some(
            "INSERT INTO users (id, email) VALUES (?, ?); UPDATE users SET email = ? WHERE id = ?"
        )
    );
    assert_eq!(int(&batch, semconv::DB_OPERATION_BATCH_SIZE), Some(2));
    assert_nowhere(&t, SECRET);
}

#[test]
fn errors_end_spans_as_errors_and_reach_the_caller_unchanged() {
    let t = Telemetry::new();
    let mut conn = connect(&tracing(&t));
    let insert = |conn: &mut SqliteConnection| {
        diesel::sql_query("INSERT INTO users (id, email) VALUES (?, ?)")
            .bind::<Integer, _>(1)
            .bind::<Text, _>(SECRET)
            .execute(conn)
    };
    insert(&mut conn).unwrap();
    let err = insert(&mut conn).unwrap_err();
    assert!(matches!(
        err,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    ));
    assert!(
        err.to_string()
            .starts_with("UNIQUE constraint failed: users."),
        "the caller sees diesel's own error: {err}"
    );
    let spans = spans_with_text(&t, "INSERT INTO users");
    assert_eq!(spans.len(), 2);
    let failed: Vec<_> = spans.iter().filter(|s| is_error(s)).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        attr_str(failed[0], semconv::ERROR_TYPE).as_deref(),
        Some("UniqueViolation")
    );
    assert!(failed[0].events.iter().any(|e| e.name == "exception"));

    let bad = diesel::sql_query("SELEKT nonsense").execute(&mut conn);
    assert!(bad.is_err());
    let span = t.span("sqlite");
    assert!(is_error(&span));
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some("_OTHER")
    );
    assert_nowhere(&t, SECRET);
}

#[test]
fn transactions_trace_begin_commit_and_rollback() {
    let t = Telemetry::new();
    let mut conn = connect(&tracing(&t));
    conn.transaction(|c| {
        diesel::sql_query("INSERT INTO users (id, email) VALUES (1, 'a')").execute(c)
    })
    .unwrap();
    let rolled_back: Result<(), diesel::result::Error> = conn.transaction(|c| {
        diesel::sql_query("INSERT INTO users (id, email) VALUES (2, 'b')").execute(c)?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert_eq!(
        rolled_back.unwrap_err(),
        diesel::result::Error::RollbackTransaction
    );
    let names: Vec<String> = t.finished().iter().map(|s| s.name.to_string()).collect();
    let begin = names.iter().filter(|n| *n == "BEGIN").count();
    assert_eq!(begin, 2, "{names:?}");
    assert_eq!(
        names.iter().filter(|n| *n == "COMMIT").count(),
        1,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| *n == "ROLLBACK").count(),
        1,
        "{names:?}"
    );
    let count: i64 = users::table.count().get_result(&mut conn).unwrap();
    assert_eq!(count, 1);
}

#[test]
fn spans_are_children_of_the_current_context_and_of_spawn_blocking_callers() {
    let t = Telemetry::new();
    let tracing = tracing(&t);
    let mut conn = connect(&tracing);
    let parent = t.parent("request");
    let parent_id = parent.span().span_context().span_id();
    {
        let _guard = parent.clone().attach();
        diesel::sql_query("SELECT 1 AS direct")
            .execute(&mut conn)
            .unwrap();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let mut conn = runtime.block_on(async {
        let _guard = parent.clone().attach();
        tracewire_diesel::spawn_blocking(move || {
            diesel::sql_query("SELECT 2 AS blocking")
                .execute(&mut conn)
                .unwrap();
            conn
        })
        .await
        .unwrap()
    });
    drop(parent);
    diesel::sql_query("SELECT 3 AS orphan")
        .execute(&mut conn)
        .unwrap();

    let direct = span_with_text(&t, "direct");
    let blocking = span_with_text(&t, "blocking");
    let orphan = span_with_text(&t, "orphan");
    assert_eq!(direct.parent_span_id, parent_id);
    assert_eq!(blocking.parent_span_id, parent_id);
    assert_ne!(orphan.parent_span_id, parent_id);
    assert_eq!(t.span("request").span_context.span_id(), parent_id);
}

#[test]
fn query_text_options_are_respected() {
    let t = Telemetry::new();
    let tracing =
        DieselTracing::new(DieselOptions::new().config(t.config().with_query_text(QueryText::Off)));
    let mut conn = connect(&tracing);
    diesel::sql_query("SELECT id FROM users WHERE id = 5")
        .execute(&mut conn)
        .unwrap();
    let span = t.span("SELECT users");
    assert_eq!(attr_str(&span, semconv::DB_QUERY_TEXT), None);
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_SUMMARY).as_deref(),
        Some("SELECT users")
    );
}

#[test]
fn unsampled_spans_still_record_durations() {
    let t = Telemetry::unsampled();
    let mut conn = connect(&tracing(&t));
    diesel::sql_query("SELECT id FROM users")
        .execute(&mut conn)
        .unwrap();
    assert!(t.finished().is_empty());
    // No summary on duration points by default, so CREATE and SELECT share one series.
    let points = t.metric("db.client.operation.duration");
    assert_eq!(points.len(), 1, "{points:?}");
    let select = &points[0];
    assert!(select.attr(semconv::DB_QUERY_SUMMARY).is_none());
    assert_eq!(select.count, 2);
    assert_eq!(select.unit, "s");
    assert_eq!(
        select.bounds,
        vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]
    );
    assert_eq!(
        select.attr_str(semconv::DB_SYSTEM_NAME).as_deref(),
        Some("sqlite")
    );
    assert!(select.attr(semconv::DB_QUERY_TEXT).is_none());
}

#[test]
fn metrics_off_and_unsampled_records_nothing_and_keeps_pairing() {
    let t = Telemetry::unsampled();
    let tracing = DieselTracing::new(DieselOptions::new().config(t.config().with_metrics(false)));
    let mut conn = connect(&tracing);
    for _ in 0..3 {
        diesel::sql_query("SELECT id FROM users")
            .execute(&mut conn)
            .unwrap();
    }
    assert!(t.finished().is_empty());
    assert!(t.metric("db.client.operation.duration").is_empty());

    // Sampled with metrics off: the text is rendered lazily and the span renamed.
    let t = Telemetry::new();
    let tracing = DieselTracing::new(DieselOptions::new().config(t.config().with_metrics(false)));
    let mut conn = connect(&tracing);
    diesel::sql_query("SELECT email FROM users")
        .execute(&mut conn)
        .unwrap();
    let span = t.span("SELECT users");
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_TEXT).as_deref(),
        Some("SELECT email FROM users")
    );
}

fn r2d2_pool(
    tracing: &DieselTracing,
    config: &Config,
) -> Pool<ConnectionManager<SqliteConnection>> {
    let path = std::env::temp_dir().join(format!("{}.db", unique("r2d2")));
    let url = path.to_str().unwrap().to_owned();
    Pool::builder()
        .max_size(3)
        .min_idle(Some(1))
        .connection_customizer(Box::new(R2d2Customizer::new(tracing, &url)))
        .event_handler(Box::new(R2d2EventMetrics::new("sqlite-pool", config)))
        .build(ConnectionManager::<SqliteConnection>::new(url))
        .unwrap()
}

#[test]
fn r2d2_checkout_pings_are_marked_and_pool_metrics_reported() {
    let t = Telemetry::new();
    let tracing = tracing(&t);
    let pool = r2d2_pool(&tracing, &t.config());
    let observers = observe_r2d2_pool(&pool, "sqlite-pool", &t.config());
    {
        let mut conn = pool.get().unwrap();
        diesel::sql_query("CREATE TABLE items (id INTEGER PRIMARY KEY)")
            .execute(&mut conn)
            .unwrap();
        let used = t.metric("db.client.connection.count");
        let used = used
            .iter()
            .find(|p| p.attr_str(semconv::DB_CLIENT_CONNECTION_STATE) == Some("used".into()))
            .expect("used connections");
        assert_eq!(used.value, 1.0);
    }
    let pings: Vec<_> = t.finished().into_iter().filter(is_health_check).collect();
    assert_eq!(pings.len(), 1, "one checkout, one ping");
    assert_eq!(
        attr_str(&pings[0], semconv::DB_QUERY_TEXT).as_deref(),
        Some("SELECT ?")
    );
    assert!(!is_health_check(&t.span("CREATE TABLE items")));

    let max = t.metric("db.client.connection.max");
    assert_eq!(max.len(), 1);
    assert_eq!(max[0].value, 3.0);
    assert_eq!(
        max[0]
            .attr_str(semconv::DB_CLIENT_CONNECTION_POOL_NAME)
            .as_deref(),
        Some("sqlite-pool")
    );
    assert_eq!(t.metric("db.client.connection.idle.min")[0].value, 1.0);
    let wait = t.metric("db.client.connection.wait_time");
    assert_eq!(wait.len(), 1);
    assert_eq!(wait[0].count, 1);
    assert_eq!(t.metric("db.client.connection.use_time")[0].count, 1);
    drop(observers);
}

#[test]
fn r2d2_pings_can_be_suppressed() {
    let t = Telemetry::new();
    let tracing = DieselTracing::new(
        DieselOptions::new()
            .config(t.config())
            .suppress_health_checks(true),
    );
    let pool = r2d2_pool(&tracing, &t.config());
    for _ in 0..2 {
        let mut conn = pool.get().unwrap();
        diesel::sql_query("SELECT 2 AS mine")
            .execute(&mut conn)
            .unwrap();
    }
    assert_eq!(spans_with_text(&t, "mine").len(), 2);
    assert!(t.finished().iter().all(|s| !is_health_check(s)));
    assert!(
        t.finished()
            .iter()
            .all(|s| attr_str(s, semconv::DB_QUERY_TEXT).as_deref() != Some("SELECT ?"))
    );
    let durations = t.metric("db.client.operation.duration");
    assert_eq!(
        durations.iter().map(|p| p.count).sum::<u64>(),
        2,
        "pings record no duration"
    );
}

#[test]
fn duration_points_carry_the_summary_only_when_asked() {
    let t = Telemetry::new();
    let tracing = DieselTracing::new(
        DieselOptions::new()
            .config(t.config())
            .metrics_query_summary(true),
    );
    let mut conn = connect(&tracing);
    diesel::sql_query("SELECT id FROM users")
        .execute(&mut conn)
        .unwrap();
    let points = t.metric("db.client.operation.duration");
    assert!(
        points
            .iter()
            .any(|p| p.attr_str(semconv::DB_QUERY_SUMMARY).as_deref() == Some("SELECT users")),
        "{points:?}"
    );
}

#[test]
fn duration_points_leave_the_summary_out_by_default() {
    let t = Telemetry::new();
    let tracing = DieselTracing::new(DieselOptions::new().config(t.config()));
    let mut conn = connect(&tracing);
    diesel::sql_query("SELECT id FROM users")
        .execute(&mut conn)
        .unwrap();
    let span = t.span("SELECT users");
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_SUMMARY).as_deref(),
        Some("SELECT users")
    );
    let points = t.metric("db.client.operation.duration");
    assert_eq!(
        points.iter().map(|p| p.count).sum::<u64>(),
        2,
        "CREATE and SELECT"
    );
    assert!(
        points
            .iter()
            .all(|p| p.attr(semconv::DB_QUERY_SUMMARY).is_none())
    );
}
