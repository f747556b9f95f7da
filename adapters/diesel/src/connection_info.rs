//! What a connection string says about where a connection goes, without its password.
//!
//! diesel passes the establish URL to instrumentation as it was given, password included. It is parsed
//! here by hand, field by field, so the password is skipped as it is read: it is never copied, never
//! stored, and never reaches an attribute (the URL itself is not kept either).

use std::borrow::Cow;

use tracewire_shared::sanitize::sql::Dialect;
use tracewire_shared::semconv::db_system;

/// The database system of a connection.
///
/// ```
/// use tracewire_diesel::DbSystem;
/// assert_eq!(DbSystem::MariaDb.name(), "mariadb");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DbSystem {
    /// PostgreSQL (`postgresql`).
    Postgres,
    /// MySQL (`mysql`).
    MySql,
    /// MariaDB (`mariadb`), which speaks the MySQL protocol.
    MariaDb,
    /// SQLite (`sqlite`).
    Sqlite,
}

impl DbSystem {
    /// The `db.system.name` value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => db_system::POSTGRESQL,
            Self::MySql => db_system::MYSQL,
            Self::MariaDb => db_system::MARIADB,
            Self::Sqlite => db_system::SQLITE,
        }
    }

    pub(crate) fn dialect(self) -> Dialect {
        match self {
            Self::Postgres => Dialect::Postgres,
            Self::MySql | Self::MariaDb => Dialect::MySql,
            Self::Sqlite => Dialect::Sqlite,
        }
    }

    pub(crate) fn default_port(self) -> u16 {
        match self {
            Self::Postgres => 5432,
            Self::MySql | Self::MariaDb => 3306,
            Self::Sqlite => 0,
        }
    }
}

/// Where a connection goes: `db.system.name`, `server.address`, `server.port`, `db.namespace`.
///
/// Built from a connection string with [`ConnectionInfo::parse`] (the password is skipped, never
/// stored), or field by field for a connection that is already open.
///
/// ```
/// use tracewire_diesel::{ConnectionInfo, DbSystem};
///
/// let info = ConnectionInfo::parse("postgres://app:s3cret@db.internal:6432/shop?sslmode=require");
/// assert_eq!(info.system(), DbSystem::Postgres);
/// assert_eq!(info.server_address(), Some("db.internal"));
/// assert_eq!(info.server_port(), Some(6432));
/// assert_eq!(info.namespace(), Some("shop"));
/// assert!(!format!("{info:?}").contains("s3cret"));
///
/// let info = ConnectionInfo::new(DbSystem::MySql).with_server("10.0.0.7", Some(3306)).with_namespace("crm");
/// assert_eq!(info.namespace(), Some("crm"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionInfo {
    system: DbSystem,
    server_address: Option<String>,
    server_port: Option<u16>,
    namespace: Option<String>,
}

impl ConnectionInfo {
    /// A connection to `system`, nothing else known yet.
    pub fn new(system: DbSystem) -> Self {
        Self {
            system,
            server_address: None,
            server_port: None,
            namespace: None,
        }
    }

    /// Sets `server.address` and the port (recorded as `server.port` when not the system's default).
    pub fn with_server(mut self, address: impl Into<String>, port: Option<u16>) -> Self {
        let address = address.into();
        self.server_address = (!address.is_empty()).then_some(address);
        self.server_port = port;
        self
    }

    /// Sets `db.namespace` (the database name; for SQLite the file path).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        self.namespace = (!namespace.is_empty()).then_some(namespace);
        self
    }

    /// Overrides the system, e.g. [`DbSystem::MariaDb`] for a MySQL-protocol URL.
    pub fn with_system(mut self, system: DbSystem) -> Self {
        self.system = system;
        self
    }

    /// The database system.
    pub fn system(&self) -> DbSystem {
        self.system
    }

    /// `server.address`.
    pub fn server_address(&self) -> Option<&str> {
        self.server_address.as_deref()
    }

    /// The port, when the connection string names one.
    pub fn server_port(&self) -> Option<u16> {
        self.server_port
    }

    /// `db.namespace`.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Reads a diesel connection string: `postgres://` / `postgresql://` URLs and PostgreSQL
    /// `key=value` strings, `mysql://` URLs (reported as [`DbSystem::MySql`]), and anything else as a
    /// SQLite database (a path, a `file:` URI, `sqlite://`, `:memory:`). User and password are skipped;
    /// query parameters are ignored except PostgreSQL's `host`, `port` and `dbname`.
    ///
    /// ```
    /// use tracewire_diesel::{ConnectionInfo, DbSystem};
    ///
    /// let kv = ConnectionInfo::parse("host=pg.local port=5433 dbname=orders password='p w'");
    /// assert_eq!((kv.system(), kv.server_address(), kv.server_port(), kv.namespace()),
    ///            (DbSystem::Postgres, Some("pg.local"), Some(5433), Some("orders")));
    ///
    /// let lite = ConnectionInfo::parse("file:/var/lib/app.db?mode=ro");
    /// assert_eq!((lite.system(), lite.namespace()), (DbSystem::Sqlite, Some("/var/lib/app.db")));
    /// ```
    pub fn parse(connection_string: &str) -> Self {
        let s = connection_string.trim();
        if let Some(rest) = strip_scheme(s, &["postgres://", "postgresql://"]) {
            return parse_url(DbSystem::Postgres, rest);
        }
        if let Some(rest) = strip_scheme(s, &["mysql://", "mariadb://"]) {
            let system = if s[..7].eq_ignore_ascii_case("mariadb") {
                DbSystem::MariaDb
            } else {
                DbSystem::MySql
            };
            return parse_url(system, rest);
        }
        if looks_like_pg_key_value(s) {
            return parse_key_value(s);
        }
        let path = strip_scheme(s, &["sqlite://", "file:"]).unwrap_or(s);
        let path = path.split(['?', '#']).next().unwrap_or_default();
        Self::new(DbSystem::Sqlite).with_namespace(percent_decode(path))
    }
}

fn strip_scheme<'a>(s: &'a str, schemes: &[&str]) -> Option<&'a str> {
    schemes.iter().find_map(|scheme| {
        s.get(..scheme.len())
            .filter(|head| head.eq_ignore_ascii_case(scheme))
            .map(|_| &s[scheme.len()..])
    })
}

fn looks_like_pg_key_value(s: &str) -> bool {
    const KEYS: [&str; 6] = ["host", "hostaddr", "port", "dbname", "user", "sslmode"];
    s.split_whitespace().any(|token| {
        token
            .split_once('=')
            .is_some_and(|(k, _)| KEYS.contains(&k.trim()))
    })
}

/// `[userinfo@]host[:port][,host2..][/db][?params]` after the scheme.
fn parse_url(system: DbSystem, rest: &str) -> ConnectionInfo {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // The password sits before the last '@' of the authority; only what follows is read.
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let first = hosts.split(',').next().unwrap_or_default();
    let (mut host, mut port) = split_host_port(first);
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, q.split('#').next().unwrap_or_default()),
        None => (tail.split('#').next().unwrap_or_default(), ""),
    };
    let mut namespace = percent_decode(path.trim_start_matches('/'));
    for pair in query.split('&') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        match (system, key) {
            (DbSystem::Postgres, "host") if host.is_empty() || !value.is_empty() => {
                host = percent_decode(value);
            }
            (DbSystem::Postgres, "port") => port = value.parse().ok().or(port),
            (DbSystem::Postgres, "dbname") => namespace = percent_decode(value),
            _ => {}
        }
    }
    ConnectionInfo::new(system)
        .with_server(host, port)
        .with_namespace(namespace)
}

fn split_host_port(hostport: &str) -> (Cow<'static, str>, Option<u16>) {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => (v6, None),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    (
        Cow::Owned(percent_decode(host).into_owned()),
        port.and_then(|p| p.parse().ok()),
    )
}

/// libpq `key=value` pairs; values may be single-quoted with backslash escapes.
fn parse_key_value(s: &str) -> ConnectionInfo {
    let (mut host, mut port, mut dbname) = (None, None, None);
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        // Only the values we keep are collected; any other value (the password) is skipped unread.
        let keep = matches!(key.as_str(), "host" | "hostaddr" | "port" | "dbname");
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = chars.next().filter(|_| keep) {
                            value.push(escaped);
                        }
                    }
                    '\'' => break,
                    c if keep => value.push(c),
                    _ => {}
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if keep {
                    value.push(c);
                }
            }
        }
        match key.as_str() {
            "host" => host = Some(value),
            "hostaddr" if host.is_none() => host = Some(value),
            "port" => port = value.parse().ok(),
            "dbname" => dbname = Some(value),
            _ => {}
        }
    }
    let host = host.map(|h| h.split(',').next().unwrap_or_default().to_owned());
    ConnectionInfo::new(DbSystem::Postgres)
        .with_server(host.unwrap_or_default(), port)
        .with_namespace(dbname.unwrap_or_default())
}

fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> (DbSystem, Option<String>, Option<u16>, Option<String>) {
        let i = ConnectionInfo::parse(s);
        assert!(!format!("{i:?}").contains("pw"), "{i:?}");
        (
            i.system(),
            i.server_address().map(str::to_owned),
            i.server_port(),
            i.namespace().map(str::to_owned),
        )
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn urls() {
        use DbSystem::*;
        assert_eq!(
            parts("postgres://u:pw@h:5433/db"),
            (Postgres, some("h"), Some(5433), some("db"))
        );
        assert_eq!(
            parts("postgresql://u:p%40w@[::1]/my%20db?sslmode=disable&password=pw"),
            (Postgres, some("::1"), None, some("my db"))
        );
        assert_eq!(
            parts("postgres://u:p@ss:pw@h1:1,h2:2/db"),
            (Postgres, some("h1"), Some(1), some("db"))
        );
        assert_eq!(
            parts("postgres:///db?host=/run/postgresql&port=5444"),
            (Postgres, some("/run/postgresql"), Some(5444), some("db"))
        );
        assert_eq!(
            parts("mysql://root:pw@127.0.0.1:3307/test?unix_socket=x"),
            (MySql, some("127.0.0.1"), Some(3307), some("test"))
        );
        assert_eq!(
            parts("MySQL://root@localhost"),
            (MySql, some("localhost"), None, None)
        );
    }

    #[test]
    fn key_value() {
        assert_eq!(
            parts("host=a,b port=6000 user=x password='p\\'w pw' dbname = 'my db'"),
            (DbSystem::Postgres, some("a"), Some(6000), some("my db"))
        );
        assert_eq!(
            parts("dbname=x password=pw"),
            (DbSystem::Postgres, None, None, some("x"))
        );
    }

    #[test]
    fn sqlite() {
        assert_eq!(
            parts(":memory:"),
            (DbSystem::Sqlite, None, None, some(":memory:"))
        );
        assert_eq!(
            parts("file:data/app.db?key=pw&mode=rwc"),
            (DbSystem::Sqlite, None, None, some("data/app.db"))
        );
        assert_eq!(
            parts("sqlite:///tmp/x.db"),
            (DbSystem::Sqlite, None, None, some("/tmp/x.db"))
        );
        assert_eq!(
            parts("./local.sqlite"),
            (DbSystem::Sqlite, None, None, some("./local.sqlite"))
        );
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "",
            "postgres://",
            "mysql://@",
            "postgres://[",
            "host=",
            "=",
            "'",
            "%",
            "%zz",
            "é%c3",
            "host='unterminated",
            "postgres://h:99999999/d",
        ] {
            let _ = ConnectionInfo::parse(s);
        }
    }
}
