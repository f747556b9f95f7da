//! [`InstrumentedPoolBuilder`]: the shared configuration, the pool name and, for MySQL pools, the
//! server flavour.

use sqlx::{Database, Pool};
use tracewire_shared::config::Domain;
use tracewire_shared::db::DbClient;
use tracewire_shared::{Config, Instrumentation};

use crate::database::default_pool_name;
use crate::instruments::Instruments;
use crate::{InstrumentedDatabase, InstrumentedPool};

/// Builds an [`InstrumentedPool`]; from [`InstrumentedPool::builder`].
///
/// Defaults: [`Config::new()`] (global providers resolved at first use, sanitized statement text,
/// metrics on) and a pool name of `server.address[:server.port]/db.namespace` (SQLite: the
/// namespace), as the semantic conventions suggest.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracewire_shared::{Config, QueryText};
/// use tracewire_sqlx::InstrumentedPool;
///
/// let pool = InstrumentedPool::builder(sqlx::SqlitePool::connect_lazy("sqlite::memory:").unwrap())
///     .config(Config::new().with_query_text(QueryText::Off))
///     .pool_name("sessions")
///     .build();
/// assert_eq!(pool.pool_name(), "sessions");
/// # }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
#[must_use = "call `.build()` to get the pool"]
pub struct InstrumentedPoolBuilder<DB: Database> {
    pool: Pool<DB>,
    config: Config,
    pool_name: Option<String>,
    system: Option<&'static str>,
}

impl<DB: Database> std::fmt::Debug for InstrumentedPoolBuilder<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedPoolBuilder")
            .field("pool", &self.pool)
            .field("pool_name", &self.pool_name)
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

impl<DB: InstrumentedDatabase> InstrumentedPoolBuilder<DB> {
    pub(crate) fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            config: Config::new(),
            pool_name: None,
            system: None,
        }
    }

    /// The shared tracewire configuration: providers, statement text, opt-ins, hooks.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// `db.client.connection.pool.name` on the pool metrics.
    pub fn pool_name(mut self, name: impl Into<String>) -> Self {
        self.pool_name = Some(name.into());
        self
    }

    /// The pool this builder wraps.
    pub fn inner(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Builds the pool. Nothing is sent to the server.
    pub fn build(self) -> InstrumentedPool<DB> {
        let system = self.system.unwrap_or(DB::SYSTEM);
        let target = DB::target(&self.pool.connect_options(), system);
        let pool_name = self
            .pool_name
            .unwrap_or_else(|| default_pool_name(&target, target.server_port()));
        let inst = Instrumentation::new(
            self.config,
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            Domain::Database,
        );
        let client = DbClient::new(inst, target).with_sql_dialect(DB::DIALECT);
        InstrumentedPool::from_parts(self.pool, |observe| {
            Instruments::new(client, pool_name, observe)
        })
    }
}

#[cfg(feature = "mysql")]
impl InstrumentedPoolBuilder<sqlx::MySql> {
    /// Reports `db.system.name` as `mariadb` (`true`) or `mysql` (`false`, the default).
    ///
    /// sqlx keeps the server version from the handshake private, so the flavour cannot be read
    /// without a query; say it here, or let [`detect_server`](Self::detect_server) ask once.
    ///
    /// ```
    /// # #[cfg(feature = "mysql")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bare = sqlx::MySqlPool::connect_lazy("mysql://root@127.0.0.1/test").unwrap();
    /// let pool = tracewire_sqlx::InstrumentedPool::builder(bare).mariadb(true).build();
    /// assert_eq!(pool.pool_name(), "127.0.0.1/test");
    /// # }
    /// # #[cfg(not(feature = "mysql"))] fn main() {}
    /// ```
    pub fn mariadb(mut self, yes: bool) -> Self {
        use tracewire_shared::semconv::db_system;
        self.system = Some(if yes {
            db_system::MARIADB
        } else {
            db_system::MYSQL
        });
        self
    }

    /// Asks the server its version once (`SELECT VERSION()`, on the bare pool, untraced) and reports
    /// `mariadb` or `mysql` accordingly. This is the one query tracewire ever sends on its own, and
    /// only when called; if it fails, the flavour stays as it was (`mysql` by default).
    ///
    /// ```no_run
    /// # #[cfg(feature = "mysql")]
    /// # async fn example() -> sqlx::Result<()> {
    /// let bare = sqlx::MySqlPool::connect("mysql://root@127.0.0.1/test").await?;
    /// let pool = tracewire_sqlx::InstrumentedPool::builder(bare).detect_server().await.build();
    /// # let _ = pool; Ok(()) }
    /// ```
    pub async fn detect_server(self) -> Self {
        let version: Result<String, _> = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&self.pool)
            .await;
        match version {
            Ok(v) => {
                let is_mariadb = v.to_ascii_lowercase().contains("mariadb");
                self.mariadb(is_mariadb)
            }
            Err(_) => self,
        }
    }
}
