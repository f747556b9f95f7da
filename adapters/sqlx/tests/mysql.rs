//! The MySQL adapter against the local MariaDB server (`TRACEWIRE_MYSQL_URL`).
#![cfg(feature = "mysql")]

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use futures_util::StreamExt;
use opentelemetry::context::FutureExt as _;
use sqlx::mysql::MySqlPoolOptions;
use sqlx::{AssertSqlSafe, MySql, MySqlExecutor, MySqlPool, Row};
use tracewire_shared::Config;
use tracewire_shared::sanitize::sql::{Dialect, analyze};
use tracewire_shared::semconv::{self, db_system};
use tracewire_shared::testing::{Telemetry, attr_str, service_url};
use tracewire_sqlx::InstrumentedPool;

async fn bare_pool(max: u32) -> MySqlPool {
    let url = service_url(
        "mariadb",
        "TRACEWIRE_MYSQL_URL",
        "mysql://root@127.0.0.1:3306/test",
    );
    MySqlPoolOptions::new()
        .max_connections(max)
        .connect(&url)
        .await
        .unwrap()
}

async fn create(bare: &MySqlPool, table: &str) {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (id BIGINT PRIMARY KEY, name VARCHAR(64) UNIQUE);
         INSERT INTO {table} (id, name) VALUES (1, 'alice'), (2, 'bob'), (3, 'carol');"
    )))
    .execute(bare)
    .await
    .unwrap();
}

async fn table(bare: &MySqlPool) -> String {
    let table = common::unique("people");
    create(bare, &table).await;
    table
}

async fn drop_table(bare: &MySqlPool, table: &str) {
    sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
        .execute(bare)
        .await
        .unwrap();
}

/// Detects the server flavour once, as an application would at startup.
async fn instrument(bare: &MySqlPool, config: Config) -> InstrumentedPool<MySql> {
    InstrumentedPool::builder(bare.clone())
        .config(config)
        .detect_server()
        .await
        .build()
}

async fn count<'c>(exec: impl MySqlExecutor<'c>, table: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(exec)
        .await
}

#[tokio::test]
async fn every_call_style_is_one_span_under_its_parent() {
    let t = Telemetry::new();
    let bare = bare_pool(3).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config()).await;
    common::check_call_styles!(t, pool, table, "?", count);

    // Connection-level attributes, from the connect options.
    let span = t.finished().into_iter().next().unwrap();
    assert_eq!(
        attr_str(&span, semconv::DB_SYSTEM_NAME).as_deref(),
        Some(db_system::MARIADB)
    );
    assert_eq!(
        attr_str(&span, semconv::DB_NAMESPACE).as_deref(),
        Some("test")
    );
    assert_eq!(
        attr_str(&span, semconv::SERVER_ADDRESS).as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        common::int_attr(&span, semconv::SERVER_PORT),
        None,
        "default port left out"
    );
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_TEXT),
        Some(format!("SELECT id, name FROM {table} WHERE id = ?"))
    );
    assert_eq!(pool.pool_name(), "127.0.0.1/test");

    // Without detection the flavour is whatever the builder is told.
    let told = InstrumentedPool::builder(bare.clone())
        .mariadb(false)
        .config(t.config())
        .build();
    let cx = t.parent("told mysql");
    count(&told, &table).with_context(cx.clone()).await.unwrap();
    let span = common::only_child(&t, &cx, &format!("SELECT {table}"));
    assert_eq!(
        attr_str(&span, semconv::DB_SYSTEM_NAME).as_deref(),
        Some(db_system::MYSQL)
    );
    drop_table(&bare, &table).await;
}

#[tokio::test]
async fn failures_carry_error_numbers_and_the_caller_gets_the_same_error() {
    const MARKER: &str = "my-s3cr3t-Marker";
    let t = Telemetry::new();
    let bare = bare_pool(2).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config()).await;

    let cx = t.parent("syntax");
    let sql = || AssertSqlSafe(format!("SELEC name FROM {table} WHERE name = '{MARKER}'"));
    let ours = sqlx::query(sql())
        .fetch_all(&pool)
        .with_context(cx.clone())
        .await
        .unwrap_err();
    let theirs = sqlx::query(sql()).fetch_all(&bare).await.unwrap_err();
    assert_eq!(ours.to_string(), theirs.to_string());
    let span = common::only_child(&t, &cx, "mariadb");
    common::assert_db_error(&span, "1064");

    let cx = t.parent("unique");
    let insert = || {
        AssertSqlSafe(format!(
            "INSERT INTO {table} (id, name) VALUES (9, 'alice{MARKER}'), (10, 'alice{MARKER}')"
        ))
    };
    let ours = sqlx::query(insert())
        .execute(&pool)
        .with_context(cx.clone())
        .await
        .unwrap_err();
    let theirs = sqlx::query(insert()).execute(&bare).await.unwrap_err();
    assert_eq!(ours.to_string(), theirs.to_string());
    assert_eq!(
        ours.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("23000")
    );
    let span = common::only_child(&t, &cx, &format!("INSERT {table}"));
    common::assert_db_error(&span, "1062");

    // A bound parameter that breaks a constraint: the server's detail would carry the value.
    let cx = t.parent("bound");
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} (id, name) VALUES (?, ?)"
    )))
    .bind(1_i64)
    .bind(MARKER)
    .execute(&pool)
    .with_context(cx.clone())
    .await
    .unwrap_err();
    common::assert_db_error(
        &common::only_child(&t, &cx, &format!("INSERT {table}")),
        "1062",
    );

    // The server quotes the offending token, literal and all.
    let cx = t.parent("literal token");
    sqlx::query(AssertSqlSafe(format!(
        "SELECT id '{MARKER}' 'x' FROM {table}"
    )))
    .fetch_all(&pool)
    .with_context(cx.clone())
    .await
    .unwrap_err();
    assert_eq!(common::children(&t, &cx).len(), 1);

    for span in t.finished() {
        common::assert_no_secret(&span, MARKER);
    }
    drop_table(&bare, &table).await;
}

#[tokio::test]
async fn transactions_commit_and_roll_back() {
    let t = Telemetry::new();
    let bare = bare_pool(2).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config()).await;
    let insert = |id: i64| {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (id, name) VALUES (?, ?)"
        )))
        .bind(id)
        .bind(format!("n{id}"))
    };
    let cx = t.parent("tx");
    async {
        let mut tx = pool.begin().await.unwrap();
        insert(20).execute(&mut *tx).await.unwrap();
        tx.rollback().await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        insert(21).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    .with_context(cx.clone())
    .await;
    let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT id FROM {table} WHERE id >= 20"
    )))
    .fetch_all(&bare)
    .await
    .unwrap();
    assert_eq!(ids, vec![21]);
    let insert_name = format!("INSERT {table}");
    assert_eq!(
        common::child_names(&t, &cx),
        [
            "BEGIN",
            &insert_name,
            "ROLLBACK",
            "BEGIN",
            &insert_name,
            "COMMIT"
        ]
    );
    drop_table(&bare, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_queries_over_fifty_tasks() {
    let t = Telemetry::new();
    let bare = bare_pool(10).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config()).await;
    let mut tasks = Vec::new();
    for task in 0..50_i64 {
        let (pool, t, table) = (pool.clone(), t.clone(), table.clone());
        tasks.push(tokio::spawn(async move {
            let mut parents = Vec::new();
            for i in 0..10_i64 {
                let cx = t.parent("request");
                let id = (task + i) % 3 + 1;
                let row = sqlx::query(AssertSqlSafe(format!(
                    "SELECT id FROM {table} WHERE id = ?"
                )))
                .bind(id)
                .fetch_one(&pool)
                .with_context(cx.clone())
                .await
                .unwrap();
                assert_eq!(row.get::<i64, _>(0), id);
                parents.push(common::span_id(&cx));
            }
            parents
        }));
    }
    let mut parents = Vec::new();
    for task in tasks {
        parents.extend(task.await.unwrap());
    }
    let mut seen: Vec<_> = t
        .spans_of_kind(opentelemetry::trace::SpanKind::Client)
        .iter()
        .map(|s| s.parent_span_id)
        .collect();
    assert_eq!(seen.len(), 500);
    seen.sort_unstable_by_key(|id| u64::from_be_bytes(id.to_bytes()));
    parents.sort_unstable_by_key(|id| u64::from_be_bytes(id.to_bytes()));
    assert_eq!(seen, parents);
    seen.dedup();
    assert_eq!(seen.len(), 500);
    drop_table(&bare, &table).await;
}

async fn poll_once_then_drop<F: Future>(fut: F) {
    let mut fut = pin!(fut);
    let pending = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_pending())).await;
    assert!(pending);
}

#[tokio::test]
async fn dropped_future_and_half_read_stream_end_their_spans() {
    let t = Telemetry::new();
    let bare = bare_pool(2).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config()).await;

    let cx = t.parent("dropped");
    let slow = "SELECT SLEEP(2)";
    poll_once_then_drop(sqlx::query(slow).execute(&pool).with_context(cx.clone())).await;
    let span = common::only_child(&t, &cx, &analyze(slow, Dialect::MySql).summary.unwrap());
    common::assert_cancelled(&span);

    let cx = t.parent("half-read");
    async {
        let mut rows =
            sqlx::query(AssertSqlSafe(format!("SELECT id FROM {table} ORDER BY id"))).fetch(&pool);
        assert_eq!(rows.next().await.unwrap().unwrap().get::<i64, _>(0), 1);
    }
    .with_context(cx.clone())
    .await;
    common::assert_cancelled(&common::only_child(&t, &cx, &format!("SELECT {table}")));
    assert_eq!(count(&pool, &table).await.unwrap(), 3);
    drop_table(&bare, &table).await;
}

#[tokio::test]
async fn differential_bare_vs_instrumented() {
    let t = Telemetry::new();
    let bare = bare_pool(2).await;
    let table = common::unique("diff");
    create(&bare, &table).await;
    let expected = common::differential_workload!(&bare, table);
    create(&bare, &table).await;
    let pool = instrument(&bare, t.config()).await;
    let got = common::differential_workload!(&pool, table);
    assert_eq!(got, expected);
    assert!(expected.iter().any(|r| r.contains("23000")), "{expected:?}");
    assert_eq!(t.finished().len(), 11);
    drop_table(&bare, &table).await;
}
