//! What tracewire needs to know about each sqlx database: where its connections go, how its
//! statements are sanitized, and which code its server errors carry.

use std::borrow::Cow;

use sqlx::Database;
use sqlx::error::DatabaseError;
use tracewire_shared::db::DbTarget;
use tracewire_shared::sanitize::sql::Dialect;

mod sealed {
    pub trait Sealed {}
}

/// A sqlx database tracewire can instrument: [`Postgres`](sqlx::Postgres) (feature `postgres`),
/// [`MySql`](sqlx::MySql) (feature `mysql`, MySQL and MariaDB) and [`Sqlite`](sqlx::Sqlite) (feature
/// `sqlite`).
///
/// The trait is sealed; its methods are implementation details.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use tracewire_sqlx::InstrumentedDatabase;
///
/// fn instrumentable<DB: InstrumentedDatabase>() {}
/// instrumentable::<sqlx::Sqlite>();
/// # }
/// ```
pub trait InstrumentedDatabase: Database + sealed::Sealed {
    /// `db.system.name` unless told otherwise.
    #[doc(hidden)]
    const SYSTEM: &'static str;

    /// The dialect statements and error messages are sanitized in.
    #[doc(hidden)]
    const DIALECT: Dialect;

    /// The target of a pool with these connect options, reported as `system`.
    #[doc(hidden)]
    fn target(
        options: &<Self::Connection as sqlx::Connection>::Options,
        system: &'static str,
    ) -> DbTarget;

    /// `db.response.status_code` of a server error: SQLSTATE (PostgreSQL), error number
    /// (MySQL/MariaDB), extended result code (SQLite).
    #[doc(hidden)]
    fn status_code(error: &dyn DatabaseError) -> Option<Cow<'_, str>>;
}

/// `host:port/namespace`, the pool name the semantic conventions suggest when none is given.
pub(crate) fn default_pool_name(target: &DbTarget, port: Option<u16>) -> String {
    let mut name = String::new();
    if let Some(addr) = target.server_address() {
        name.push_str(addr);
        if let Some(port) = port {
            name.push(':');
            name.push_str(&port.to_string());
        }
    }
    if let Some(ns) = target.namespace() {
        if !name.is_empty() {
            name.push('/');
        }
        name.push_str(ns);
    }
    if name.is_empty() {
        name.push_str(target.system());
    }
    name
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use sqlx::postgres::{PgConnectOptions, PgDatabaseError, Postgres};
    use tracewire_shared::semconv::db_system;

    impl sealed::Sealed for Postgres {}

    impl InstrumentedDatabase for Postgres {
        const SYSTEM: &'static str = db_system::POSTGRESQL;
        const DIALECT: Dialect = Dialect::Postgres;

        fn target(options: &PgConnectOptions, system: &'static str) -> DbTarget {
            // Without a database name PostgreSQL connects to the database named after the user.
            let namespace = options
                .get_database()
                .unwrap_or_else(|| options.get_username());
            let address = match options.get_socket() {
                Some(socket) => socket.to_string_lossy().into_owned(),
                None => options.get_host().to_owned(),
            };
            DbTarget::new(system).with_namespace(namespace).with_server(
                address,
                Some(options.get_port()),
                5432,
            )
        }

        fn status_code(error: &dyn DatabaseError) -> Option<Cow<'_, str>> {
            match error.try_downcast_ref::<PgDatabaseError>() {
                Some(pg) => Some(Cow::Borrowed(pg.code())),
                None => error.code(),
            }
        }
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlDatabaseError};
    use tracewire_shared::semconv::db_system;

    impl sealed::Sealed for MySql {}

    impl InstrumentedDatabase for MySql {
        const SYSTEM: &'static str = db_system::MYSQL;
        const DIALECT: Dialect = Dialect::MySql;

        fn target(options: &MySqlConnectOptions, system: &'static str) -> DbTarget {
            let address = match options.get_socket() {
                Some(socket) => socket.to_string_lossy().into_owned(),
                None => options.get_host().to_owned(),
            };
            let target = DbTarget::new(system).with_server(address, Some(options.get_port()), 3306);
            match options.get_database() {
                Some(db) => target.with_namespace(db),
                None => target,
            }
        }

        fn status_code(error: &dyn DatabaseError) -> Option<Cow<'_, str>> {
            match error.try_downcast_ref::<MySqlDatabaseError>() {
                Some(my) => Some(Cow::Owned(my.number().to_string())),
                None => error.code(),
            }
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use sqlx::sqlite::{Sqlite, SqliteConnectOptions};
    use tracewire_shared::semconv::db_system;

    impl sealed::Sealed for Sqlite {}

    /// The file name sqlx gives the databases of `sqlite::memory:` URLs.
    const SQLX_IN_MEMORY_PREFIX: &str = "file:sqlx-in-memory-";

    impl InstrumentedDatabase for Sqlite {
        const SYSTEM: &'static str = db_system::SQLITE;
        const DIALECT: Dialect = Dialect::Sqlite;

        fn target(options: &SqliteConnectOptions, system: &'static str) -> DbTarget {
            let file = options.get_filename().to_string_lossy();
            // sqlx names each in-memory database after a process-wide counter; that name means
            // nothing outside the process and would split metrics per pool, so report `:memory:`.
            let namespace = if file.starts_with(SQLX_IN_MEMORY_PREFIX) {
                ":memory:"
            } else {
                &file
            };
            DbTarget::new(system).with_namespace(namespace)
        }

        fn status_code(error: &dyn DatabaseError) -> Option<Cow<'_, str>> {
            // sqlx's SQLite error code is already the extended result code.
            error.code()
        }
    }
}
