//! The PostgreSQL adapter against the local PostgreSQL server (`TRACEWIRE_POSTGRES_URL`).
#![cfg(feature = "postgres")]

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use futures_util::StreamExt;
use opentelemetry::context::FutureExt as _;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgExecutor, PgPool, Postgres, Row};
use tracewire_shared::Config;
use tracewire_shared::sanitize::sql::{Dialect, analyze};
use tracewire_shared::semconv::{self, db_system};
use tracewire_shared::testing::{Telemetry, attr_str, service_url};
use tracewire_sqlx::InstrumentedPool;

async fn bare_pool(max: u32) -> PgPool {
    let url = service_url(
        "postgres",
        "TRACEWIRE_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    PgPoolOptions::new()
        .max_connections(max)
        .connect(&url)
        .await
        .unwrap()
}

async fn create(bare: &PgPool, table: &str) {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (id BIGINT PRIMARY KEY, name VARCHAR(64) UNIQUE);
         INSERT INTO {table} (id, name) VALUES (1, 'alice'), (2, 'bob'), (3, 'carol');"
    )))
    .execute(bare)
    .await
    .unwrap();
}

async fn table(bare: &PgPool) -> String {
    let table = common::unique("people");
    create(bare, &table).await;
    table
}

async fn drop_table(bare: &PgPool, table: &str) {
    sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
        .execute(bare)
        .await
        .unwrap();
}

fn instrument(bare: &PgPool, config: Config) -> InstrumentedPool<Postgres> {
    InstrumentedPool::builder(bare.clone())
        .config(config)
        .build()
}

async fn count<'c>(exec: impl PgExecutor<'c>, table: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(exec)
        .await
}

#[tokio::test]
async fn every_call_style_is_one_span_under_its_parent() {
    let t = Telemetry::new();
    let bare = bare_pool(3).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config());
    common::check_call_styles!(t, pool, table, "$1", count);

    // Connection-level attributes, from the connect options.
    let span = t.finished().into_iter().next().unwrap();
    assert_eq!(
        attr_str(&span, semconv::DB_SYSTEM_NAME).as_deref(),
        Some(db_system::POSTGRESQL)
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
        Some(format!("SELECT id, name FROM {table} WHERE id = $1"))
    );
    assert_eq!(pool.pool_name(), "127.0.0.1/test");
    drop_table(&bare, &table).await;
}

#[tokio::test]
async fn failures_carry_sqlstate_and_the_caller_gets_the_same_error() {
    const MARKER: &str = "pg-s3cr3t-Marker";
    let t = Telemetry::new();
    let bare = bare_pool(2).await;
    let table = table(&bare).await;
    let pool = instrument(&bare, t.config());

    let cx = t.parent("syntax");
    let sql = || AssertSqlSafe(format!("SELEC name FROM {table} WHERE name = '{MARKER}'"));
    let ours = sqlx::query(sql())
        .fetch_all(&pool)
        .with_context(cx.clone())
        .await
        .unwrap_err();
    let theirs = sqlx::query(sql()).fetch_all(&bare).await.unwrap_err();
    assert_eq!(ours.to_string(), theirs.to_string());
    let span = common::only_child(&t, &cx, "postgresql");
    common::assert_db_error(&span, "42601");

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
        Some("23505")
    );
    let span = common::only_child(&t, &cx, &format!("INSERT {table}"));
    common::assert_db_error(&span, "23505");

    // A bound parameter that breaks a constraint: the server's detail would carry the value.
    let cx = t.parent("bound");
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} (id, name) VALUES ($1, $2)"
    )))
    .bind(1_i64)
    .bind(MARKER)
    .execute(&pool)
    .with_context(cx.clone())
    .await
    .unwrap_err();
    common::assert_db_error(
        &common::only_child(&t, &cx, &format!("INSERT {table}")),
        "23505",
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
    let pool = instrument(&bare, t.config());
    let insert = |id: i64| {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (id, name) VALUES ($1, $2)"
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
    let pool = instrument(&bare, t.config());
    let mut tasks = Vec::new();
    for task in 0..50_i64 {
        let (pool, t, table) = (pool.clone(), t.clone(), table.clone());
        tasks.push(tokio::spawn(async move {
            let mut parents = Vec::new();
            for i in 0..10_i64 {
                let cx = t.parent("request");
                let id = (task + i) % 3 + 1;
                let row = sqlx::query(AssertSqlSafe(format!(
                    "SELECT id FROM {table} WHERE id = $1"
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
    let pool = instrument(&bare, t.config());

    let cx = t.parent("dropped");
    let slow = "SELECT pg_sleep(2)";
    poll_once_then_drop(sqlx::query(slow).execute(&pool).with_context(cx.clone())).await;
    let span = common::only_child(&t, &cx, &analyze(slow, Dialect::Postgres).summary.unwrap());
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
    let pool = instrument(&bare, t.config());
    let got = common::differential_workload!(&pool, table);
    assert_eq!(got, expected);
    assert!(expected.iter().any(|r| r.contains("23505")), "{expected:?}");
    assert_eq!(t.finished().len(), 11);
    drop_table(&bare, &table).await;
}
