//! [`DieselOptions`]: what an instrumentation records, shared by every connection it traces.

use tracewire_shared::Config;

/// What `mysql://` connections report as `db.system.name`.
///
/// diesel cannot tell MySQL from MariaDB without an extra round trip (the server version), and
/// tracewire never adds round trips, so the default is [`MySqlFlavor::MySql`]; say
/// [`MySqlFlavor::MariaDb`] when you talk to MariaDB.
///
/// ```
/// use tracewire_diesel::MySqlFlavor;
/// assert_eq!(MySqlFlavor::default(), MySqlFlavor::MySql);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MySqlFlavor {
    /// `mysql` (the default).
    #[default]
    MySql,
    /// `mariadb`.
    MariaDb,
}

/// Options of the diesel instrumentation: the shared [`Config`] plus diesel-specific choices.
///
/// Defaults: [`Config::default`] (global providers, sanitized text, metrics on), pool health checks
/// recorded and marked `tracewire.health_check = true`, `mysql://` reported as `mysql`.
///
/// ```
/// use tracewire_diesel::{DieselOptions, MySqlFlavor};
/// use tracewire_shared::{Config, QueryText};
///
/// let options = DieselOptions::new()
///     .config(Config::new().with_query_text(QueryText::Sanitized))
///     .suppress_health_checks(true)
///     .mysql_flavor(MySqlFlavor::MariaDb);
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default)]
pub struct DieselOptions {
    pub(crate) config: Config,
    pub(crate) suppress_health_checks: bool,
    pub(crate) mysql_flavor: MySqlFlavor,
    pub(crate) metrics_summary: bool,
}

impl DieselOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared options: providers, propagator, query text, hooks, metrics.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// When `true`, pool health checks (r2d2's checkout ping `SELECT 1`, diesel-async's verified
    /// recycle `SELECT $1` / `SELECT ?`) produce neither a span nor a duration point.
    ///
    /// Default `false`: a health check is a real round trip inside the request that checked the
    /// connection out, so its latency (and a failing ping, the first sign of a dead connection) belongs
    /// in the trace; its span carries `tracewire.health_check = true` for filtering.
    pub fn suppress_health_checks(mut self, suppress: bool) -> Self {
        self.suppress_health_checks = suppress;
        self
    }

    /// What `mysql://` connections report as `db.system.name` (default [`MySqlFlavor::MySql`]).
    pub fn mysql_flavor(mut self, flavor: MySqlFlavor) -> Self {
        self.mysql_flavor = flavor;
        self
    }

    /// Whether `db.client.operation.duration` points carry `db.query.summary` (default `false`).
    ///
    /// The summary needs the query's SQL, which diesel renders only on request (about 0.5 µs, as much
    /// as the rest of the instrumentation). Off, a query whose span is not sampled is never rendered;
    /// no duration point has a summary, sampled or not, so the series stay consistent. On, every query
    /// is rendered, for per-statement duration series.
    pub fn metrics_query_summary(mut self, include: bool) -> Self {
        self.metrics_summary = include;
        self
    }

    /// The shared options.
    pub fn shared_config(&self) -> &Config {
        &self.config
    }
}
