//! PostgreSQL: sync connections, r2d2, diesel-async with deadpool and bb8, pipelining.
#![cfg(all(feature = "postgres", feature = "r2d2", feature = "async"))]

mod common;

use common::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::sql_types::{Integer, Text};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use tracewire_diesel::pool::{
    R2d2Customizer, observe_bb8_pool, observe_deadpool_pool, traced_setup,
};
use tracewire_diesel::{DieselOptions, DieselTracing};
use tracewire_shared::semconv;
use tracewire_shared::testing::{Telemetry, attr_str};

fn assert_target(s: &opentelemetry_sdk::trace::SpanData) {
    assert_eq!(
        attr_str(s, semconv::DB_SYSTEM_NAME).as_deref(),
        Some("postgresql")
    );
    assert_eq!(attr_str(s, semconv::DB_NAMESPACE).as_deref(), Some("test"));
    assert_eq!(
        attr_str(s, semconv::SERVER_ADDRESS).as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(int(s, semconv::SERVER_PORT), None, "default port left out");
}

mod sync {
    use super::*;
    use diesel::prelude::*;

    fn sync_conn(tracing: &DieselTracing) -> PgConnection {
        let url = postgres_url_with_password();
        let mut conn = PgConnection::establish(&url).unwrap();
        conn.set_instrumentation(tracing.for_open_connection(tracing.connection_info(&url)));
        conn
    }

    #[test]
    fn sync_queries_errors_and_transactions() {
        let t = Telemetry::new();
        let tracing = tracing(&t);
        let mut conn = sync_conn(&tracing);
        let table = unique("pg_sync");
        diesel::sql_query(format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, secret TEXT)"
        ))
        .execute(&mut conn)
        .unwrap();
        let insert = format!("INSERT INTO {table} (id, secret) VALUES ($1, $2)");
        conn.transaction(|c| {
            diesel::sql_query(&insert)
                .bind::<Integer, _>(1)
                .bind::<Text, _>(SECRET)
                .execute(c)
        })
        .unwrap();
        let err = diesel::sql_query(&insert)
            .bind::<Integer, _>(1)
            .bind::<Text, _>(SECRET)
            .execute(&mut conn)
            .unwrap_err();
        assert!(matches!(
            err,
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            )
        ));
        assert!(
            err.to_string()
                .starts_with("duplicate key value violates unique constraint")
        );

        let spans = spans_with_text(&t, &format!("INSERT INTO {table}"));
        assert_eq!(spans.len(), 2);
        let failed = spans.iter().find(|s| is_error(s)).expect("an error span");
        assert_eq!(
            attr_str(failed, semconv::ERROR_TYPE).as_deref(),
            Some("23505")
        );
        assert_eq!(
            attr_str(failed, semconv::DB_RESPONSE_STATUS_CODE).as_deref(),
            Some("23505")
        );
        assert_eq!(
            attr_str(failed, semconv::DB_QUERY_TEXT),
            Some(insert.clone()),
            "placeholders kept, nothing else"
        );
        assert_target(failed);
        assert_eq!(t.span("BEGIN").name, "BEGIN");
        assert_eq!(t.span("COMMIT").name, "COMMIT");
        let errors = t
            .metric("db.client.operation.duration")
            .into_iter()
            .filter(|p| p.attr(semconv::ERROR_TYPE).is_some())
            .collect::<Vec<_>>();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0]
                .attr_str(semconv::DB_RESPONSE_STATUS_CODE)
                .as_deref(),
            Some("23505")
        );
        assert_nowhere(&t, SECRET);
    }

    #[test]
    fn installed_style_tracer_reads_target_from_key_value_strings() {
        let t = Telemetry::new();
        let tracing = tracing(&t);
        let info = tracing.connection_info(&format!(
            "host=127.0.0.1 port=5432 dbname=test user=postgres password='{SECRET}'"
        ));
        let mut conn = PgConnection::establish(&postgres_url()).unwrap();
        conn.set_instrumentation(tracing.for_open_connection(info));
        diesel::sql_query("SELECT 42 AS kv")
            .execute(&mut conn)
            .unwrap();
        assert_target(&span_with_text(&t, "AS kv"));
        assert_nowhere(&t, SECRET);
    }

    #[test]
    fn r2d2_pool_traces_connections_and_pings() {
        let t = Telemetry::new();
        let tracing = tracing(&t);
        let url = postgres_url_with_password();
        let pool = Pool::builder()
            .max_size(2)
            .connection_customizer(Box::new(R2d2Customizer::new(&tracing, &url)))
            .build(ConnectionManager::<PgConnection>::new(url))
            .unwrap();
        let mut conn = pool.get().unwrap();
        diesel::sql_query("SELECT 7 AS pooled")
            .execute(&mut conn)
            .unwrap();
        assert_target(&span_with_text(&t, "AS pooled"));
        let pings: Vec<_> = t.finished().into_iter().filter(is_health_check).collect();
        assert_eq!(pings.len(), 1);
        assert_target(&pings[0]);
        assert_nowhere(&t, SECRET);
    }
}

mod asynchronous {
    use super::*;
    use diesel_async::RunQueryDsl;

    async fn async_conn(tracing: &DieselTracing) -> AsyncPgConnection {
        let url = postgres_url_with_password();
        let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
        conn.set_instrumentation(tracing.for_open_connection(tracing.connection_info(&url)));
        conn
    }

    #[tokio::test]
    async fn pipelined_queries_each_get_their_own_span_outcome_and_duration() {
        let t = Telemetry::new();
        let tracing = tracing(&t);
        let mut conn = async_conn(&tracing).await;
        let table = unique("pg_pipe");
        diesel::sql_query(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
            .execute(&mut conn)
            .await
            .unwrap();
        diesel::sql_query(format!("INSERT INTO {table} (id) VALUES (1)"))
            .execute(&mut conn)
            .await
            .unwrap();

        let conn = &conn;
        // Created (and so started) in the order fast, failing, slow; sent and answered in the order
        // slow, failing, fast: every finish arrives in a different order from its start.
        let fast_sql = format!("SELECT id FROM {table} WHERE id = $1");
        let fail_sql = format!("INSERT INTO {table} (id) VALUES ($1)");
        let fast = diesel::sql_query(&fast_sql)
            .bind::<Integer, _>(1)
            .execute(&mut &*conn);
        let failing = diesel::sql_query(&fail_sql)
            .bind::<Integer, _>(1)
            .execute(&mut &*conn);
        let slow = diesel::sql_query("SELECT pg_sleep(0.2)").execute(&mut &*conn);
        let (slow, failing, fast) = tokio::join!(slow, failing, fast);
        assert_eq!(slow.unwrap(), 1);
        assert!(matches!(
            failing.unwrap_err(),
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            )
        ));
        assert_eq!(fast.unwrap(), 1);

        let slow = span_with_text(&t, "pg_sleep");
        let failing = span_with_text(&t, &fail_sql);
        let fast = span_with_text(&t, &fast_sql);
        assert!(!is_error(&slow));
        assert!(!is_error(&fast));
        assert!(is_error(&failing));
        assert_eq!(
            attr_str(&failing, semconv::ERROR_TYPE).as_deref(),
            Some("23505")
        );
        // pg_sleep(0.2) cannot finish sooner: a lower bound, not a timing guess.
        let took = slow.end_time.duration_since(slow.start_time).unwrap();
        assert!(took >= std::time::Duration::from_millis(200), "{took:?}");
        for s in [&slow, &failing, &fast] {
            assert_target(s);
        }

        // Identical statements in flight together still end one span each.
        let same = format!("SELECT id FROM {table} WHERE id = $1 AND id > $2");
        let (a, b, c) = tokio::join!(
            diesel::sql_query(&same)
                .bind::<Integer, _>(1)
                .bind::<Integer, _>(0)
                .execute(&mut &*conn),
            diesel::sql_query(&same)
                .bind::<Integer, _>(1)
                .bind::<Integer, _>(5)
                .execute(&mut &*conn),
            diesel::sql_query(&same)
                .bind::<Integer, _>(1)
                .bind::<Integer, _>(0)
                .execute(&mut &*conn),
        );
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (1, 0, 1));
        assert_eq!(spans_with_text(&t, "AND id > $2").len(), 3);
    }

    #[tokio::test]
    async fn async_errors_transactions_and_no_secrets() {
        let t = Telemetry::new();
        let tracing = tracing(&t);
        let mut conn = async_conn(&tracing).await;
        let table = unique("pg_async");
        diesel::sql_query(format!("CREATE TABLE {table} (id INT PRIMARY KEY, s TEXT)"))
            .execute(&mut conn)
            .await
            .unwrap();
        let insert = format!("INSERT INTO {table} (id, s) VALUES ($1, $2)");
        let insert_ref = &insert;
        let result = conn
            .transaction::<(), diesel::result::Error, _>(async |c| {
                diesel::sql_query(insert_ref)
                    .bind::<Integer, _>(1)
                    .bind::<Text, _>(SECRET)
                    .execute(c)
                    .await?;
                diesel::sql_query(insert_ref)
                    .bind::<Integer, _>(1)
                    .bind::<Text, _>(SECRET)
                    .execute(c)
                    .await?;
                Ok(())
            })
            .await;
        assert!(result.is_err());
        assert_eq!(t.span("BEGIN").name, "BEGIN");
        assert!(!is_error(&t.span("ROLLBACK")));
        let inserts = spans_with_text(&t, &insert);
        assert_eq!(inserts.len(), 2);
        assert_eq!(inserts.iter().filter(|s| is_error(s)).count(), 1);
        assert_nowhere(&t, SECRET);
    }

    fn manager(tracing: &DieselTracing) -> AsyncDieselConnectionManager<AsyncPgConnection> {
        let mut config = ManagerConfig::default();
        config.custom_setup = traced_setup::<AsyncPgConnection>(tracing);
        config.recycling_method = RecyclingMethod::Verified;
        AsyncDieselConnectionManager::new_with_config(postgres_url_with_password(), config)
    }

    #[tokio::test]
    async fn deadpool_recycle_checks_are_marked_and_pool_metrics_reported() {
        use diesel_async::pooled_connection::deadpool::Pool;
        let t = Telemetry::new();
        let tracing = tracing(&t);
        let pool = Pool::builder(manager(&tracing))
            .max_size(4)
            .build()
            .unwrap();
        let _observers = observe_deadpool_pool(&pool, "pg-deadpool", &t.config());
        for _ in 0..2 {
            let mut conn = pool.get().await.unwrap();
            diesel::sql_query("SELECT 1 AS from_deadpool")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        assert_eq!(spans_with_text(&t, "from_deadpool").len(), 2);
        let checks: Vec<_> = t.finished().into_iter().filter(is_health_check).collect();
        assert_eq!(
            checks.len(),
            1,
            "the second checkout recycles with a verify query"
        );
        assert_eq!(
            attr_str(&checks[0], semconv::DB_QUERY_TEXT).as_deref(),
            Some("SELECT $1")
        );
        assert_target(&checks[0]);

        let counts = t.metric("db.client.connection.count");
        let idle = counts
            .iter()
            .find(|p| p.attr_str(semconv::DB_CLIENT_CONNECTION_STATE) == Some("idle".into()))
            .unwrap();
        assert_eq!(idle.value, 1.0);
        assert_eq!(
            idle.attr_str(semconv::DB_CLIENT_CONNECTION_POOL_NAME)
                .as_deref(),
            Some("pg-deadpool")
        );
        assert_eq!(t.metric("db.client.connection.max")[0].value, 4.0);
        assert_eq!(
            t.metric("db.client.connection.pending_requests")[0].value,
            0.0
        );
        assert_nowhere(&t, SECRET);
    }

    #[tokio::test]
    async fn bb8_pool_with_suppressed_checks_and_metrics() {
        use diesel_async::pooled_connection::bb8::Pool;
        let t = Telemetry::new();
        let tracing = DieselTracing::new(
            DieselOptions::new()
                .config(t.config())
                .suppress_health_checks(true),
        );
        let pool = Pool::builder()
            .max_size(3)
            .build(manager(&tracing))
            .await
            .unwrap();
        let _observers = observe_bb8_pool(&pool, "pg-bb8", &t.config());
        for _ in 0..2 {
            let mut conn = pool.get().await.unwrap();
            diesel::sql_query("SELECT 1 AS from_bb8")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        assert_eq!(spans_with_text(&t, "from_bb8").len(), 2);
        assert!(t.finished().iter().all(|s| !is_health_check(s)));
        assert!(spans_with_text(&t, "SELECT $1").is_empty());
        assert_eq!(t.metric("db.client.connection.max")[0].value, 3.0);
        let total: f64 = t
            .metric("db.client.connection.count")
            .iter()
            .filter(|p| {
                p.attr_str(semconv::DB_CLIENT_CONNECTION_POOL_NAME) == Some("pg-bb8".into())
            })
            .map(|p| p.value)
            .sum();
        assert!(total >= 1.0);
        assert_nowhere(&t, SECRET);
    }
}
