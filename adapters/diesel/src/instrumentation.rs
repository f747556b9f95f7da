//! [`QueryTracer`]: diesel's [`Instrumentation`] for one connection.
//!
//! diesel reports a query as a `StartQuery` event and a later `FinishQuery` event. On a synchronous
//! connection the two follow each other. diesel-async's `AsyncPgConnection` pipelines: several queries
//! may be in flight on one connection (`try_join!` over `&conn`), so starts and finishes interleave and
//! each finish has to find its own start. The finish event carries no identity that survives from the
//! start (diesel-async renders it from a different object, so addresses differ), only the SQL, so:
//!
//! - with one query in flight, the finish is that query's (a finish always follows its own start);
//! - with several, the finish goes to the oldest in-flight query with the same SQL (first in, first
//!   out per identical text, the order PostgreSQL answers a pipeline in);
//! - a finish nothing matches is ignored, and a query future dropped before it finished (its finish
//!   never comes) is ended as cancelled when the connection is dropped or, at the latest, after
//!   [`MAX_IN_FLIGHT`] newer queries.

use std::collections::VecDeque;
use std::sync::Arc;

use diesel::connection::{DebugQuery, Instrumentation, InstrumentationEvent};

use crate::DieselTracing;
use tracewire_shared::db::Statement;

use crate::client::{Client, Operation};
use crate::query_text::sql_of;

/// Queries kept waiting for their finish on one connection before the oldest is ended as cancelled.
pub const MAX_IN_FLIGHT: usize = 256;

#[derive(Debug)]
struct InFlight {
    statement: Option<Arc<Statement>>,
    operation: Option<Operation>,
}

/// diesel's [`Instrumentation`] that turns each query of one connection into a CLIENT span and a
/// `db.client.operation.duration` point.
///
/// Get one from [`DieselTracing::instrumentation`] (the target is read from the establish URL) or
/// [`DieselTracing::for_open_connection`]; [`install`](crate::install) makes diesel create one for
/// every new connection.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use diesel::prelude::*;
/// use diesel::sqlite::SqliteConnection;
/// use tracewire_diesel::{ConnectionInfo, DieselTracing};
///
/// let mut conn = SqliteConnection::establish(":memory:").unwrap();
/// conn.set_instrumentation(DieselTracing::default().for_open_connection(ConnectionInfo::parse(":memory:")));
/// diesel::sql_query("SELECT 1").execute(&mut conn).unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct QueryTracer {
    tracing: DieselTracing,
    client: Option<Arc<Client>>,
    in_flight: VecDeque<InFlight>,
    buf: String,
}

impl QueryTracer {
    pub(crate) fn new(tracing: DieselTracing, client: Option<Arc<Client>>) -> Self {
        Self {
            tracing,
            client,
            in_flight: VecDeque::new(),
            buf: String::new(),
        }
    }

    /// How many queries are waiting for their finish event.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn start(&mut self, query: &dyn DebugQuery) {
        let entry = match &self.client {
            Some(client) => {
                let (statement, operation) = client.start(query, &mut self.buf);
                InFlight {
                    statement,
                    operation,
                }
            }
            // Still queued, so the finish that follows finds its place.
            None => InFlight {
                statement: None,
                operation: None,
            },
        };
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.in_flight.pop_front();
        }
        self.in_flight.push_back(entry);
    }

    /// The queue position of the query that `query`'s finish belongs to: the only query in flight, or
    /// the oldest with the same SQL (else the oldest whose SQL was never rendered).
    fn position_of(&mut self, query: &dyn DebugQuery) -> Option<usize> {
        match self.in_flight.len() {
            0 => return None,
            1 => return Some(0),
            _ => {}
        }
        if !sql_of(query, &mut self.buf) {
            return None;
        }
        let sql = self.buf.as_str();
        self.in_flight
            .iter()
            .position(|f| f.statement.as_ref().is_some_and(|s| s.sql() == sql))
            .or_else(|| self.in_flight.iter().position(|f| f.statement.is_none()))
    }

    fn finish(&mut self, query: &dyn DebugQuery, error: Option<&diesel::result::Error>) {
        let Some(at) = self.position_of(query) else {
            return;
        };
        // Ended where it lies: an entry is a few hundred bytes, and ending it after taking it out
        // of the queue would copy it twice more (through the `Option` and the call).
        if let Some(op) = &mut self.in_flight[at].operation {
            op.finish(error);
        }
        if at == 0 {
            self.in_flight.pop_front();
        } else {
            self.in_flight.remove(at);
        }
    }
}

impl Instrumentation for QueryTracer {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => {
                self.client = Some(self.tracing.client_for_url(url));
            }
            InstrumentationEvent::StartQuery { query, .. } => self.start(query),
            InstrumentationEvent::FinishQuery { query, error, .. } => self.finish(query, error),
            // BEGIN / COMMIT / ROLLBACK / SAVEPOINT are executed as queries, and traced as such.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use diesel::result::{DatabaseErrorKind, Error};
    use opentelemetry::Value;
    use opentelemetry::trace::Status;
    use tracewire_shared::semconv;
    use tracewire_shared::testing::{Telemetry, attr, attr_str};

    use super::*;
    use crate::{ConnectionInfo, DbSystem, DieselOptions};

    struct Q(&'static str);
    impl fmt::Display for Q {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} -- binds: [\"secret\"]", self.0)
        }
    }
    impl fmt::Debug for Q {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Display::fmt(self, f)
        }
    }
    impl DebugQuery for Q {}

    fn tracer(t: &Telemetry) -> QueryTracer {
        DieselTracing::new(DieselOptions::new().config(t.config()))
            .for_open_connection(ConnectionInfo::new(DbSystem::Postgres))
    }

    fn start(tr: &mut QueryTracer, sql: &'static str) {
        tr.on_connection_event(InstrumentationEvent::start_query(&Q(sql)));
    }

    fn finish(tr: &mut QueryTracer, sql: &'static str, error: Option<&Error>) {
        tr.on_connection_event(InstrumentationEvent::finish_query(&Q(sql), error));
    }

    fn text_of(s: &opentelemetry_sdk::trace::SpanData) -> String {
        attr_str(s, semconv::DB_QUERY_TEXT).unwrap()
    }

    #[test]
    fn interleaved_finishes_find_their_own_start() {
        let t = Telemetry::new();
        let mut tr = tracer(&t);
        let dup = Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new("dup".to_owned()),
        );
        start(&mut tr, "SELECT a FROM t");
        start(&mut tr, "INSERT INTO t VALUES ($1)");
        start(&mut tr, "SELECT b FROM t");
        finish(&mut tr, "SELECT b FROM t", None);
        finish(&mut tr, "INSERT INTO t VALUES ($1)", Some(&dup));
        assert_eq!(tr.in_flight(), 1);
        finish(&mut tr, "SELECT a FROM t", None);
        assert_eq!(tr.in_flight(), 0);
        let spans = t.finished();
        assert_eq!(
            spans.iter().map(text_of).collect::<Vec<_>>(),
            [
                "SELECT b FROM t",
                "INSERT INTO t VALUES ($1)",
                "SELECT a FROM t"
            ]
        );
        assert!(matches!(spans[1].status, Status::Error { .. }));
        assert_eq!(
            attr_str(&spans[1], semconv::ERROR_TYPE).as_deref(),
            Some("23505")
        );
        assert!(matches!(spans[0].status, Status::Unset | Status::Ok));
        assert!(matches!(spans[2].status, Status::Unset | Status::Ok));
    }

    #[test]
    fn unmatched_finishes_are_ignored_and_leftovers_end_cancelled() {
        let t = Telemetry::new();
        let mut tr = tracer(&t);
        finish(&mut tr, "SELECT 1", None);
        assert!(t.finished().is_empty());
        start(&mut tr, "SELECT x FROM a");
        start(&mut tr, "SELECT y FROM b");
        finish(&mut tr, "SELECT z FROM c", None);
        assert_eq!(tr.in_flight(), 2, "a finish matching nothing takes nothing");
        drop(tr);
        let spans = t.finished();
        assert_eq!(spans.len(), 2);
        assert!(
            spans
                .iter()
                .all(|s| attr(s, semconv::TRACEWIRE_CANCELLED) == Some(&Value::Bool(true)))
        );
    }

    #[test]
    fn in_flight_is_bounded() {
        let t = Telemetry::unsampled();
        let mut tr = tracer(&t);
        for _ in 0..=MAX_IN_FLIGHT {
            start(&mut tr, "SELECT 1");
        }
        assert_eq!(tr.in_flight(), MAX_IN_FLIGHT);
    }
}
