//! [`RedisInstrumentation`]: the configuration and per-server attributes that wrapped connections
//! share.

use redis::{Client, ConnectionAddr, ConnectionInfo};
use tracewire_shared::config::Domain;
use tracewire_shared::db::{DbClient, DbTarget};
use tracewire_shared::semconv::db_system;
use tracewire_shared::{Config, Instrumentation};

use crate::recorder::Recorder;

/// The port `server.port` is left out for.
const DEFAULT_PORT: u16 = 6379;

/// Instrumentation for the connections to one Redis server (or cluster): the [`Config`] and the
/// attributes every span and metric point carries (`db.system.name`, `server.address`,
/// `server.port`). Cheap to clone; wrap each connection with it.
///
/// ```no_run
/// use redis::AsyncCommands;
/// use tracewire_redis::RedisInstrumentation;
/// use tracewire_shared::Config;
///
/// # async fn run() -> redis::RedisResult<()> {
/// let client = redis::Client::open("redis://127.0.0.1/")?;
/// let redis = RedisInstrumentation::builder()
///     .config(Config::new())
///     .client(&client)
///     .build();
/// let mut con = redis.wrap(client.get_multiplexed_async_connection().await?);
/// let _: () = con.set("greeting", "hello").await?; // span `SET`, text `SET greeting ?`
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RedisInstrumentation {
    client: DbClient,
}

/// Builds a [`RedisInstrumentation`]; see [`RedisInstrumentation::builder`].
///
/// ```
/// use tracewire_redis::RedisInstrumentation;
///
/// let info: redis::ConnectionInfo = "redis://cache.internal:6380/2".parse().unwrap();
/// let redis = RedisInstrumentation::builder().connection_info(&info).build();
/// # let _ = redis;
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct Builder {
    config: Option<Config>,
    server: Option<(String, Option<u16>)>,
}

impl Builder {
    /// The shared options: providers, query text, hooks… (default: [`Config::new`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Takes `server.address` and `server.port` from the client's connection info.
    pub fn client(self, client: &Client) -> Self {
        self.connection_info(client.get_connection_info())
    }

    /// Takes `server.address` and `server.port` from `info` (a Unix socket's path is its address).
    /// Credentials in `info` are never read.
    pub fn connection_info(mut self, info: &ConnectionInfo) -> Self {
        self.server = match info.addr() {
            ConnectionAddr::Tcp(host, port) => Some((host.clone(), Some(*port))),
            ConnectionAddr::TcpTls { host, port, .. } => Some((host.clone(), Some(*port))),
            ConnectionAddr::Unix(path) => Some((path.to_string_lossy().into_owned(), None)),
            _ => None,
        };
        self
    }

    /// Sets `server.address` and `server.port` (left out when it is 6379) explicitly, for a
    /// cluster's entry point or a proxy.
    pub fn server(mut self, address: impl Into<String>, port: Option<u16>) -> Self {
        self.server = Some((address.into(), port));
        self
    }

    /// The instrumentation.
    pub fn build(self) -> RedisInstrumentation {
        let inst = Instrumentation::new(
            self.config.unwrap_or_default(),
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            Domain::Database,
        );
        let mut target = DbTarget::new(db_system::REDIS);
        if let Some((address, port)) = self.server {
            target = target.with_server(address, port, DEFAULT_PORT);
        }
        RedisInstrumentation {
            client: DbClient::new(inst, target),
        }
    }
}

impl RedisInstrumentation {
    /// A [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Instrumentation for `client`'s server with `config`; the same as
    /// `builder().config(config).client(client).build()`.
    ///
    /// ```
    /// use tracewire_redis::RedisInstrumentation;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1:6380/").unwrap();
    /// let redis = RedisInstrumentation::for_client(&client, tracewire_shared::Config::new());
    /// assert_eq!(redis.db_client().target().server_port(), Some(6380));
    /// ```
    pub fn for_client(client: &Client, config: Config) -> Self {
        Self::builder().config(config).client(client).build()
    }

    /// The underlying [`DbClient`] (target attributes, configuration, instruments).
    pub fn db_client(&self) -> &DbClient {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        self.client.instrumentation().config()
    }

    pub(crate) fn recorder(&self, db: i64) -> Recorder {
        Recorder::new(self.client.clone(), db)
    }

    /// Wraps an async connection: `MultiplexedConnection`, `ConnectionManager`, the cluster
    /// connection, a deadpool-redis connection, or any [`redis::aio::ConnectionLike`].
    #[cfg(feature = "tokio")]
    pub fn wrap<C: redis::aio::ConnectionLike>(
        &self,
        connection: C,
    ) -> crate::InstrumentedConnection<C> {
        crate::InstrumentedConnection::new(connection, self)
    }

    /// Wraps a guard that dereferences to an async connection (bb8's `PooledConnection`, or a plain
    /// `&mut MultiplexedConnection`).
    #[cfg(feature = "tokio")]
    pub fn wrap_guard<G>(&self, guard: G) -> crate::InstrumentedGuard<G>
    where
        G: std::ops::DerefMut,
        G::Target: redis::aio::ConnectionLike,
    {
        crate::InstrumentedGuard::new(guard, self)
    }

    /// Wraps a synchronous connection (`redis::Connection`, an r2d2 guard, the sync cluster
    /// connection, or any [`redis::ConnectionLike`]).
    #[cfg(feature = "sync")]
    pub fn wrap_sync<C: redis::ConnectionLike>(
        &self,
        connection: C,
    ) -> crate::InstrumentedSyncConnection<C> {
        crate::InstrumentedSyncConnection::new(connection, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_attributes_from_connection_info() {
        let info: ConnectionInfo = "redis://user:secret@cache.internal:6380/3".parse().unwrap();
        let redis = RedisInstrumentation::builder()
            .connection_info(&info)
            .build();
        let target = redis.db_client().target();
        assert_eq!(target.system(), "redis");
        assert_eq!(target.server_address(), Some("cache.internal"));
        assert_eq!(target.server_port(), Some(6380));

        let info: ConnectionInfo = "redis://127.0.0.1/".parse().unwrap();
        let redis = RedisInstrumentation::builder()
            .connection_info(&info)
            .build();
        assert_eq!(
            redis.db_client().target().server_port(),
            None,
            "default port left out"
        );

        let info: ConnectionInfo = "redis+unix:///run/redis.sock".parse().unwrap();
        let redis = RedisInstrumentation::builder()
            .connection_info(&info)
            .build();
        assert_eq!(
            redis.db_client().target().server_address(),
            Some("/run/redis.sock")
        );
    }
}
