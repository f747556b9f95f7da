//! diesel errors as span failures: `error.type`, `db.response.status_code`, a secret-free message.
//!
//! diesel reduces server errors to a [`DatabaseErrorKind`] plus a message; the SQLSTATE or MySQL
//! error number itself is not exposed. Where a kind comes from exactly one code, that code is
//! restored (PostgreSQL: every kind diesel distinguishes; MySQL: the kinds with one number). Other
//! errors are typed by their diesel variant name, the same name the caller matches on.

use std::borrow::Cow;

use diesel::result::{DatabaseErrorKind, Error};
use tracewire_shared::record::Failure;
use tracewire_shared::semconv;

use crate::client::Client;
use crate::connection_info::DbSystem;

const EXCEPTION_TYPE: &str = "diesel::result::Error";

fn kind_name(kind: &DatabaseErrorKind) -> &'static str {
    match kind {
        DatabaseErrorKind::UniqueViolation => "UniqueViolation",
        DatabaseErrorKind::ForeignKeyViolation => "ForeignKeyViolation",
        DatabaseErrorKind::UnableToSendCommand => "UnableToSendCommand",
        DatabaseErrorKind::SerializationFailure => "SerializationFailure",
        DatabaseErrorKind::ReadOnlyTransaction => "ReadOnlyTransaction",
        DatabaseErrorKind::RestrictViolation => "RestrictViolation",
        DatabaseErrorKind::NotNullViolation => "NotNullViolation",
        DatabaseErrorKind::CheckViolation => "CheckViolation",
        DatabaseErrorKind::ExclusionViolation => "ExclusionViolation",
        DatabaseErrorKind::ClosedConnection => "ClosedConnection",
        _ => semconv::ERROR_TYPE_OTHER,
    }
}

/// The server code a kind stands for, where diesel derives the kind from a single code.
fn status_code(system: DbSystem, kind: &DatabaseErrorKind) -> Option<&'static str> {
    match system {
        DbSystem::Postgres => match kind {
            DatabaseErrorKind::UniqueViolation => Some("23505"),
            DatabaseErrorKind::ForeignKeyViolation => Some("23503"),
            DatabaseErrorKind::SerializationFailure => Some("40001"),
            DatabaseErrorKind::ReadOnlyTransaction => Some("25006"),
            DatabaseErrorKind::NotNullViolation => Some("23502"),
            DatabaseErrorKind::CheckViolation => Some("23514"),
            DatabaseErrorKind::RestrictViolation => Some("23001"),
            DatabaseErrorKind::ExclusionViolation => Some("23P01"),
            _ => None,
        },
        DbSystem::MySql | DbSystem::MariaDb => match kind {
            DatabaseErrorKind::UniqueViolation => Some("1062"),
            DatabaseErrorKind::ReadOnlyTransaction => Some("1792"),
            DatabaseErrorKind::CheckViolation => Some("3819"),
            _ => None,
        },
        DbSystem::Sqlite => None,
    }
}

fn variant_name(error: &Error) -> &'static str {
    match error {
        Error::InvalidCString(_) => "InvalidCString",
        Error::DatabaseError(kind, _) => kind_name(kind),
        Error::NotFound => "NotFound",
        Error::QueryBuilderError(_) => "QueryBuilderError",
        Error::DeserializationError(_) => "DeserializationError",
        Error::SerializationError(_) => "SerializationError",
        Error::RollbackErrorOnCommit { .. } => "RollbackErrorOnCommit",
        Error::RollbackTransaction => "RollbackTransaction",
        Error::AlreadyInTransaction => "AlreadyInTransaction",
        Error::NotInTransaction => "NotInTransaction",
        Error::BrokenTransactionManager => "BrokenTransactionManager",
        _ => semconv::ERROR_TYPE_OTHER,
    }
}

/// The span failure for `error`. Server messages are sanitized in the connection's dialect (MySQL
/// quotes the offending value in its messages); other errors get a fixed description, as their
/// messages may quote data (a value that failed to deserialize, say).
pub(crate) fn failure_of(client: &Client, error: &Error) -> Failure<'static> {
    let kind = variant_name(error);
    match error {
        Error::DatabaseError(db_kind, info) => {
            let code = status_code(client.system(), db_kind);
            let message = client.sanitize_message(info.message());
            let mut failure = Failure::new(Cow::Borrowed(code.unwrap_or(kind)), message)
                .with_exception_type(EXCEPTION_TYPE);
            if let Some(code) = code {
                failure = failure.with_db_status_code(code);
            }
            failure
        }
        _ => Failure::new(kind, kind).with_exception_type(EXCEPTION_TYPE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_only_where_unambiguous() {
        use DatabaseErrorKind::*;
        assert_eq!(
            status_code(DbSystem::Postgres, &UniqueViolation),
            Some("23505")
        );
        assert_eq!(
            status_code(DbSystem::MariaDb, &UniqueViolation),
            Some("1062")
        );
        assert_eq!(status_code(DbSystem::MySql, &ForeignKeyViolation), None);
        assert_eq!(status_code(DbSystem::Sqlite, &UniqueViolation), None);
        assert_eq!(status_code(DbSystem::Postgres, &Unknown), None);
        assert_eq!(kind_name(&Unknown), "_OTHER");
        assert_eq!(variant_name(&Error::NotFound), "NotFound");
    }
}
