//! Helpers shared by the per-database integration tests.
#![allow(dead_code, unused_macros, unused_imports)]

use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::trace::SpanData;
use tracewire_shared::semconv;
use tracewire_shared::testing::{Telemetry, attr, attr_str};

/// A table name no other test (or test process) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

pub fn span_id(cx: &Context) -> SpanId {
    cx.span().span_context().span_id()
}

/// The finished spans whose parent is the span held by `cx`.
pub fn children(t: &Telemetry, cx: &Context) -> Vec<SpanData> {
    let parent = span_id(cx);
    t.finished()
        .into_iter()
        .filter(|s| s.parent_span_id == parent)
        .collect()
}

/// Asserts that exactly one span is a child of `cx`, that it is a CLIENT span named `name` in the
/// parent's trace, and returns it.
pub fn only_child(t: &Telemetry, cx: &Context, name: &str) -> SpanData {
    let kids = children(t, cx);
    let names: Vec<_> = kids.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, vec![name.to_string()], "children of the parent");
    let span = kids.into_iter().next().unwrap();
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(
        span.span_context.trace_id(),
        cx.span().span_context().trace_id()
    );
    span
}

/// Asserts the names of the children of `cx`, in the order they ended.
pub fn child_names(t: &Telemetry, cx: &Context) -> Vec<String> {
    let mut kids = children(t, cx);
    kids.sort_by_key(|s| s.end_time);
    kids.iter().map(|s| s.name.to_string()).collect()
}

pub fn int_attr(span: &SpanData, key: &str) -> Option<i64> {
    match attr(span, key) {
        Some(Value::I64(v)) => Some(*v),
        _ => None,
    }
}

pub fn bool_attr(span: &SpanData, key: &str) -> Option<bool> {
    match attr(span, key) {
        Some(Value::Bool(v)) => Some(*v),
        _ => None,
    }
}

/// Asserts a successful span: no error attributes, status unset.
pub fn assert_ok(span: &SpanData) {
    assert_eq!(attr_str(span, semconv::ERROR_TYPE), None, "{span:?}");
    assert_eq!(span.status, Status::Unset, "{}", span.name);
    assert_eq!(bool_attr(span, semconv::TRACEWIRE_CANCELLED), None);
}

/// Asserts a failed span with `code` as both `error.type` and `db.response.status_code`.
pub fn assert_db_error(span: &SpanData, code: &str) {
    assert_eq!(attr_str(span, semconv::ERROR_TYPE).as_deref(), Some(code));
    assert_eq!(
        attr_str(span, semconv::DB_RESPONSE_STATUS_CODE).as_deref(),
        Some(code)
    );
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    let event = span
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("an exception event");
    assert!(
        event
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == semconv::EXCEPTION_TYPE
                && kv.value.as_str() == "sqlx::Error")
    );
}

/// Asserts that `marker` appears nowhere in the span: attributes, events, status, name.
pub fn assert_no_secret(span: &SpanData, marker: &str) {
    let everything = format!(
        "{} {:?} {:?} {:?}",
        span.name, span.attributes, span.events.events, span.status
    );
    assert!(
        !everything.contains(marker),
        "secret leaked into span {}: {everything}",
        span.name
    );
}

/// Asserts the span ended by drop: cancelled, no error.
pub fn assert_cancelled(span: &SpanData) {
    assert_eq!(bool_attr(span, semconv::TRACEWIRE_CANCELLED), Some(true));
    assert_eq!(attr_str(span, semconv::ERROR_TYPE), None);
    assert_eq!(span.status, Status::Unset);
}

/// Runs every drop-in call style against an instrumented pool, each under its own parent, and checks
/// that each yields exactly one span with the right name and parent. `$ph` is the first placeholder
/// (`$1` or `?`), `$count` a function taking the database's `impl Executor`.
macro_rules! check_call_styles {
    ($t:expr, $pool:expr, $table:expr, $ph:literal, $count:path) => {{
        use futures_util::TryStreamExt as _;
        use opentelemetry::context::FutureExt as _;
        use sqlx::{AssertSqlSafe, Executor as _, Row as _};
        let t = &$t;
        let pool = &$pool;
        let table: &str = &$table;
        let select_name = format!("SELECT {table}");
        let by_id = || AssertSqlSafe(format!("SELECT id, name FROM {table} WHERE id = {}", $ph));
        let all = || AssertSqlSafe(format!("SELECT id, name FROM {table} ORDER BY id"));

        let cx = t.parent("query.fetch_one");
        let row = sqlx::query(by_id())
            .bind(1_i64)
            .fetch_one(pool)
            .with_context(cx.clone())
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>(1), "alice");
        let span = common::only_child(t, &cx, &select_name);
        common::assert_ok(&span);

        let cx = t.parent("query_as.fetch_all");
        let rows: Vec<(i64, String)> = sqlx::query_as(all())
            .fetch_all(pool)
            .with_context(cx.clone())
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        common::assert_ok(&common::only_child(t, &cx, &select_name));

        let cx = t.parent("query_scalar.fetch_one");
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(pool)
            .with_context(cx.clone())
            .await
            .unwrap();
        assert_eq!(n, 3);
        common::only_child(t, &cx, &select_name);

        let cx = t.parent("query.fetch_optional");
        let none = sqlx::query(by_id())
            .bind(99_i64)
            .fetch_optional(pool)
            .with_context(cx.clone())
            .await
            .unwrap();
        assert!(none.is_none());
        common::assert_ok(&common::only_child(t, &cx, &select_name));

        let cx = t.parent("query.fetch");
        let rows: Vec<_> = async { sqlx::query(all()).fetch(pool).try_collect::<Vec<_>>().await }
            .with_context(cx.clone())
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        common::assert_ok(&common::only_child(t, &cx, &select_name));

        let cx = t.parent("executor.fetch_many");
        let steps: Vec<_> = async {
            pool.fetch_many(sqlx::query(all()))
                .try_collect::<Vec<_>>()
                .await
        }
        .with_context(cx.clone())
        .await
        .unwrap();
        assert_eq!(steps.iter().filter(|s| s.is_right()).count(), 3);
        common::only_child(t, &cx, &select_name);

        let cx = t.parent("query.execute");
        let done = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {table} SET name = name WHERE id = {}",
            $ph
        )))
        .bind(2_i64)
        .execute(pool)
        .with_context(cx.clone())
        .await
        .unwrap();
        let _ = done;
        common::assert_ok(&common::only_child(t, &cx, &format!("UPDATE {table}")));

        let cx = t.parent("raw_sql.execute");
        sqlx::raw_sql(AssertSqlSafe(format!("DELETE FROM {table} WHERE id = 42")))
            .execute(pool)
            .with_context(cx.clone())
            .await
            .unwrap();
        let span = common::only_child(t, &cx, &format!("DELETE {table}"));
        assert_eq!(
            tracewire_shared::testing::attr_str(&span, tracewire_shared::semconv::DB_QUERY_TEXT),
            Some(format!("DELETE FROM {table} WHERE id = ?"))
        );

        let cx = t.parent("raw_sql.execute_many");
        let batch = format!(
            "UPDATE {table} SET name = name WHERE id = 1; DELETE FROM {table} WHERE id = 43"
        );
        let results: Vec<_> = async {
            sqlx::raw_sql(AssertSqlSafe(batch.clone()))
                .execute_many(pool)
                .try_collect::<Vec<_>>()
                .await
        }
        .with_context(cx.clone())
        .await
        .unwrap();
        assert_eq!(results.len(), 2);
        let span = common::only_child(t, &cx, &format!("UPDATE {table} DELETE {table}"));
        assert_eq!(
            common::int_attr(&span, tracewire_shared::semconv::DB_OPERATION_BATCH_SIZE),
            Some(2)
        );

        let cx = t.parent("impl Executor");
        let n = $count(pool, table).with_context(cx.clone()).await.unwrap();
        assert_eq!(n, 3);
        common::only_child(t, &cx, &select_name);

        let cx = t.parent("acquire");
        let mut conn = pool.acquire().await.unwrap();
        let row = sqlx::query(by_id())
            .bind(3_i64)
            .fetch_one(&mut *conn)
            .with_context(cx.clone())
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>(1), "carol");
        let n = $count(&mut *conn, table)
            .with_context(cx.clone())
            .await
            .unwrap();
        assert_eq!(n, 3);
        drop(conn);
        assert_eq!(
            common::child_names(t, &cx),
            vec![select_name.clone(), select_name.clone()]
        );

        let cx = t.parent("begin");
        async {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {table} SET name = {} WHERE id = 1",
                $ph
            )))
            .bind("alice")
            .execute(&mut *tx)
            .await
            .unwrap();
            let n = $count(&mut *tx, table).await.unwrap();
            assert_eq!(n, 3);
            tx.commit().await.unwrap();
        }
        .with_context(cx.clone())
        .await;
        assert_eq!(
            common::child_names(t, &cx),
            vec![
                "BEGIN".to_string(),
                format!("UPDATE {table}"),
                select_name.clone(),
                "COMMIT".to_string()
            ]
        );
    }};
}
pub(crate) use check_call_styles;

/// A workload of successes and failures run through `$exec` (a `Copy` executor) on `$table`
/// (created with rows 1 alice, 2 bob, 3 carol); returns every result and error rendered as text.
macro_rules! differential_workload {
    ($exec:expr, $table:expr) => {{
        use futures_util::TryStreamExt as _;
        use sqlx::AssertSqlSafe;
        let exec = $exec;
        let table: &str = &$table;
        let mut out: Vec<String> = Vec::new();
        let render = |e: &sqlx::Error| {
            format!(
                "err {e} {:?}",
                e.as_database_error()
                    .and_then(|d| d.code())
                    .map(|c| c.into_owned())
            )
        };
        for sql in [
            format!("INSERT INTO {table} (id, name) VALUES (4, 'dave')"),
            format!("INSERT INTO {table} (id, name) VALUES (4, 'dave')"),
            format!("INSERT INTO {table} (id, name) VALUES (5, 'alice')"),
            format!("UPDATE {table} SET name = 'eve' WHERE id > 3"),
            format!("SELEC * FROM {table}"),
            format!("DELETE FROM {table} WHERE id = 1"),
        ] {
            out.push(match sqlx::query(AssertSqlSafe(sql)).execute(exec).await {
                Ok(done) => format!("ok {}", done.rows_affected()),
                Err(e) => render(&e),
            });
        }
        let all = || AssertSqlSafe(format!("SELECT id, name FROM {table} ORDER BY id"));
        let rows: Vec<(i64, String)> = sqlx::query_as(all()).fetch_all(exec).await.unwrap();
        out.push(format!("{rows:?}"));
        let streamed: Vec<(i64, String)> = sqlx::query_as(all())
            .fetch(exec)
            .try_collect()
            .await
            .unwrap();
        out.push(format!("{streamed:?}"));
        let one = sqlx::query_scalar::<_, String>(AssertSqlSafe(format!(
            "SELECT name FROM {table} WHERE id = 99"
        )))
        .fetch_one(exec)
        .await;
        out.push(format!("{:?}", one.map_err(|e| render(&e))));
        let opt = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(format!(
            "SELECT id, name FROM {table} WHERE id = 2"
        )))
        .fetch_optional(exec)
        .await
        .unwrap();
        out.push(format!("{opt:?}"));
        let bad = sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
            "SELECT name FROM {table} WHERE id = 2"
        )))
        .fetch_one(exec)
        .await;
        out.push(format!("{:?}", bad.map_err(|e| e.to_string())));
        out
    }};
}
pub(crate) use differential_workload;
