//! [`DieselTracing`]: the instrumentation shared by many connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tracewire_shared::Instrumentation;
use tracewire_shared::config::Domain;

use crate::client::Client;
use crate::connection_info::{ConnectionInfo, DbSystem};
use crate::instrumentation::QueryTracer;
use crate::options::{DieselOptions, MySqlFlavor};

/// The diesel instrumentation: options, the resolved tracer and meter, and per database target the
/// statement cache and instruments all its connections share. Cheap to clone.
///
/// Most applications call [`install`](crate::install) once and never see this type. Use it directly
/// to instrument connections without touching diesel's process-wide default (tests, several
/// configurations in one process).
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use diesel::prelude::*;
/// use diesel::sqlite::SqliteConnection;
/// use tracewire_diesel::{ConnectionInfo, DieselOptions, DieselTracing};
/// use tracewire_shared::Config;
///
/// let tracing = DieselTracing::new(DieselOptions::new().config(Config::new()));
/// let url = ":memory:";
/// let mut conn = SqliteConnection::establish(url).unwrap();
/// conn.set_instrumentation(tracing.for_open_connection(ConnectionInfo::parse(url)));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DieselTracing {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: DieselOptions,
    inst: Instrumentation,
    clients: Mutex<HashMap<ConnectionInfo, Arc<Client>>>,
}

impl Default for DieselTracing {
    fn default() -> Self {
        Self::new(DieselOptions::default())
    }
}

impl DieselTracing {
    /// An instrumentation with `options`.
    pub fn new(options: DieselOptions) -> Self {
        let inst = Instrumentation::new(
            options.config.clone(),
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            Domain::Database,
        );
        Self {
            inner: Arc::new(Inner {
                options,
                inst,
                clients: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The options.
    pub fn options(&self) -> &DieselOptions {
        &self.inner.options
    }

    /// The resolved tracer, meter and shared configuration.
    pub fn shared(&self) -> &Instrumentation {
        &self.inner.inst
    }

    /// A [`QueryTracer`] for a connection about to be established: it learns its target from the
    /// `StartEstablishConnection` event (so set it before establishing, as diesel's default
    /// instrumentation is).
    pub fn instrumentation(&self) -> QueryTracer {
        QueryTracer::new(self.clone(), None)
    }

    /// A [`QueryTracer`] for a connection that is already open, going to `info`; pass it to diesel's
    /// `set_instrumentation`.
    pub fn for_open_connection(&self, info: ConnectionInfo) -> QueryTracer {
        QueryTracer::new(self.clone(), Some(self.client(self.adjust(info))))
    }

    /// The [`ConnectionInfo`] of `url` with this instrumentation's MySQL flavor applied.
    pub fn connection_info(&self, url: &str) -> ConnectionInfo {
        self.adjust(ConnectionInfo::parse(url))
    }

    fn adjust(&self, info: ConnectionInfo) -> ConnectionInfo {
        match (info.system(), self.inner.options.mysql_flavor) {
            (DbSystem::MySql, MySqlFlavor::MariaDb) => info.with_system(DbSystem::MariaDb),
            _ => info,
        }
    }

    pub(crate) fn client_for_url(&self, url: &str) -> Arc<Client> {
        self.client(self.connection_info(url))
    }

    fn client(&self, info: ConnectionInfo) -> Arc<Client> {
        let mut clients = self
            .inner
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(info)
            .or_insert_with_key(|info| {
                Arc::new(Client::new(
                    self.inner.inst.clone(),
                    info,
                    self.inner.options.suppress_health_checks,
                    self.inner.options.metrics_summary,
                ))
            })
            .clone()
    }
}
