//! The SQLite adapter against in-process SQLite databases (memory and file).
#![cfg(feature = "sqlite")]

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use futures_util::{StreamExt, TryStreamExt};
use opentelemetry::context::FutureExt as _;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Executor, Row, SqlSafeStr, Sqlite, SqliteExecutor, SqlitePool};
use tracewire_shared::semconv::{self, db_system, metric};
use tracewire_shared::testing::{Telemetry, attr_str};
use tracewire_shared::{Config, QueryText};
use tracewire_sqlx::InstrumentedPool;

async fn memory_pool(max: u32) -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(max)
        .connect("sqlite::memory:")
        .await
        .unwrap()
}

async fn file_pool(max: u32) -> (SqlitePool, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("{}.db", common::unique("tracewire_sqlx")));
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(max)
        .connect_with(options)
        .await
        .unwrap();
    (pool, path)
}

/// Creates a table with rows (1, alice), (2, bob), (3, carol) through the bare pool.
async fn table(bare: &SqlitePool) -> String {
    let table = common::unique("people");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, name VARCHAR(64) UNIQUE);
         INSERT INTO {table} (id, name) VALUES (1, 'alice'), (2, 'bob'), (3, 'carol');"
    )))
    .execute(bare)
    .await
    .unwrap();
    table
}

fn instrument(bare: &SqlitePool, config: Config) -> InstrumentedPool<Sqlite> {
    InstrumentedPool::builder(bare.clone())
        .config(config)
        .build()
}

async fn count<'c>(exec: impl SqliteExecutor<'c>, table: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(exec)
        .await
}

#[tokio::test]
async fn every_call_style_is_one_span_under_its_parent() {
    let t = Telemetry::new();
    let bare = memory_pool(1).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config());
    common::check_call_styles!(t, pool, table, "?", count);
}

#[tokio::test]
async fn span_attributes_in_memory() {
    let t = Telemetry::new();
    let bare = memory_pool(1).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config());
    sqlx::query(AssertSqlSafe(format!(
        "SELECT name FROM {table} WHERE name = 'bob'"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    let span = t.span(&format!("SELECT {table}"));
    assert_eq!(
        attr_str(&span, semconv::DB_SYSTEM_NAME).as_deref(),
        Some(db_system::SQLITE)
    );
    assert_eq!(
        attr_str(&span, semconv::DB_NAMESPACE).as_deref(),
        Some(":memory:")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_TEXT),
        Some(format!("SELECT name FROM {table} WHERE name = ?"))
    );
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_SUMMARY),
        Some(format!("SELECT {table}"))
    );
    assert_eq!(attr_str(&span, semconv::SERVER_ADDRESS), None);
    assert_eq!(
        common::int_attr(&span, semconv::DB_RESPONSE_RETURNED_ROWS),
        None,
        "opt-in only"
    );
    assert_eq!(span.instrumentation_scope.name(), "tracewire-sqlx");
    // No parent in scope: a root span.
    assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    assert_eq!(pool.pool_name(), ":memory:");
}

#[tokio::test]
async fn file_database_namespace_is_its_path() {
    let t = Telemetry::new();
    let (bare, path) = file_pool(2).await;
    let pool = instrument(&bare, t.config());
    sqlx::query("SELECT 1").execute(&pool).await.unwrap();
    let span = t.span("SELECT");
    assert_eq!(
        attr_str(&span, semconv::DB_NAMESPACE),
        Some(path.to_string_lossy().into_owned())
    );
    bare.close().await;
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn failures_are_error_spans_and_the_caller_gets_the_same_error() {
    let t = Telemetry::new();
    let bare = memory_pool(1).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config());

    // Syntax error: SQLITE_ERROR (1).
    let sql = || AssertSqlSafe(format!("SELEC name FROM {table}"));
    let ours = sqlx::query(sql()).fetch_all(&pool).await.unwrap_err();
    let theirs = sqlx::query(sql()).fetch_all(&bare).await.unwrap_err();
    assert_eq!(ours.to_string(), theirs.to_string());
    assert!(matches!(ours, sqlx::Error::Database(_)));
    let span = t.span("sqlite");
    common::assert_db_error(&span, "1");

    // Unique violation: SQLITE_CONSTRAINT_UNIQUE (2067).
    let cx = t.parent("unique");
    let insert = || {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (id, name) VALUES (?, ?)"
        )))
        .bind(7_i64)
        .bind("alice")
    };
    let ours = insert()
        .execute(&pool)
        .with_context(cx.clone())
        .await
        .unwrap_err();
    let theirs = insert().execute(&bare).await.unwrap_err();
    assert_eq!(ours.to_string(), theirs.to_string());
    assert_eq!(
        ours.as_database_error().map(|e| e.kind()),
        Some(sqlx::error::ErrorKind::UniqueViolation)
    );
    let span = common::only_child(&t, &cx, &format!("INSERT {table}"));
    common::assert_db_error(&span, "2067");

    // fetch_one without a row: RowNotFound, recorded as `row_not_found`.
    let cx = t.parent("none");
    let err = sqlx::query(AssertSqlSafe(format!(
        "SELECT id FROM {table} WHERE id = 99"
    )))
    .fetch_one(&pool)
    .with_context(cx.clone())
    .await
    .unwrap_err();
    assert!(matches!(err, sqlx::Error::RowNotFound));
    let span = common::only_child(&t, &cx, &format!("SELECT {table}"));
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some("row_not_found")
    );
    assert_eq!(attr_str(&span, semconv::DB_RESPONSE_STATUS_CODE), None);

    // A decode error surfaces after the query succeeded on the server.
    let cx = t.parent("decode");
    let err = sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
        "SELECT name FROM {table} WHERE id = 1"
    )))
    .fetch_one(&pool)
    .with_context(cx.clone())
    .await
    .unwrap_err();
    assert!(matches!(err, sqlx::Error::ColumnDecode { .. }), "{err:?}");
}

#[tokio::test]
async fn secrets_inlined_in_statements_never_reach_a_span() {
    const MARKER: &str = "s3cr3t-Marker-91";
    let t = Telemetry::new();
    let bare = memory_pool(1).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config());
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} (id, name) VALUES (10, '{MARKER}')"
    )))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "SELECT id FROM {table} WHERE name = '{MARKER}'"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    // Unique violation and a syntax error around the literal.
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} (id, name) VALUES (11, '{MARKER}')"
    )))
    .execute(&pool)
    .await
    .unwrap_err();
    sqlx::query(AssertSqlSafe(format!("SELECT '{MARKER}' FROM WHERE")))
        .execute(&pool)
        .await
        .unwrap_err();
    // Unterminated literal.
    sqlx::query(AssertSqlSafe(format!("SELECT '{MARKER}")))
        .execute(&pool)
        .await
        .unwrap_err();
    let spans = t.finished();
    assert_eq!(spans.len(), 5);
    for span in &spans {
        common::assert_no_secret(span, MARKER);
    }
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.status != opentelemetry::trace::Status::Unset)
            .count(),
        3
    );
}

#[tokio::test]
async fn transactions_commit_and_roll_back() {
    let t = Telemetry::new();
    let bare = memory_pool(1).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config());
    let insert = |id: i64| {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (id, name) VALUES (?, ?)"
        )))
        .bind(id)
        .bind(format!("n{id}"))
    };

    let cx = t.parent("rollback");
    async {
        let mut tx = pool.begin().await.unwrap();
        insert(20).execute(&mut *tx).await.unwrap();
        assert_eq!(count(&mut *tx, &table).await.unwrap(), 4);
        tx.rollback().await.unwrap();
    }
    .with_context(cx.clone())
    .await;
    assert_eq!(count(&bare, &table).await.unwrap(), 3);
    assert_eq!(
        common::child_names(&t, &cx),
        vec![
            "BEGIN".to_string(),
            format!("INSERT {table}"),
            format!("SELECT {table}"),
            "ROLLBACK".into()
        ]
    );

    let cx = t.parent("commit on an acquired connection");
    async {
        let mut conn = pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        insert(21).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    .with_context(cx.clone())
    .await;
    assert_eq!(count(&bare, &table).await.unwrap(), 4);
    assert_eq!(
        common::child_names(&t, &cx),
        vec![
            "BEGIN".to_string(),
            format!("INSERT {table}"),
            "COMMIT".into()
        ]
    );

    // A nested transaction is a savepoint; its release and rollback are traced too.
    let cx = t.parent("savepoint");
    async {
        let mut tx = pool.begin().await.unwrap();
        let mut inner = tx.begin().await.unwrap();
        insert(22).execute(&mut *inner).await.unwrap();
        inner.rollback().await.unwrap();
        insert(23).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    .with_context(cx.clone())
    .await;
    let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT id FROM {table} WHERE id > 21"
    )))
    .fetch_all(&bare)
    .await
    .unwrap();
    assert_eq!(ids, vec![23]);
    let spans = common::children(&t, &cx);
    assert_eq!(spans.len(), 6, "{:?}", common::child_names(&t, &cx));
    let texts: Vec<String> = spans
        .iter()
        .filter_map(|s| attr_str(s, semconv::DB_QUERY_TEXT))
        .collect();
    assert!(
        texts.contains(&"SAVEPOINT _sqlx_savepoint_1".to_string()),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"ROLLBACK TO SAVEPOINT _sqlx_savepoint_1".to_string()),
        "{texts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_queries_over_fifty_tasks() {
    let t = Telemetry::new();
    let (bare, path) = file_pool(5).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config());
    let mut tasks = Vec::new();
    for task in 0..50 {
        let (pool, t, table) = (pool.clone(), t.clone(), table.clone());
        tasks.push(tokio::spawn(async move {
            let mut parents = Vec::new();
            for i in 0..10_i64 {
                let cx = t.parent("request");
                let id = (task + i) % 3 + 1;
                let name: String = sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT name FROM {table} WHERE id = ?"
                )))
                .bind(id)
                .fetch_one(&pool)
                .with_context(cx.clone())
                .await
                .unwrap();
                assert_eq!(name, ["alice", "bob", "carol"][(id - 1) as usize]);
                parents.push(common::span_id(&cx));
            }
            parents
        }));
    }
    let mut parents = Vec::new();
    for task in tasks {
        parents.extend(task.await.unwrap());
    }
    let spans = t.spans_of_kind(opentelemetry::trace::SpanKind::Client);
    assert_eq!(spans.len(), 500);
    let mut seen: Vec<_> = spans.iter().map(|s| s.parent_span_id).collect();
    seen.sort_unstable_by_key(|id| u64::from_be_bytes(id.to_bytes()));
    parents.sort_unstable_by_key(|id| u64::from_be_bytes(id.to_bytes()));
    assert_eq!(seen, parents, "every span under its own request");
    seen.dedup();
    assert_eq!(seen.len(), 500);
    bare.close().await;
    let _ = std::fs::remove_file(path);
}

/// Polls `fut` once, expecting it to be pending, then drops it.
async fn poll_once_then_drop<F: Future>(fut: F) {
    let mut fut = pin!(fut);
    let pending = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_pending())).await;
    assert!(pending, "the query finished before it could be cancelled");
}

#[tokio::test]
async fn dropped_future_and_half_read_stream_end_their_spans() {
    let t = Telemetry::new();
    let bare = memory_pool(1).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config());

    let cx = t.parent("dropped future");
    let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT count(*) FROM c";
    poll_once_then_drop(sqlx::query(slow).fetch_all(&pool).with_context(cx.clone())).await;
    let name = tracewire_shared::sanitize::sql::analyze(
        slow,
        tracewire_shared::sanitize::sql::Dialect::Sqlite,
    )
    .summary
    .unwrap();
    let span = common::only_child(&t, &cx, &name);
    common::assert_cancelled(&span);

    let cx = t.parent("half-read stream");
    async {
        let mut rows =
            sqlx::query(AssertSqlSafe(format!("SELECT id FROM {table} ORDER BY id"))).fetch(&pool);
        let first = rows.next().await.unwrap().unwrap();
        assert_eq!(first.get::<i64, _>(0), 1);
        assert!(
            common::children(&t, &cx).is_empty(),
            "still open while the stream lives"
        );
    }
    .with_context(cx.clone())
    .await;
    let span = common::only_child(&t, &cx, &format!("SELECT {table}"));
    common::assert_cancelled(&span);

    // The pool is still usable afterwards.
    assert_eq!(count(&pool, &table).await.unwrap(), 3);
}

#[tokio::test]
async fn returned_rows_when_opted_in() {
    let t = Telemetry::new();
    let bare = memory_pool(1).await;
    let table = table(&bare).await;
    let pool = instrument(
        &bare,
        t.config().with_opt_in(semconv::DB_RESPONSE_RETURNED_ROWS),
    );
    let select = || AssertSqlSafe(format!("SELECT id FROM {table} WHERE id < 3"));

    let cx = t.parent("all");
    sqlx::query(select())
        .fetch_all(&pool)
        .with_context(cx.clone())
        .await
        .unwrap();
    let span = common::only_child(&t, &cx, &format!("SELECT {table}"));
    assert_eq!(
        common::int_attr(&span, semconv::DB_RESPONSE_RETURNED_ROWS),
        Some(2)
    );

    let cx = t.parent("stream");
    async {
        sqlx::query(select())
            .fetch(&pool)
            .try_collect::<Vec<_>>()
            .await
    }
    .with_context(cx.clone())
    .await
    .unwrap();
    let span = common::only_child(&t, &cx, &format!("SELECT {table}"));
    assert_eq!(
        common::int_attr(&span, semconv::DB_RESPONSE_RETURNED_ROWS),
        Some(2)
    );

    let cx = t.parent("optional");
    sqlx::query(AssertSqlSafe(format!(
        "SELECT id FROM {table} WHERE id = 99"
    )))
    .fetch_optional(&pool)
    .with_context(cx.clone())
    .await
    .unwrap();
    let span = common::only_child(&t, &cx, &format!("SELECT {table}"));
    assert_eq!(
        common::int_attr(&span, semconv::DB_RESPONSE_RETURNED_ROWS),
        Some(0)
    );

    let rows = t.metric(metric::DB_CLIENT_RESPONSE_RETURNED_ROWS);
    assert_eq!(rows.iter().map(|p| p.count).sum::<u64>(), 3);
    assert_eq!(rows.iter().map(|p| p.value).sum::<f64>(), 4.0);
}

#[tokio::test]
async fn query_text_modes_and_unsampled_spans() {
    let t = Telemetry::new();
    let bare = memory_pool(1).await;
    let table = table(&bare).await;
    let off = instrument(&bare, t.config().with_query_text(QueryText::Off));
    sqlx::query(AssertSqlSafe(format!(
        "SELECT id FROM {table} WHERE id = 1"
    )))
    .fetch_one(&off)
    .await
    .unwrap();
    let span = t.span(&format!("SELECT {table}"));
    assert_eq!(attr_str(&span, semconv::DB_QUERY_TEXT), None);
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_SUMMARY),
        Some(format!("SELECT {table}"))
    );

    let unsampled = Telemetry::unsampled();
    let pool = instrument(&bare, unsampled.config());
    assert_eq!(count(&pool, &table).await.unwrap(), 3);
    assert!(unsampled.finished().is_empty());
    // The duration metric is recorded whether or not the span is sampled.
    let points = unsampled.metric(metric::DB_CLIENT_OPERATION_DURATION);
    assert_eq!(points.iter().map(|p| p.count).sum::<u64>(), 1);
}

#[tokio::test]
async fn operation_and_pool_metrics() {
    let t = Telemetry::new();
    let bare = memory_pool(2).await;
    let table = table(&bare).await;
    let pool = InstrumentedPool::builder(bare.clone())
        .config(t.config())
        .pool_name("people-db")
        .build();
    assert_eq!(count(&pool, &table).await.unwrap(), 3);
    let _ = sqlx::query("SELEC 1").execute(&pool).await.unwrap_err();

    let points = t.metric(metric::DB_CLIENT_OPERATION_DURATION);
    let ok = points
        .iter()
        .find(|p| p.attr_str(semconv::DB_QUERY_SUMMARY) == Some(format!("SELECT {table}")))
        .expect("a point for the select");
    assert_eq!((ok.unit.as_str(), ok.kind, ok.count), ("s", "histogram", 1));
    assert_eq!(
        ok.attr_str(semconv::DB_SYSTEM_NAME).as_deref(),
        Some("sqlite")
    );
    assert_eq!(ok.attr(semconv::ERROR_TYPE), None);
    assert_eq!(
        ok.attr(semconv::DB_QUERY_TEXT),
        None,
        "never high-cardinality text"
    );
    let failed = points
        .iter()
        .find(|p| p.attr(semconv::ERROR_TYPE).is_some())
        .expect("a point for the failure");
    assert_eq!(failed.attr_str(semconv::ERROR_TYPE).as_deref(), Some("1"));
    assert_eq!(
        failed.bounds,
        tracewire_shared::metrics::DB_DURATION_BOUNDARIES
    );

    let conn = pool.acquire().await.unwrap();
    let pool_attr = |p: &tracewire_shared::testing::MetricPoint| {
        p.attr_str(semconv::DB_CLIENT_CONNECTION_POOL_NAME)
    };
    let counts = t.metric(metric::DB_CLIENT_CONNECTION_COUNT);
    let state = |s: &str| {
        counts
            .iter()
            .find(|p| p.attr_str(semconv::DB_CLIENT_CONNECTION_STATE).as_deref() == Some(s))
            .map(|p| p.value)
    };
    // sqlx returns connections to the pool in the background, so only the totals are exact.
    let (used, idle) = (state("used").unwrap(), state("idle").unwrap());
    assert!(used >= 1.0, "the acquired connection is in use");
    assert_eq!(used + idle, f64::from(pool.size()));
    assert!(
        counts
            .iter()
            .all(|p| pool_attr(p).as_deref() == Some("people-db"))
    );
    let max = t.metric(metric::DB_CLIENT_CONNECTION_MAX);
    assert_eq!(max.len(), 1);
    assert_eq!(max[0].value, 2.0);
    let wait = t.metric(metric::DB_CLIENT_CONNECTION_WAIT_TIME);
    assert_eq!(wait.iter().map(|p| p.count).sum::<u64>(), 1);
    assert_eq!(pool_attr(&wait[0]).as_deref(), Some("people-db"));
    assert!(t.metric(metric::DB_CLIENT_CONNECTION_USE_TIME).is_empty());
    drop(conn);
    let used = t.metric(metric::DB_CLIENT_CONNECTION_USE_TIME);
    assert_eq!(used.iter().map(|p| p.count).sum::<u64>(), 1);

    // Once the last handle is gone, the gauges stop reporting.
    drop(pool);
    assert!(t.metric(metric::DB_CLIENT_CONNECTION_MAX).is_empty());
}

#[tokio::test]
async fn pool_timeouts_are_counted_and_traced() {
    let t = Telemetry::new();
    let bare = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_millis(50))
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let pool = instrument(&bare, t.config());
    let held = pool.acquire().await.unwrap();
    let err = sqlx::query("SELECT 1").execute(&pool).await.unwrap_err();
    assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err:?}");
    let span = t.span("SELECT");
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some("pool_timed_out")
    );
    assert!(matches!(
        pool.acquire().await.unwrap_err(),
        sqlx::Error::PoolTimedOut
    ));
    let timeouts = t.metric(metric::DB_CLIENT_CONNECTION_TIMEOUTS);
    assert_eq!(timeouts.iter().map(|p| p.value).sum::<f64>(), 2.0);
    drop(held);
    sqlx::query("SELECT 1").execute(&pool).await.unwrap();
}

#[tokio::test]
async fn prepare_and_describe_pass_through() {
    let t = Telemetry::new();
    let bare = memory_pool(1).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config());
    let described = (&pool)
        .describe(AssertSqlSafe(format!("SELECT id, name FROM {table}")).into_sql_str())
        .await
        .unwrap();
    assert_eq!(described.columns().len(), 2);
    let stmt = (&pool)
        .prepare(AssertSqlSafe(format!("SELECT name FROM {table} WHERE id = ?")).into_sql_str())
        .await
        .unwrap();
    assert!(t.finished().is_empty(), "preparing runs no statement");
    // A prepared statement executes through the pool like any query: one span.
    use sqlx::Statement as _;
    let name: (String,) = stmt.query_as().bind(2_i64).fetch_one(&pool).await.unwrap();
    assert_eq!(name.0, "bob");
    t.span(&format!("SELECT {table}"));
}

/// Runs the same workload through a bare pool and an instrumented one (on identical databases) and
/// compares every result and error.
#[tokio::test]
async fn differential_bare_vs_instrumented() {
    let t = Telemetry::new();
    let (bare_a, bare_b) = (memory_pool(1).await, memory_pool(1).await);
    let table = common::unique("diff");
    for p in [&bare_a, &bare_b] {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, name VARCHAR(64) UNIQUE);
             INSERT INTO {table} (id, name) VALUES (1, 'alice'), (2, 'bob'), (3, 'carol');"
        )))
        .execute(p)
        .await
        .unwrap();
    }
    let pool = instrument(&bare_b, t.config());
    let expected = common::differential_workload!(&bare_a, table);
    let got = common::differential_workload!(&pool, table);
    assert_eq!(got, expected);
    assert!(expected.iter().any(|r| r.starts_with("err")));
    assert_eq!(t.finished().len(), 11);
}
