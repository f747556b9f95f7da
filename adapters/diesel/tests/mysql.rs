//! MariaDB through diesel's MySQL backends: sync, r2d2, diesel-async with deadpool and bb8.
#![cfg(all(feature = "mysql", feature = "r2d2", feature = "async"))]

mod common;

use common::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::sql_types::{Integer, Text};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncMysqlConnection};
use tracewire_diesel::pool::{
    R2d2Customizer, observe_bb8_pool, observe_deadpool_pool, traced_setup,
};
use tracewire_diesel::{DieselOptions, DieselTracing, MySqlFlavor};
use tracewire_shared::semconv;
use tracewire_shared::testing::{Telemetry, attr_str};

fn mariadb(t: &Telemetry) -> DieselTracing {
    DieselTracing::new(
        DieselOptions::new()
            .config(t.config())
            .mysql_flavor(MySqlFlavor::MariaDb),
    )
}
fn assert_target(s: &opentelemetry_sdk::trace::SpanData, system: &str) {
    assert_eq!(
        attr_str(s, semconv::DB_SYSTEM_NAME).as_deref(),
        Some(system)
    );
    assert_eq!(attr_str(s, semconv::DB_NAMESPACE).as_deref(), Some("test"));
    assert_eq!(
        attr_str(s, semconv::SERVER_ADDRESS).as_deref(),
        Some("127.0.0.1")
    );
}

mod sync {
    use super::*;
    use diesel::prelude::*;

    #[test]
    fn sync_errors_carry_the_error_number_and_messages_are_sanitized() {
        let t = Telemetry::new();
        let tracing = mariadb(&t);
        let url = mysql_url();
        let mut conn = MysqlConnection::establish(&url).unwrap();
        conn.set_instrumentation(tracing.for_open_connection(tracing.connection_info(&url)));
        let table = unique("my_sync");
        diesel::sql_query(format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, email VARCHAR(64) UNIQUE)"
        ))
        .execute(&mut conn)
        .unwrap();
        let insert = format!("INSERT INTO {table} (id, email) VALUES (?, ?)");
        let run = |conn: &mut MysqlConnection, id: i32| {
            diesel::sql_query(&insert)
                .bind::<Integer, _>(id)
                .bind::<Text, _>(SECRET)
                .execute(conn)
        };
        run(&mut conn, 1).unwrap();
        let err = run(&mut conn, 2).unwrap_err();
        assert!(matches!(
            err,
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            )
        ));
        assert!(
            err.to_string().contains(SECRET),
            "the caller's error is untouched: {err}"
        );

        let failed = spans_with_text(&t, &insert)
            .into_iter()
            .find(is_error)
            .expect("an error span");
        assert_eq!(
            attr_str(&failed, semconv::ERROR_TYPE).as_deref(),
            Some("1062")
        );
        assert_eq!(
            attr_str(&failed, semconv::DB_RESPONSE_STATUS_CODE).as_deref(),
            Some("1062")
        );
        assert_eq!(
            attr_str(&failed, semconv::DB_QUERY_SUMMARY),
            Some(format!("INSERT {table}"))
        );
        assert_target(&failed, "mariadb");
        // MariaDB quotes the duplicate value in its message: the span's copy is masked.
        assert_nowhere(&t, SECRET);
    }

    #[test]
    fn default_flavor_is_mysql_and_r2d2_pings_are_marked() {
        let t = Telemetry::new();
        let tracing = tracing(&t);
        let url = mysql_url();
        let pool = Pool::builder()
            .max_size(2)
            .connection_customizer(Box::new(R2d2Customizer::new(&tracing, &url)))
            .build(ConnectionManager::<MysqlConnection>::new(url))
            .unwrap();
        let mut conn = pool.get().unwrap();
        conn.transaction(|c| diesel::sql_query("SELECT 5 AS in_tx").execute(c))
            .unwrap();
        let span = span_with_text(&t, "in_tx");
        assert_target(&span, "mysql");
        let pings: Vec<_> = t.finished().into_iter().filter(is_health_check).collect();
        assert_eq!(pings.len(), 1);
        assert_eq!(
            attr_str(&pings[0], semconv::DB_QUERY_TEXT).as_deref(),
            Some("SELECT ?")
        );
        let names: Vec<String> = t.finished().iter().map(|s| s.name.to_string()).collect();
        assert!(
            names.iter().any(|n| n == "BEGIN") || names.iter().any(|n| n.starts_with("START")),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n == "COMMIT"), "{names:?}");
    }
}

mod asynchronous {
    use super::*;
    use diesel_async::RunQueryDsl;

    fn manager(tracing: &DieselTracing) -> AsyncDieselConnectionManager<AsyncMysqlConnection> {
        let mut config = ManagerConfig::default();
        config.custom_setup = traced_setup::<AsyncMysqlConnection>(tracing);
        config.recycling_method = RecyclingMethod::Verified;
        AsyncDieselConnectionManager::new_with_config(mysql_url(), config)
    }

    #[tokio::test]
    async fn async_mysql_with_deadpool() {
        use diesel_async::pooled_connection::deadpool::Pool;
        let t = Telemetry::new();
        let tracing = mariadb(&t);
        let pool = Pool::builder(manager(&tracing))
            .max_size(2)
            .build()
            .unwrap();
        let _observers = observe_deadpool_pool(&pool, "my-deadpool", &t.config());
        let table = unique("my_async");
        {
            let mut conn = pool.get().await.unwrap();
            diesel::sql_query(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let mut conn = pool.get().await.unwrap();
        let insert = format!("INSERT INTO {table} (id) VALUES (?)");
        diesel::sql_query(&insert)
            .bind::<Integer, _>(1)
            .execute(&mut conn)
            .await
            .unwrap();
        let err = diesel::sql_query(&insert)
            .bind::<Integer, _>(1)
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            )
        ));
        let spans = spans_with_text(&t, &insert);
        assert_eq!(spans.len(), 2);
        let failed = spans.iter().find(|s| is_error(s)).unwrap();
        assert_eq!(
            attr_str(failed, semconv::DB_RESPONSE_STATUS_CODE).as_deref(),
            Some("1062")
        );
        assert_target(failed, "mariadb");
        let checks: Vec<_> = t.finished().into_iter().filter(is_health_check).collect();
        assert_eq!(checks.len(), 1);
        assert_eq!(
            attr_str(&checks[0], semconv::DB_QUERY_TEXT).as_deref(),
            Some("SELECT ?")
        );
        assert_eq!(t.metric("db.client.connection.max")[0].value, 2.0);
    }

    #[tokio::test]
    async fn async_mysql_with_bb8_and_a_direct_connection() {
        use diesel_async::pooled_connection::bb8::Pool;
        let t = Telemetry::new();
        let tracing = mariadb(&t);
        let pool = Pool::builder()
            .max_size(2)
            .build(manager(&tracing))
            .await
            .unwrap();
        let _observers = observe_bb8_pool(&pool, "my-bb8", &t.config());
        {
            let mut conn = pool.get().await.unwrap();
            diesel::sql_query("SELECT 3 AS from_bb8")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        assert_target(&span_with_text(&t, "from_bb8"), "mariadb");
        assert_eq!(t.metric("db.client.connection.max")[0].value, 2.0);

        let url = mysql_url();
        let mut direct = AsyncMysqlConnection::establish(&url).await.unwrap();
        direct.set_instrumentation(tracing.for_open_connection(tracing.connection_info(&url)));
        diesel::sql_query("SELECT 4 AS direct")
            .execute(&mut direct)
            .await
            .unwrap();
        assert_target(&span_with_text(&t, "direct"), "mariadb");
    }
}
