//! Instrumented transactions.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Database, Error, SqlSafeStr, SqlStr, Transaction};
use sqlx_core::transaction::TransactionManager;

use crate::InstrumentedDatabase;
use crate::connection::InstrumentedConnection;
use crate::instruments::{Instruments, Lease};

/// A transaction whose statements are traced, from [`InstrumentedPool::begin`] or
/// [`InstrumentedConnection::begin`]. Use it as `&mut *tx`; finish it with [`commit`](Self::commit)
/// or [`rollback`](Self::rollback) (each traced). Dropped unfinished, sqlx rolls it back in the
/// background as usual; that rollback has no span.
///
/// [`InstrumentedPool::begin`]: crate::InstrumentedPool::begin
///
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # async fn example(pool: tracewire_sqlx::InstrumentedPool<sqlx::Postgres>) -> sqlx::Result<()> {
/// let mut tx = pool.begin().await?;
/// sqlx::query("UPDATE accounts SET balance = balance - $1 WHERE id = $2")
///     .bind(10_i64)
///     .bind(1_i64)
///     .execute(&mut *tx)
///     .await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub struct InstrumentedTransaction<'c, DB: Database> {
    conn: InstrumentedConnection<DB, Transaction<'c, DB>>,
    // Declared after `conn`, so the connection is back in the pool before its use time is recorded.
    _lease: Option<Lease>,
}

impl<DB: Database> fmt::Debug for InstrumentedTransaction<'_, DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.conn, f)
    }
}

impl<'c, DB: InstrumentedDatabase> InstrumentedTransaction<'c, DB> {
    pub(crate) fn new(
        tx: Transaction<'c, DB>,
        inst: Arc<Instruments>,
        lease: Option<Lease>,
    ) -> Self {
        Self {
            conn: InstrumentedConnection::new(tx, inst),
            _lease: lease,
        }
    }

    /// Commits the transaction (releases the savepoint when nested).
    pub async fn commit(self) -> Result<(), Error> {
        self.finish(Finish::Commit).await
    }

    /// Rolls the transaction back (to the savepoint when nested).
    pub async fn rollback(self) -> Result<(), Error> {
        self.finish(Finish::Rollback).await
    }

    /// The sqlx transaction (its later statements are not traced).
    pub fn into_inner(self) -> Transaction<'c, DB> {
        let Self { conn, _lease } = self;
        conn.into_parts().0
    }

    async fn finish(self, how: Finish) -> Result<(), Error> {
        let Self { conn, _lease } = self;
        let (tx, inst) = conn.into_parts();
        let depth = DB::TransactionManager::get_transaction_depth(&tx);
        let text = how.text(depth);
        let op = inst.client.sql_with(text.as_str(), None, false);
        let result = match how {
            Finish::Commit => tx.commit().await,
            Finish::Rollback => tx.rollback().await,
        };
        inst.finish::<DB, _>(op, &result, |_| None);
        result
    }
}

#[derive(Clone, Copy)]
enum Finish {
    Commit,
    Rollback,
}

impl Finish {
    /// The statement sqlx sends to finish a transaction at `depth` (1 = outermost).
    fn text(self, depth: usize) -> SqlStr {
        match (self, depth) {
            (Finish::Commit, 0 | 1) => SqlStr::from_static("COMMIT"),
            (Finish::Rollback, 0 | 1) => SqlStr::from_static("ROLLBACK"),
            (Finish::Commit, d) => {
                AssertSqlSafe(format!("RELEASE SAVEPOINT _sqlx_savepoint_{}", d - 1)).into_sql_str()
            }
            (Finish::Rollback, d) => {
                AssertSqlSafe(format!("ROLLBACK TO SAVEPOINT _sqlx_savepoint_{}", d - 1))
                    .into_sql_str()
            }
        }
    }
}

impl<'c, DB: Database> Deref for InstrumentedTransaction<'c, DB> {
    type Target = InstrumentedConnection<DB, Transaction<'c, DB>>;

    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl<DB: Database> DerefMut for InstrumentedTransaction<'_, DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}
