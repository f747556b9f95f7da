//! The per-pool instrumentation shared by the pool, its connections and its transactions.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::metrics::Meter;
use sqlx::Error;
use tracewire_shared::db::{DbClient, DbOperation};
use tracewire_shared::metrics::{PoolMetrics, PoolObservers, Timer};
use tracewire_shared::record::Failure;

use crate::InstrumentedDatabase;

/// Registers the pool's observable gauges on a meter; runs once.
pub(crate) type Observe = Box<dyn FnOnce(&Meter, &str) -> PoolObservers + Send>;

/// One pool's span and metric machinery. Connections and transactions hold an `Arc` of it.
pub(crate) struct Instruments {
    pub(crate) client: DbClient,
    pool_name: String,
    // The meter is resolved at first use, not at construction, so an application may install its
    // global meter provider after building its pools.
    pool: OnceLock<Option<PoolMetrics>>,
    observe: Mutex<Option<Observe>>,
    observers: OnceLock<PoolObservers>,
}

impl fmt::Debug for Instruments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instruments")
            .field("client", &self.client)
            .field("pool_name", &self.pool_name)
            .finish_non_exhaustive()
    }
}

impl Instruments {
    pub(crate) fn new(client: DbClient, pool_name: String, observe: Observe) -> Self {
        Self {
            client,
            pool_name,
            pool: OnceLock::new(),
            observe: Mutex::new(Some(observe)),
            observers: OnceLock::new(),
        }
    }

    /// The pool name (`db.client.connection.pool.name`).
    pub(crate) fn pool_name(&self) -> &str {
        &self.pool_name
    }

    /// The pool instruments, created (and the gauges registered) on first use; `None` when metrics
    /// are off.
    pub(crate) fn pool(&self) -> Option<&PoolMetrics> {
        self.pool
            .get_or_init(|| {
                let inst = self.client.instrumentation();
                if !inst.config().metrics_enabled() {
                    return None;
                }
                let meter = inst.meter();
                let observe = self.observe.lock().ok().and_then(|mut slot| slot.take());
                if let Some(observe) = observe {
                    let _ = self.observers.set(observe(meter, &self.pool_name));
                }
                Some(PoolMetrics::new(meter, self.pool_name.clone()))
            })
            .as_ref()
    }

    /// Whether pool timings are recorded.
    pub(crate) fn timing(&self) -> bool {
        self.pool().is_some()
    }

    /// Records the outcome of obtaining a connection: its wait time, or a timeout.
    pub(crate) fn record_acquire<T>(&self, timer: Timer, result: &Result<T, Error>) {
        let Some(metrics) = self.pool() else { return };
        match result {
            Ok(_) => {
                if let Some(secs) = timer.elapsed_secs() {
                    metrics.wait_time.record(secs, metrics.attributes());
                }
            }
            Err(Error::PoolTimedOut) => metrics.timeouts.add(1, metrics.attributes()),
            Err(_) => {}
        }
    }

    /// Ends `op` from the operation's result, counting a pool timeout among its failures.
    pub(crate) fn finish<DB: InstrumentedDatabase, T>(
        &self,
        op: DbOperation<'_>,
        result: &Result<T, Error>,
        rows: impl FnOnce(&T) -> Option<u64>,
    ) {
        match result {
            Ok(value) => op.end_ok_with_rows(rows(value)),
            Err(error) => self.fail::<DB>(op, error),
        }
    }

    /// Ends `op` as failed with `error`.
    pub(crate) fn fail<DB: InstrumentedDatabase>(&self, op: DbOperation<'_>, error: &Error) {
        if let (Error::PoolTimedOut, Some(metrics)) = (error, self.pool()) {
            metrics.timeouts.add(1, metrics.attributes());
        }
        op.end_error(&failure::<DB>(&self.client, error));
    }
}

/// The `exception.type` of every failure: the error type callers match on.
const EXCEPTION_TYPE: &str = "sqlx::Error";

/// Describes `error` for a span: a server error by its code (SQLSTATE, MySQL error number, SQLite
/// extended code) as both `error.type` and `db.response.status_code`; any other error by a
/// low-cardinality kind. Messages are sanitized, as servers quote the offending values in them.
pub(crate) fn failure<DB: InstrumentedDatabase>(
    client: &DbClient,
    error: &Error,
) -> Failure<'static> {
    if let Error::Database(db) = error {
        let code = DB::status_code(db.as_ref()).map(|c| c.into_owned());
        let message = client.sanitize_message(db.message());
        return match code {
            Some(code) => Failure::new(code.clone(), message).with_db_status_code(code),
            None => Failure::new(tracewire_shared::semconv::ERROR_TYPE_OTHER, message),
        }
        .with_exception_type(EXCEPTION_TYPE);
    }
    Failure::new(
        error_kind(error),
        client.sanitize_message(&error.to_string()),
    )
    .with_exception_type(EXCEPTION_TYPE)
}

/// The `error.type` of an error that did not come from the server.
pub(crate) fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::Configuration(_) => "configuration",
        Error::InvalidArgument(_) => "invalid_argument",
        Error::Database(_) => "database",
        Error::Io(_) => "io",
        Error::Tls(_) => "tls",
        Error::Protocol(_) => "protocol",
        Error::RowNotFound => "row_not_found",
        Error::TypeNotFound { .. } => "type_not_found",
        Error::ColumnIndexOutOfBounds { .. } => "column_index_out_of_bounds",
        Error::ColumnNotFound(_) => "column_not_found",
        Error::ColumnDecode { .. } => "column_decode",
        Error::Encode(_) => "encode",
        Error::Decode(_) => "decode",
        Error::AnyDriverError(_) => "any_driver",
        Error::PoolTimedOut => "pool_timed_out",
        Error::PoolClosed => "pool_closed",
        Error::WorkerCrashed => "worker_crashed",
        Error::InvalidSavePointStatement => "invalid_savepoint_statement",
        Error::BeginFailed => "begin_failed",
        _ => tracewire_shared::semconv::ERROR_TYPE_OTHER,
    }
}

/// A connection checked out of the pool: records `db.client.connection.use_time` when it goes back.
#[derive(Debug)]
pub(crate) struct Lease {
    inst: Arc<Instruments>,
    timer: Timer,
}

impl Lease {
    pub(crate) fn start(inst: Arc<Instruments>) -> Self {
        let timer = Timer::start(inst.timing());
        Self { inst, timer }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let (Some(metrics), Some(secs)) = (self.inst.pool(), self.timer.elapsed_secs()) {
            metrics.use_time.record(secs, metrics.attributes());
        }
    }
}
