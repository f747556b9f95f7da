//! The shop's stores, each behind its tracewire adapter. Setup and cleanup go through the bare
//! clients (`inner()`, `Deref`), so the trace holds only the order's own work.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ConnectionProperties};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use sqlx::AssertSqlSafe;
use sqlx::mysql::MySqlPoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;
use tracewire_diesel::{ConnectionInfo, DieselOptions, DieselTracing};
use tracewire_lapin::{InstrumentedChannel, InstrumentedConsumer, LapinTelemetry};
use tracewire_redis::{InstrumentedConnection, RedisInstrumentation};
use tracewire_shared::Config;
use tracewire_sqlx::{
    InstrumentedMySqlPool, InstrumentedPgPool, InstrumentedPool, InstrumentedSqlitePool,
};

use crate::Error;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The catalog seeded into SQLite: (sku, name, price in cents, stock).
const PRODUCTS: &str = "CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT NOT NULL, \
                        price_cents BIGINT NOT NULL, stock INTEGER NOT NULL);
    INSERT INTO products VALUES ('sku-42', 'Towel', 1999, 100), ('sku-7', 'Hitchhiker''s Guide', 4200, 5);";

/// A product as the catalog returns it.
#[derive(Clone, Debug, QueryableByName)]
pub(crate) struct Product {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub price_cents: i64,
}

/// The product catalog: diesel on SQLite (in memory), used from async code through
/// `tracewire_diesel::spawn_blocking` so its spans keep the request as parent.
#[derive(Clone)]
pub(crate) struct Catalog {
    conn: Arc<Mutex<SqliteConnection>>,
}

impl Catalog {
    pub(crate) fn open(config: &Config) -> Result<Self, Error> {
        let mut conn = SqliteConnection::establish(":memory:")?;
        conn.batch_execute(PRODUCTS)?;
        let tracing = DieselTracing::new(DieselOptions::new().config(config.clone()));
        conn.set_instrumentation(tracing.for_open_connection(ConnectionInfo::parse(":memory:")));
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub(crate) async fn product(&self, sku: String) -> Result<Option<Product>, Error> {
        let conn = self.conn.clone();
        tracewire_diesel::spawn_blocking(move || {
            let mut conn = conn.lock().map_err(|_| "catalog connection poisoned")?;
            diesel::sql_query("SELECT price_cents FROM products WHERE sku = ?")
                .bind::<diesel::sql_types::Text, _>(sku)
                .get_result::<Product>(&mut *conn)
                .optional()
                .map_err(Error::from)
        })
        .await?
    }

    /// Takes `quantity` out of stock; `false` when there is not enough.
    pub(crate) async fn reserve(&self, sku: String, quantity: i32) -> Result<bool, Error> {
        let conn = self.conn.clone();
        tracewire_diesel::spawn_blocking(move || {
            let mut conn = conn.lock().map_err(|_| "catalog connection poisoned")?;
            let updated = diesel::sql_query(
                "UPDATE products SET stock = stock - ? WHERE sku = ? AND stock >= ?",
            )
            .bind::<diesel::sql_types::Integer, _>(quantity)
            .bind::<diesel::sql_types::Text, _>(sku)
            .bind::<diesel::sql_types::Integer, _>(quantity)
            .execute(&mut *conn)?;
            Ok::<bool, Error>(updated == 1)
        })
        .await?
    }
}

/// The orders database: sqlx on PostgreSQL (a schema of its own per run) or on SQLite in memory.
#[derive(Clone)]
pub(crate) enum Orders {
    Postgres {
        pool: InstrumentedPgPool,
        schema: String,
    },
    Sqlite(InstrumentedSqlitePool),
}

impl Orders {
    pub(crate) async fn connect(
        url: Option<&str>,
        run_id: &str,
        config: &Config,
    ) -> Result<Self, Error> {
        match url {
            Some(url) => {
                let schema = format!("tracewire_demo_{run_id}");
                let options =
                    PgConnectOptions::from_str(url)?.options([("search_path", schema.as_str())]);
                let bare = PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "CREATE SCHEMA {schema};
                     CREATE TABLE {schema}.orders (id BIGSERIAL PRIMARY KEY, customer TEXT NOT NULL,
                         sku TEXT NOT NULL, quantity INTEGER NOT NULL, total_cents BIGINT NOT NULL,
                         status TEXT NOT NULL);
                     CREATE TABLE {schema}.order_notes (order_id BIGINT NOT NULL, note TEXT NOT NULL);"
                )))
                .execute(&bare)
                .await?;
                let pool = InstrumentedPool::builder(bare)
                    .config(config.clone())
                    .pool_name("orders")
                    .build();
                Ok(Self::Postgres { pool, schema })
            }
            None => {
                // One connection: `sqlite::memory:` lives as long as a connection to it does.
                let bare = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect("sqlite::memory:")
                    .await?;
                sqlx::raw_sql(
                    "CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, customer TEXT NOT NULL,
                         sku TEXT NOT NULL, quantity INTEGER NOT NULL, total_cents INTEGER NOT NULL,
                         status TEXT NOT NULL);
                     CREATE TABLE order_notes (order_id INTEGER NOT NULL, note TEXT NOT NULL);",
                )
                .execute(&bare)
                .await?;
                let pool = InstrumentedPool::builder(bare)
                    .config(config.clone())
                    .pool_name("orders")
                    .build();
                Ok(Self::Sqlite(pool))
            }
        }
    }

    /// `postgresql` or `sqlite`.
    pub(crate) fn system(&self) -> &'static str {
        match self {
            Self::Postgres { .. } => "postgresql",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// Inserts the order and its note in one transaction; returns the order id.
    pub(crate) async fn insert(
        &self,
        customer: &str,
        sku: &str,
        quantity: i32,
        total_cents: i64,
        note: &str,
    ) -> Result<i64, Error> {
        match self {
            Self::Postgres { pool, .. } => {
                let mut tx = pool.begin().await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO orders (customer, sku, quantity, total_cents, status) \
                     VALUES ($1, $2, $3, $4, 'pending') RETURNING id",
                )
                .bind(customer.to_owned())
                .bind(sku.to_owned())
                .bind(quantity)
                .bind(total_cents)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::raw_sql(AssertSqlSafe(note_statement(id, note)))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(id)
            }
            Self::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO orders (customer, sku, quantity, total_cents, status) \
                     VALUES (?, ?, ?, ?, 'pending') RETURNING id",
                )
                .bind(customer.to_owned())
                .bind(sku.to_owned())
                .bind(quantity)
                .bind(total_cents)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::raw_sql(AssertSqlSafe(note_statement(id, note)))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(id)
            }
        }
    }

    /// Marks the order confirmed (the consumer's write).
    pub(crate) async fn confirm(&self, id: i64) -> Result<(), Error> {
        match self {
            Self::Postgres { pool, .. } => {
                sqlx::query("UPDATE orders SET status = 'confirmed' WHERE id = $1")
                    .bind(id)
                    .execute(pool)
                    .await?;
            }
            Self::Sqlite(pool) => {
                sqlx::query("UPDATE orders SET status = 'confirmed' WHERE id = ?")
                    .bind(id)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// The order's status, read on the bare pool (outside the trace).
    pub(crate) async fn status(&self, id: i64) -> Result<String, Error> {
        let status: String = match self {
            Self::Postgres { pool, .. } => {
                sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
                    .bind(id)
                    .fetch_one(pool.inner())
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_scalar("SELECT status FROM orders WHERE id = ?")
                    .bind(id)
                    .fetch_one(pool.inner())
                    .await?
            }
        };
        Ok(status)
    }

    pub(crate) async fn close(&self) {
        match self {
            Self::Postgres { pool, schema } => {
                let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(pool.inner())
                    .await;
                pool.close().await;
            }
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}

/// Old code paths still build statements with inline literals (escaped, not injectable, but full of
/// customer data). The span's `db.query.text` shows `VALUES (?, ?)`: the sanitizer keeps the
/// data out of the telemetry.
fn note_statement(id: i64, note: &str) -> String {
    format!(
        "INSERT INTO order_notes (order_id, note) VALUES ({id}, '{}')",
        note.replace('\'', "''")
    )
}

/// The audit log: sqlx on MariaDB, rows tagged with the run id.
pub(crate) struct Audit {
    pool: InstrumentedMySqlPool,
    run_id: String,
}

impl Audit {
    pub(crate) async fn connect(url: &str, run_id: &str, config: &Config) -> Result<Self, Error> {
        let bare = MySqlPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect(url)
            .await?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS tracewire_demo_audit (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                 run_id VARCHAR(32) NOT NULL, order_id BIGINT NOT NULL, event VARCHAR(64) NOT NULL,
                 at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
        )
        .execute(&bare)
        .await?;
        // MySQL and MariaDB share a driver: ask the server once (untraced) which one it is.
        let pool = InstrumentedPool::builder(bare)
            .config(config.clone())
            .pool_name("audit")
            .detect_server()
            .await
            .build();
        Ok(Self {
            pool,
            run_id: run_id.to_owned(),
        })
    }

    pub(crate) async fn record(&self, order_id: i64, event: &str) -> Result<(), Error> {
        sqlx::query("INSERT INTO tracewire_demo_audit (run_id, order_id, event) VALUES (?, ?, ?)")
            .bind(self.run_id.clone())
            .bind(order_id)
            .bind(event.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        let _ = sqlx::query("DELETE FROM tracewire_demo_audit WHERE run_id = ?")
            .bind(self.run_id.clone())
            .execute(self.pool.inner())
            .await;
        self.pool.close().await;
    }
}

/// The cache: Redis through a multiplexed connection.
#[derive(Clone)]
pub(crate) struct Cache {
    con: InstrumentedConnection<MultiplexedConnection>,
    prefix: String,
}

impl Cache {
    pub(crate) async fn connect(url: &str, run_id: &str, config: &Config) -> Result<Self, Error> {
        let client = redis::Client::open(url)?;
        let redis = RedisInstrumentation::for_client(&client, config.clone());
        let bare = tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "redis: connection timed out")??;
        Ok(Self {
            con: redis.wrap(bare),
            prefix: format!("tracewire-demo:{run_id}"),
        })
    }

    fn product_key(&self, sku: &str) -> String {
        format!("{}:price:{sku}", self.prefix)
    }

    fn order_key(&self, id: i64) -> String {
        format!("{}:order:{id}", self.prefix)
    }

    pub(crate) async fn price(&self, sku: &str) -> Result<Option<i64>, Error> {
        let mut con = self.con.clone();
        let price: Option<i64> = con.get(self.product_key(sku)).await?;
        Ok(price)
    }

    pub(crate) async fn put_price(&self, sku: &str, price_cents: i64) -> Result<(), Error> {
        let mut con = self.con.clone();
        let () = con.set_ex(self.product_key(sku), price_cents, 60).await?;
        Ok(())
    }

    pub(crate) async fn put_order(&self, id: i64, json: &str) -> Result<(), Error> {
        let mut con = self.con.clone();
        let () = con.set_ex(self.order_key(id), json, 300).await?;
        Ok(())
    }

    /// Removes this run's keys through the bare connection (outside the trace).
    pub(crate) async fn close(&self, order_ids: &[i64], skus: &[String]) {
        let mut keys: Vec<String> = order_ids.iter().map(|id| self.order_key(*id)).collect();
        keys.extend(skus.iter().map(|sku| self.product_key(sku)));
        if keys.is_empty() {
            return;
        }
        let mut con = self.con.clone();
        let _: Result<(), _> = redis::cmd("DEL")
            .arg(&keys)
            .query_async(con.inner_mut())
            .await;
    }
}

/// The order events: a RabbitMQ queue of this run's own, with publisher confirms.
pub(crate) struct Events {
    connection: lapin::Connection,
    channel: InstrumentedChannel,
    queue: String,
}

impl Events {
    pub(crate) async fn connect(url: &str, run_id: &str, config: &Config) -> Result<Self, Error> {
        let telemetry = LapinTelemetry::builder()
            .config(config.clone())
            .uri(url)
            .build();
        let connection = tokio::time::timeout(
            CONNECT_TIMEOUT,
            lapin::Connection::connect(url, ConnectionProperties::default()),
        )
        .await
        .map_err(|_| "rabbitmq: connection timed out")??;
        let channel = telemetry.channel(connection.create_channel().await?);
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let queue = format!("orders.{run_id}");
        // The broker drops the queue a minute after its last use, should cleanup not happen.
        let mut arguments = FieldTable::default();
        arguments.insert("x-expires".into(), AMQPValue::LongInt(60_000));
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                arguments,
            )
            .await?;
        Ok(Self {
            connection,
            channel,
            queue,
        })
    }

    pub(crate) fn queue(&self) -> &str {
        &self.queue
    }

    pub(crate) async fn consumer(&self) -> Result<InstrumentedConsumer, Error> {
        Ok(self
            .channel
            .basic_consume(
                self.queue.as_str().into(),
                "tracewire-demo".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?)
    }

    /// Publishes and waits for the broker's confirm (the PRODUCER span lasts until then).
    pub(crate) async fn publish(&self, message_id: String, body: &[u8]) -> Result<(), Error> {
        let properties = BasicProperties::default()
            .with_message_id(message_id.into())
            .with_content_type("application/json".into());
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                self.queue.as_str().into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await?
            .await?;
        if confirm.is_nack() {
            return Err("rabbitmq: the broker refused the order event".into());
        }
        Ok(())
    }

    pub(crate) async fn close(&self) {
        let _ = self
            .channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await;
        let _ = self.connection.close(200, "tour finished".into()).await;
    }
}
