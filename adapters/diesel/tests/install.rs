//! The process-wide default: `install_with` traces connections established afterwards, whichever way
//! they are established. One telemetry for the whole binary; each test finds its own spans by text.
#![cfg(all(
    feature = "sqlite",
    feature = "postgres",
    feature = "r2d2",
    feature = "async"
))]

mod common;

use std::sync::OnceLock;

use common::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use tracewire_diesel::DieselOptions;
use tracewire_shared::semconv;
use tracewire_shared::testing::{Telemetry, attr_str};

fn telemetry() -> &'static Telemetry {
    static T: OnceLock<Telemetry> = OnceLock::new();
    T.get_or_init(|| {
        let t = Telemetry::new();
        tracewire_diesel::install_with(DieselOptions::new().config(t.config())).unwrap();
        t
    })
}

#[test]
fn direct_sqlite_connections_are_traced() {
    let t = telemetry();
    let path = std::env::temp_dir().join(format!("{}.db", unique("install")));
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    diesel::RunQueryDsl::execute(diesel::sql_query("SELECT 1 AS installed_direct"), &mut conn)
        .unwrap();
    let span = span_with_text(t, "installed_direct");
    assert_eq!(
        attr_str(&span, semconv::DB_SYSTEM_NAME).as_deref(),
        Some("sqlite")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_NAMESPACE).as_deref(),
        path.to_str()
    );
    assert!(tracewire_diesel::installed().is_some());
}

#[test]
fn r2d2_connections_are_traced() {
    let t = telemetry();
    let pool = Pool::builder()
        .max_size(1)
        .build(ConnectionManager::<PgConnection>::new(
            postgres_url_with_password(),
        ))
        .unwrap();
    let mut conn = pool.get().unwrap();
    diesel::RunQueryDsl::execute(diesel::sql_query("SELECT 1 AS installed_r2d2"), &mut conn)
        .unwrap();
    let span = span_with_text(t, "installed_r2d2");
    assert_eq!(
        attr_str(&span, semconv::DB_SYSTEM_NAME).as_deref(),
        Some("postgresql")
    );
    assert_eq!(
        attr_str(&span, semconv::SERVER_ADDRESS).as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_NAMESPACE).as_deref(),
        Some("test")
    );
    assert_nowhere(t, SECRET);
}

#[tokio::test]
async fn diesel_async_connections_and_pools_are_traced() {
    let t = telemetry();
    let mut conn = AsyncPgConnection::establish(&postgres_url_with_password())
        .await
        .unwrap();
    diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1 AS installed_async"), &mut conn)
        .await
        .unwrap();
    let span = span_with_text(t, "installed_async");
    assert_eq!(
        attr_str(&span, semconv::DB_NAMESPACE).as_deref(),
        Some("test")
    );

    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new(postgres_url_with_password());
    let pool = diesel_async::pooled_connection::deadpool::Pool::builder(manager)
        .build()
        .unwrap();
    let mut pooled = pool.get().await.unwrap();
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("SELECT 1 AS installed_deadpool"),
        &mut pooled,
    )
    .await
    .unwrap();
    assert_eq!(
        attr_str(
            &span_with_text(t, "installed_deadpool"),
            semconv::DB_SYSTEM_NAME
        )
        .as_deref(),
        Some("postgresql")
    );
    assert_nowhere(t, SECRET);
}
