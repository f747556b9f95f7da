//! One span per executor call: the query's text is read, the span started, and sqlx's future or
//! stream wrapped so the span ends when it completes, fails, or is dropped unfinished.

use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::future::BoxFuture;
use futures_core::stream::{BoxStream, Stream};
use futures_util::StreamExt;
use sqlx::{Database, Either, Error, Execute, Executor};
use tracewire_shared::db::DbOperation;

use crate::InstrumentedDatabase;
use crate::execute::Captured;
use crate::instruments::Instruments;

/// How a traced future reaches the pool's instruments. A connection executor is borrowed for as long
/// as its futures live, so they borrow the instruments (and the operation borrows its client) at no
/// cost; sqlx's pool futures outlive the `&Pool` they came from, so the pool's hold a handle.
pub(crate) enum InstrumentsRef<'a> {
    Borrowed(&'a Instruments),
    Shared(Arc<Instruments>),
}

impl Deref for InstrumentsRef<'_> {
    type Target = Instruments;

    fn deref(&self) -> &Instruments {
        match self {
            Self::Borrowed(inst) => inst,
            Self::Shared(inst) => inst,
        }
    }
}

fn start<'e, 'q, DB: InstrumentedDatabase, E: Execute<'q, DB>>(
    inst: &InstrumentsRef<'e>,
    query: E,
) -> (DbOperation<'e>, Captured<DB>) {
    let captured = Captured::new(query);
    // Registers the pool gauges on the first operation.
    let _ = inst.pool();
    let op = match inst {
        InstrumentsRef::Borrowed(inst) => inst.client.sql_with(captured.text(), None, false),
        InstrumentsRef::Shared(inst) => inst
            .client
            .sql_with(captured.text(), None, false)
            .into_owned(),
    };
    (op, captured)
}

fn traced_future<'e, DB: InstrumentedDatabase, T: Send + 'e>(
    inst: InstrumentsRef<'e>,
    op: DbOperation<'e>,
    inner: BoxFuture<'e, Result<T, Error>>,
    rows: fn(&T) -> Option<u64>,
) -> BoxFuture<'e, Result<T, Error>> {
    // Dropping this future before it completes drops `op`, which ends the span as cancelled.
    Box::pin(async move {
        let result = inner.await;
        inst.finish::<DB, T>(op, &result, rows);
        result
    })
}

/// sqlx's stream with the operation's span: ended at the stream's end, at its first error, or when
/// the stream is dropped half-read (cancelled).
pub(crate) struct TracedStream<'e, DB, T> {
    inner: BoxStream<'e, Result<T, Error>>,
    op: Option<DbOperation<'e>>,
    inst: InstrumentsRef<'e>,
    rows: u64,
    is_row: Option<fn(&T) -> bool>,
    _db: PhantomData<fn() -> DB>,
}

impl<DB: InstrumentedDatabase, T> Stream for TracedStream<'_, DB, T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = this.inner.poll_next_unpin(cx);
        match &next {
            Poll::Ready(Some(Ok(item))) => {
                if this.is_row.is_some_and(|is_row| is_row(item)) {
                    this.rows += 1;
                }
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(op) = this.op.take() {
                    this.inst.fail::<DB>(op, error);
                }
            }
            Poll::Ready(None) => {
                if let Some(op) = this.op.take() {
                    op.end_ok_with_rows(this.is_row.map(|_| this.rows));
                }
            }
            Poll::Pending => {}
        }
        next
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

fn traced_stream<'e, DB: InstrumentedDatabase, T: Send + 'e>(
    inst: InstrumentsRef<'e>,
    op: DbOperation<'e>,
    inner: BoxStream<'e, Result<T, Error>>,
    is_row: Option<fn(&T) -> bool>,
) -> BoxStream<'e, Result<T, Error>> {
    Box::pin(TracedStream::<DB, T> {
        inner,
        op: Some(op),
        inst,
        rows: 0,
        is_row,
        _db: PhantomData,
    })
}

pub(crate) fn execute<'c, 'e, 'q, X, E>(
    inst: InstrumentsRef<'e>,
    exec: X,
    query: E,
) -> BoxFuture<'e, Result<<X::Database as Database>::QueryResult, Error>>
where
    'c: 'e,
    'q: 'e,
    X: Executor<'c>,
    X::Database: InstrumentedDatabase,
    E: 'q + Execute<'q, X::Database>,
{
    let (op, query) = start::<X::Database, E>(&inst, query);
    traced_future::<X::Database, _>(inst, op, exec.execute(query), |_| None)
}

pub(crate) fn execute_many<'c, 'e, 'q, X, E>(
    inst: InstrumentsRef<'e>,
    exec: X,
    query: E,
) -> BoxStream<'e, Result<<X::Database as Database>::QueryResult, Error>>
where
    'c: 'e,
    'q: 'e,
    X: Executor<'c>,
    X::Database: InstrumentedDatabase,
    E: 'q + Execute<'q, X::Database>,
{
    let (op, query) = start::<X::Database, E>(&inst, query);
    traced_stream::<X::Database, _>(inst, op, exec.execute_many(query), None)
}

pub(crate) fn fetch<'c, 'e, 'q, X, E>(
    inst: InstrumentsRef<'e>,
    exec: X,
    query: E,
) -> BoxStream<'e, Result<<X::Database as Database>::Row, Error>>
where
    'c: 'e,
    'q: 'e,
    X: Executor<'c>,
    X::Database: InstrumentedDatabase,
    E: 'q + Execute<'q, X::Database>,
{
    let (op, query) = start::<X::Database, E>(&inst, query);
    traced_stream::<X::Database, _>(inst, op, exec.fetch(query), Some(|_| true))
}

#[allow(clippy::type_complexity)]
pub(crate) fn fetch_many<'c, 'e, 'q, X, E>(
    inst: InstrumentsRef<'e>,
    exec: X,
    query: E,
) -> BoxStream<
    'e,
    Result<Either<<X::Database as Database>::QueryResult, <X::Database as Database>::Row>, Error>,
>
where
    'c: 'e,
    'q: 'e,
    X: Executor<'c>,
    X::Database: InstrumentedDatabase,
    E: 'q + Execute<'q, X::Database>,
{
    let (op, query) = start::<X::Database, E>(&inst, query);
    traced_stream::<X::Database, _>(
        inst,
        op,
        exec.fetch_many(query),
        Some(|step| step.is_right()),
    )
}

pub(crate) fn fetch_all<'c, 'e, 'q, X, E>(
    inst: InstrumentsRef<'e>,
    exec: X,
    query: E,
) -> BoxFuture<'e, Result<Vec<<X::Database as Database>::Row>, Error>>
where
    'c: 'e,
    'q: 'e,
    X: Executor<'c>,
    X::Database: InstrumentedDatabase,
    E: 'q + Execute<'q, X::Database>,
{
    let (op, query) = start::<X::Database, E>(&inst, query);
    traced_future::<X::Database, _>(inst, op, exec.fetch_all(query), |rows| {
        Some(rows.len() as u64)
    })
}

pub(crate) fn fetch_one<'c, 'e, 'q, X, E>(
    inst: InstrumentsRef<'e>,
    exec: X,
    query: E,
) -> BoxFuture<'e, Result<<X::Database as Database>::Row, Error>>
where
    'c: 'e,
    'q: 'e,
    X: Executor<'c>,
    X::Database: InstrumentedDatabase,
    E: 'q + Execute<'q, X::Database>,
{
    let (op, query) = start::<X::Database, E>(&inst, query);
    traced_future::<X::Database, _>(inst, op, exec.fetch_one(query), |_| Some(1))
}

pub(crate) fn fetch_optional<'c, 'e, 'q, X, E>(
    inst: InstrumentsRef<'e>,
    exec: X,
    query: E,
) -> BoxFuture<'e, Result<Option<<X::Database as Database>::Row>, Error>>
where
    'c: 'e,
    'q: 'e,
    X: Executor<'c>,
    X::Database: InstrumentedDatabase,
    E: 'q + Execute<'q, X::Database>,
{
    let (op, query) = start::<X::Database, E>(&inst, query);
    traced_future::<X::Database, _>(inst, op, exec.fetch_optional(query), |row| {
        Some(u64::from(row.is_some()))
    })
}

/// Implements every [`Executor`] method by forwarding to the same method of the wrapped executor
/// through the helpers above (so sqlx's own behaviour per method is kept). `$s.parts()` gives the
/// instruments (an [`InstrumentsRef`]) and the wrapped executor.
macro_rules! instrumented_executor_methods {
    ($s:ident) => {
        fn execute<'e, 'q: 'e, E>(
            $s,
            query: E,
        ) -> ::futures_core::future::BoxFuture<
            'e,
            Result<<Self::Database as ::sqlx::Database>::QueryResult, ::sqlx::Error>,
        >
        where
            'c: 'e,
            E: 'q + ::sqlx::Execute<'q, Self::Database>,
        {
            let (inst, exec) = $s.parts();
            $crate::operation::execute(inst, exec, query)
        }

        fn execute_many<'e, 'q: 'e, E>(
            $s,
            query: E,
        ) -> ::futures_core::stream::BoxStream<
            'e,
            Result<<Self::Database as ::sqlx::Database>::QueryResult, ::sqlx::Error>,
        >
        where
            'c: 'e,
            E: 'q + ::sqlx::Execute<'q, Self::Database>,
        {
            let (inst, exec) = $s.parts();
            $crate::operation::execute_many(inst, exec, query)
        }

        fn fetch<'e, 'q: 'e, E>(
            $s,
            query: E,
        ) -> ::futures_core::stream::BoxStream<
            'e,
            Result<<Self::Database as ::sqlx::Database>::Row, ::sqlx::Error>,
        >
        where
            'c: 'e,
            E: 'q + ::sqlx::Execute<'q, Self::Database>,
        {
            let (inst, exec) = $s.parts();
            $crate::operation::fetch(inst, exec, query)
        }

        fn fetch_many<'e, 'q: 'e, E>(
            $s,
            query: E,
        ) -> ::futures_core::stream::BoxStream<
            'e,
            Result<
                ::sqlx::Either<
                    <Self::Database as ::sqlx::Database>::QueryResult,
                    <Self::Database as ::sqlx::Database>::Row,
                >,
                ::sqlx::Error,
            >,
        >
        where
            'c: 'e,
            E: 'q + ::sqlx::Execute<'q, Self::Database>,
        {
            let (inst, exec) = $s.parts();
            $crate::operation::fetch_many(inst, exec, query)
        }

        fn fetch_all<'e, 'q: 'e, E>(
            $s,
            query: E,
        ) -> ::futures_core::future::BoxFuture<
            'e,
            Result<Vec<<Self::Database as ::sqlx::Database>::Row>, ::sqlx::Error>,
        >
        where
            'c: 'e,
            E: 'q + ::sqlx::Execute<'q, Self::Database>,
        {
            let (inst, exec) = $s.parts();
            $crate::operation::fetch_all(inst, exec, query)
        }

        fn fetch_one<'e, 'q: 'e, E>(
            $s,
            query: E,
        ) -> ::futures_core::future::BoxFuture<
            'e,
            Result<<Self::Database as ::sqlx::Database>::Row, ::sqlx::Error>,
        >
        where
            'c: 'e,
            E: 'q + ::sqlx::Execute<'q, Self::Database>,
        {
            let (inst, exec) = $s.parts();
            $crate::operation::fetch_one(inst, exec, query)
        }

        fn fetch_optional<'e, 'q: 'e, E>(
            $s,
            query: E,
        ) -> ::futures_core::future::BoxFuture<
            'e,
            Result<Option<<Self::Database as ::sqlx::Database>::Row>, ::sqlx::Error>,
        >
        where
            'c: 'e,
            E: 'q + ::sqlx::Execute<'q, Self::Database>,
        {
            let (inst, exec) = $s.parts();
            $crate::operation::fetch_optional(inst, exec, query)
        }

        // Preparing and describing are not traced: they run no statement (sqlx prepares
        // transparently inside the calls above, which are), and `describe` serves the query macros
        // at compile time.
        fn prepare_with<'e>(
            $s,
            sql: ::sqlx::SqlStr,
            parameters: &'e [<Self::Database as ::sqlx::Database>::TypeInfo],
        ) -> ::futures_core::future::BoxFuture<
            'e,
            Result<<Self::Database as ::sqlx::Database>::Statement, ::sqlx::Error>,
        >
        where
            'c: 'e,
        {
            let (_, exec) = $s.parts();
            exec.prepare_with(sql, parameters)
        }

        fn describe<'e>(
            $s,
            sql: ::sqlx::SqlStr,
        ) -> ::futures_core::future::BoxFuture<
            'e,
            Result<::sqlx_core::describe::Describe<Self::Database>, ::sqlx::Error>,
        >
        where
            'c: 'e,
        {
            let (_, exec) = $s.parts();
            exec.describe(sql)
        }
    };
}

pub(crate) use instrumented_executor_methods;
