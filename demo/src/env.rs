//! Which services the tour uses: SQLite always, the others when they answer.

use std::fmt;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A service the tour uses when it is reachable.
///
/// ```
/// use tracewire_demo::Service;
///
/// assert_eq!(Service::Redis.env_var(), "TRACEWIRE_REDIS_URL");
/// assert_eq!(Service::Redis.default_url(), "redis://127.0.0.1:6379/");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// PostgreSQL: the orders database (sqlx) instead of SQLite.
    Postgres,
    /// MariaDB (or MySQL): the audit log (sqlx).
    MariaDb,
    /// Redis: the product and order cache.
    Redis,
    /// RabbitMQ: the `order placed` event and its consumer.
    RabbitMq,
}

impl Service {
    /// Every optional service, in the order the tour reports them.
    pub const ALL: [Service; 4] = [
        Service::Postgres,
        Service::MariaDb,
        Service::Redis,
        Service::RabbitMq,
    ];

    /// The name `scripts/services` and `docker/compose.yml` know it by.
    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "postgres",
            Service::MariaDb => "mariadb",
            Service::Redis => "redis",
            Service::RabbitMq => "rabbitmq",
        }
    }

    /// The environment variable holding its URL.
    pub fn env_var(self) -> &'static str {
        match self {
            Service::Postgres => "TRACEWIRE_POSTGRES_URL",
            Service::MariaDb => "TRACEWIRE_MYSQL_URL",
            Service::Redis => "TRACEWIRE_REDIS_URL",
            Service::RabbitMq => "TRACEWIRE_AMQP_URL",
        }
    }

    /// The URL used when the variable is not set (the local defaults of `scripts/services`).
    pub fn default_url(self) -> &'static str {
        match self {
            Service::Postgres => "postgres://postgres@127.0.0.1:5432/test",
            Service::MariaDb => "mysql://root@127.0.0.1:3306/test",
            Service::Redis => "redis://127.0.0.1:6379/",
            Service::RabbitMq => "amqp://guest:guest@127.0.0.1:5672/%2f",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Service::Postgres => 5432,
            Service::MariaDb => 3306,
            Service::Redis => 6379,
            Service::RabbitMq => 5672,
        }
    }

    /// `host:port` of `url`, for messages and the reachability check (never the credentials).
    fn address(self, url: &str) -> String {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        if host_port.is_empty() {
            format!("127.0.0.1:{}", self.default_port())
        } else if host_port.ends_with(']') || !host_port.contains(':') {
            format!("{host_port}:{}", self.default_port())
        } else {
            host_port.to_owned()
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A service the tour runs without, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The service.
    pub service: Service,
    /// `host:port` that did not answer.
    pub address: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.service.name();
        write!(
            f,
            "{name}: not reachable at {} — skipped (start it with `scripts/services up {name}` \
             or `docker compose -f docker/compose.yml up -d {name}`, or set {})",
            self.address,
            self.service.env_var(),
        )
    }
}

/// The services one run of the order flow talks to.
///
/// SQLite (through sqlx and diesel) and the in-process HTTP API are always there; PostgreSQL,
/// MariaDB, Redis and RabbitMQ are used when given. Every run works in its own names (a PostgreSQL
/// schema, Redis keys, a RabbitMQ queue, audit rows) derived from [`Environment::run_id`], so runs
/// and tests can share servers.
///
/// ```
/// use tracewire_demo::Environment;
///
/// let env = Environment::embedded();
/// assert!(env.postgres.is_none() && env.redis.is_none());
/// ```
#[derive(Clone, Debug)]
pub struct Environment {
    /// A short id unique to this run, used in schema, key and queue names.
    pub run_id: String,
    /// The orders database; SQLite in memory when `None`.
    pub postgres: Option<String>,
    /// The audit log; no audit when `None`.
    pub mariadb: Option<String>,
    /// The cache; no caching when `None`.
    pub redis: Option<String>,
    /// The broker; the order event is not published when `None`.
    pub amqp: Option<String>,
    /// Services that were looked for and not found.
    pub skipped: Vec<Skipped>,
}

impl Environment {
    /// SQLite and the HTTP API only.
    pub fn embedded() -> Self {
        Self {
            run_id: run_id(),
            postgres: None,
            mariadb: None,
            redis: None,
            amqp: None,
            skipped: Vec::new(),
        }
    }

    /// Every service whose URL (`TRACEWIRE_*_URL`, else the local default) accepts a TCP connection
    /// within `timeout`; the others are listed in [`skipped`](Self::skipped).
    pub fn detect(timeout: Duration) -> Self {
        let mut env = Self::embedded();
        for service in Service::ALL {
            let url = std::env::var(service.env_var())
                .unwrap_or_else(|_| service.default_url().to_owned());
            let address = service.address(&url);
            if reachable(&address, timeout) {
                env = env.with(service, url);
            } else {
                env.skipped.push(Skipped { service, address });
            }
        }
        env
    }

    /// Uses `service` at `url`.
    pub fn with(mut self, service: Service, url: impl Into<String>) -> Self {
        let url = Some(url.into());
        match service {
            Service::Postgres => self.postgres = url,
            Service::MariaDb => self.mariadb = url,
            Service::Redis => self.redis = url,
            Service::RabbitMq => self.amqp = url,
        }
        self
    }

    /// Whether `service` is used.
    pub fn uses(&self, service: Service) -> bool {
        match service {
            Service::Postgres => self.postgres.is_some(),
            Service::MariaDb => self.mariadb.is_some(),
            Service::Redis => self.redis.is_some(),
            Service::RabbitMq => self.amqp.is_some(),
        }
    }
}

fn reachable(address: &str, timeout: Duration) -> bool {
    address
        .to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, timeout).is_ok())
}

fn run_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = nanos ^ std::process::id().rotate_left(16) ^ NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{mixed:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_leave_credentials_out() {
        assert_eq!(
            Service::RabbitMq.address("amqp://guest:guest@rabbit:5673/%2f"),
            "rabbit:5673"
        );
        assert_eq!(
            Service::Postgres.address("postgres://u:p@db/test"),
            "db:5432"
        );
        assert_eq!(
            Service::Redis.address("redis://127.0.0.1/"),
            "127.0.0.1:6379"
        );
    }

    #[test]
    fn skipped_line_says_how_to_start_the_service() {
        let line = Skipped {
            service: Service::Redis,
            address: "127.0.0.1:6379".into(),
        }
        .to_string();
        assert!(line.starts_with("redis: not reachable at 127.0.0.1:6379"));
        assert!(line.contains("scripts/services up redis"));
        assert!(line.contains("docker compose -f docker/compose.yml up -d redis"));
    }

    #[test]
    fn run_ids_differ() {
        assert_ne!(run_id(), run_id());
    }
}
