//! One database target's instrumentation: a [`DbClient`] (attributes computed once, the statement
//! cache, the instruments) shared by every connection to the target, plus what is particular to
//! diesel: its SQL is rendered only on request, and pool pings may be suppressed.

use std::sync::Arc;

use diesel::connection::DebugQuery;
use tracewire_shared::Instrumentation;
use tracewire_shared::db::{DbClient, DbOperation, DbTarget, Statement};

use crate::connection_info::{ConnectionInfo, DbSystem};
use crate::error::failure_of;
use crate::query_text::sql_of;

#[derive(Debug)]
pub(crate) struct Client {
    db: DbClient,
    system: DbSystem,
    suppress_health_checks: bool,
}

/// One query in flight.
#[derive(Debug)]
pub(crate) struct Operation {
    client: Arc<Client>,
    op: DbOperation<'static>,
}

impl Client {
    pub(crate) fn new(
        inst: Instrumentation,
        info: &ConnectionInfo,
        suppress: bool,
        metrics_summary: bool,
    ) -> Self {
        let system = info.system();
        let mut target = DbTarget::new(system.name());
        if let Some(ns) = info.namespace() {
            target = target.with_namespace(ns);
        }
        if let Some(address) = info.server_address() {
            target = target.with_server(address, info.server_port(), system.default_port());
        }
        Self {
            db: DbClient::new(inst, target)
                .with_sql_dialect(system.dialect())
                .with_metrics_summary(metrics_summary),
            system,
            suppress_health_checks: suppress,
        }
    }

    /// A server message with its quoted values and statement excerpt masked.
    pub(crate) fn sanitize_message(&self, message: &str) -> String {
        self.db.sanitize_message(message)
    }

    pub(crate) fn system(&self) -> DbSystem {
        self.system
    }

    /// The statement of `query`, rendering its SQL into `buf`; `None` when diesel cannot render it.
    pub(crate) fn statement_of(
        &self,
        query: &dyn DebugQuery,
        buf: &mut String,
    ) -> Option<Arc<Statement>> {
        sql_of(query, buf).then(|| self.db.statement(buf))
    }

    /// Starts the operation of `query`. Returns the statement when it was rendered (for pairing) and
    /// the operation unless it is a suppressed health check.
    pub(crate) fn start(
        self: &Arc<Self>,
        query: &dyn DebugQuery,
        buf: &mut String,
    ) -> (Option<Arc<Statement>>, Option<Operation>) {
        // Rendering costs about as much as the rest of the instrumentation, so it happens up front
        // only when something needs the text whatever the sampling decision: the metric summary, or
        // recognising a ping to suppress.
        if self.db.metrics_need_summary() || self.suppress_health_checks {
            let stmt = self.statement_of(query, buf);
            if self.suppress_health_checks && stmt.as_ref().is_some_and(|s| s.is_health_check()) {
                return (stmt, None);
            }
            let op = match &stmt {
                Some(s) => self.db.start_statement(s, None, false),
                None => self.db.start_deferred(None, || None).0,
            };
            return (stmt, Some(self.operation(op)));
        }
        let (op, rendered) = self
            .db
            .start_deferred(None, || self.statement_of(query, buf));
        (rendered, Some(self.operation(op)))
    }

    fn operation(self: &Arc<Self>, op: DbOperation<'_>) -> Operation {
        // Kept in the connection's instrumentation until diesel reports the finish.
        Operation {
            client: self.clone(),
            op: op.into_owned(),
        }
    }
}

impl Operation {
    /// Ends the operation with diesel's outcome, in place; a later drop records nothing more.
    pub(crate) fn finish(&mut self, error: Option<&diesel::result::Error>) {
        match error {
            Some(e) => self.op.end_error_in_place(&failure_of(&self.client, e)),
            None => self.op.end_ok_in_place(None),
        }
    }
}
