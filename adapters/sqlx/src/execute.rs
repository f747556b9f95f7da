//! Reading a query's SQL text before sqlx runs it.
//!
//! [`Execute::sql`] consumes the query, so the text cannot be peeked at and handed on. Instead the
//! query is taken apart once — arguments, cached statement, persistence flag, text — and the parts go
//! on to sqlx in a [`Captured`] that answers every question exactly as the original would have,
//! including an argument-encoding error, which sqlx then reports as it always does.

use sqlx::error::BoxDynError;
use sqlx::{Database, Execute, SqlStr};

/// A query taken apart: its text is readable, and it executes exactly like the original.
pub(crate) struct Captured<DB: Database> {
    sql: SqlStr,
    statement: Option<DB::Statement>,
    arguments: Option<Result<Option<DB::Arguments>, BoxDynError>>,
    persistent: bool,
}

impl<DB: Database> Captured<DB> {
    pub(crate) fn new<'q, E: Execute<'q, DB>>(mut query: E) -> Self {
        let arguments = query.take_arguments();
        // A statement prepared by the caller is borrowed from the query, which `sql()` consumes;
        // statements are reference-counted handles, so the clone is cheap.
        let statement = query.statement().cloned();
        let persistent = query.persistent();
        Self {
            sql: query.sql(),
            statement,
            arguments: Some(arguments),
            persistent,
        }
    }

    pub(crate) fn text(&self) -> &str {
        self.sql.as_str()
    }
}

impl<DB: Database> Execute<'_, DB> for Captured<DB> {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&DB::Statement> {
        self.statement.as_ref()
    }

    fn take_arguments(&mut self) -> Result<Option<DB::Arguments>, BoxDynError> {
        self.arguments.take().unwrap_or(Ok(None))
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}
