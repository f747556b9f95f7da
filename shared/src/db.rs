//! Database operations: the span and the `db.client.operation.duration` point of one SQL statement or
//! Redis command, shared by the sqlx, diesel and redis adapters.
//!
//! A [`DbClient`] stands for one pool or connection: it holds the per-connection attributes (computed
//! once), the statement cache and the instruments. Each operation is a [`DbOperation`]: started with
//! [`DbClient::sql`] or [`DbClient::operation`], ended with [`DbOperation::end_ok`] or
//! [`DbOperation::end_error`] (or in place, for an operation kept in a future's state), or ended as
//! cancelled when dropped.
//!
//! ```
//! use opentelemetry::KeyValue;
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//! use tracewire_shared::db::{DbClient, DbTarget};
//! use tracewire_shared::sanitize::sql::Dialect;
//! use tracewire_shared::{Config, Instrumentation, config::Domain, semconv};
//!
//! let exporter = InMemorySpanExporter::default();
//! let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
//! let config = Config::new().with_tracer_provider(provider).with_metrics(false);
//! let inst = Instrumentation::new(config, "tracewire-example", "0.1.0", Domain::Database);
//! let target = DbTarget::new(semconv::db_system::POSTGRESQL)
//!     .with_namespace("shop")
//!     .with_server("db.internal", Some(5432), 5432);
//! let client = DbClient::new(inst, target).with_sql_dialect(Dialect::Postgres);
//!
//! client.sql("SELECT * FROM orders WHERE id = 42").end_ok();
//!
//! let span = &exporter.get_finished_spans().unwrap()[0];
//! assert_eq!(span.name, "SELECT orders");
//! assert!(span.attributes.contains(&KeyValue::new(semconv::DB_QUERY_TEXT, "SELECT * FROM orders WHERE id = ?")));
//! assert!(span.attributes.contains(&KeyValue::new(semconv::DB_NAMESPACE, "shop")));
//! assert!(span.attributes.contains(&KeyValue::new(semconv::SERVER_ADDRESS, "db.internal")));
//! assert!(!span.attributes.iter().any(|kv| kv.key.as_str() == semconv::SERVER_PORT), "default port left out");
//! ```

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use opentelemetry::{Context, KeyValue, StringValue};

use crate::Instrumentation;
use crate::cache::{DEFAULT_CAPACITY, StatementCache};
use crate::config::QueryText;
use crate::metrics::{DbClientMetrics, Timer};
use crate::record::{Failure, OperationSpan, SpanRequest};
use crate::sanitize::sql::{Dialect, analyze_with_limit};
use crate::sanitize::truncate_on_char_boundary;
use crate::semconv;
use crate::span_name;
use crate::value::shared_str;

/// Where operations go: the attributes every span and metric point of a connection carries.
///
/// ```
/// use tracewire_shared::db::DbTarget;
///
/// let t = DbTarget::new("mysql").with_namespace("test").with_server("127.0.0.1", Some(3307), 3306);
/// assert_eq!(t.system(), "mysql");
/// assert_eq!(t.server_port(), Some(3307));
/// ```
#[derive(Clone, Debug)]
pub struct DbTarget {
    system: &'static str,
    namespace: Option<StringValue>,
    server_address: Option<StringValue>,
    server_port: Option<u16>,
    peer: Option<(StringValue, u16)>,
}

impl DbTarget {
    /// A target of `db.system.name` `system` (see [`semconv::db_system`]).
    pub fn new(system: &'static str) -> Self {
        Self {
            system,
            namespace: None,
            server_address: None,
            server_port: None,
            peer: None,
        }
    }

    /// `db.namespace`: the database name (SQLite: the file path; Redis: the database index).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        let ns = namespace.into();
        self.namespace = (!ns.is_empty()).then(|| shared_str(ns));
        self
    }

    /// `server.address` and, when it is not `default_port`, `server.port`.
    pub fn with_server(
        mut self,
        address: impl Into<String>,
        port: Option<u16>,
        default_port: u16,
    ) -> Self {
        let address = address.into();
        self.server_address = (!address.is_empty()).then(|| shared_str(address));
        self.server_port = port.filter(|p| *p != default_port);
        self
    }

    /// `network.peer.address` and `network.peer.port`, when the adapter knows the socket's peer.
    pub fn with_peer(mut self, address: impl Into<String>, port: u16) -> Self {
        self.peer = Some((shared_str(address.into()), port));
        self
    }

    /// `db.system.name`.
    pub fn system(&self) -> &'static str {
        self.system
    }

    /// `db.namespace`.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_ref().map(StringValue::as_str)
    }

    /// `server.address`.
    pub fn server_address(&self) -> Option<&str> {
        self.server_address.as_ref().map(StringValue::as_str)
    }

    /// `server.port` (absent when it is the system's default).
    pub fn server_port(&self) -> Option<u16> {
        self.server_port
    }

    fn push_common(&self, attrs: &mut Vec<KeyValue>, namespace: Option<&StringValue>) {
        attrs.push(KeyValue::new(semconv::DB_SYSTEM_NAME, self.system));
        if let Some(ns) = namespace.or(self.namespace.as_ref()) {
            attrs.push(KeyValue::new(semconv::DB_NAMESPACE, ns.clone()));
        }
        if let Some(addr) = &self.server_address {
            attrs.push(KeyValue::new(semconv::SERVER_ADDRESS, addr.clone()));
        }
        if let Some(port) = self.server_port {
            attrs.push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
        }
    }
}

/// What one SQL statement records, computed once per distinct statement text and shared through the
/// client's cache: the span name, the text for `db.query.text` (per [`QueryText`]), the summary, the
/// batch size.
///
/// ```
/// # use opentelemetry_sdk::trace::SdkTracerProvider;
/// use tracewire_shared::db::{DbClient, DbTarget};
/// use tracewire_shared::sanitize::sql::Dialect;
/// use tracewire_shared::{Config, Instrumentation, config::Domain};
///
/// let inst = Instrumentation::new(Config::new(), "example", "0", Domain::Database);
/// let client = DbClient::new(inst, DbTarget::new("postgresql")).with_sql_dialect(Dialect::Postgres);
/// let stmt = client.statement("SELECT 1");
/// assert_eq!(stmt.name(), "SELECT");
/// assert!(stmt.is_health_check());
/// ```
#[derive(Debug)]
pub struct Statement {
    sql: Arc<str>,
    name: Cow<'static, str>,
    text: Option<StringValue>,
    summary: Option<StringValue>,
    batch_size: Option<i64>,
    health_check: bool,
    /// The attributes of this statement's successful duration points, built once.
    metric_attributes: Box<[KeyValue]>,
}

impl Statement {
    /// The statement as the application wrote it, literals included: for matching statements in
    /// memory (pairing pipelined events), never for an attribute.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The span name: `db.query.summary`, else `db.system.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `db.query.summary`.
    pub fn summary(&self) -> Option<&str> {
        self.summary.as_ref().map(StringValue::as_str)
    }

    /// Whether this is one of the statements connection pools run to check a connection
    /// (`SELECT 1`, or `SELECT $1` / `SELECT ?` with the 1 bound).
    pub fn is_health_check(&self) -> bool {
        self.health_check
    }
}

fn is_health_check_sql(sql: &str) -> bool {
    let sql = sql.trim().trim_end_matches(';').trim_end();
    ["SELECT 1", "SELECT $1", "SELECT ?"]
        .iter()
        .any(|ping| sql.eq_ignore_ascii_case(ping))
}

/// One pool's or connection's database instrumentation. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DbClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    inst: Instrumentation,
    target: DbTarget,
    dialect: Dialect,
    statements: StatementCache<Statement>,
    /// Duration-point attributes of successful non-SQL operations, by operation name.
    operations: StatementCache<OperationAttributes>,
    metrics: OnceLock<DbClientMetrics>,
    metrics_summary: bool,
    /// `db.system.name`, `db.namespace`, `server.*`: the attributes every duration point carries.
    base_metric_attributes: Box<[KeyValue]>,
}

/// Distinct operation names whose duration attributes are kept prebuilt (Redis has about 240
/// commands; a client sending arbitrary names falls back to building them per operation).
const OPERATION_CAPACITY: usize = 512;

/// The duration-point attributes of a successful non-SQL operation in one namespace.
#[derive(Debug)]
struct OperationAttributes {
    namespace: Option<StringValue>,
    attributes: Box<[KeyValue]>,
}

/// The description of a non-SQL operation (a Redis command), for [`DbClient::operation`].
///
/// ```
/// use tracewire_shared::db::DbCall;
///
/// let call = DbCall::new("GET").with_operation_name("GET").with_batch_size(1);
/// # let _ = call;
/// ```
pub struct DbCall<'a, T = fn() -> String> {
    name: Cow<'static, str>,
    operation_name: Option<Cow<'static, str>>,
    /// Produces the sanitized text; a type parameter rather than a boxed closure so that an unsampled
    /// call allocates nothing for it.
    query_text: Option<T>,
    /// Recorded when 2 or more, so 0 stands for none.
    batch_size: usize,
    /// Boxed rather than a `String` to keep the call within the size the compiler moves inline.
    stored_procedure: Option<Box<str>>,
    namespace: Option<StringValue>,
    parent: Option<&'a Context>,
    health_check: bool,
}

impl<T> std::fmt::Debug for DbCall<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbCall")
            .field("name", &self.name)
            .field("operation_name", &self.operation_name)
            .field("batch_size", &self.batch_size)
            .field("stored_procedure", &self.stored_procedure)
            .field("namespace", &self.namespace)
            .field("health_check", &self.health_check)
            .finish_non_exhaustive()
    }
}

impl<'a> DbCall<'a> {
    /// An operation whose span is called `name`.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            operation_name: None,
            query_text: None,
            batch_size: 0,
            stored_procedure: None,
            namespace: None,
            parent: None,
            health_check: false,
        }
    }
}

impl<'a, T: FnOnce() -> String> DbCall<'a, T> {
    /// A command: an operation whose span name and `db.operation.name` are both `name` (a Redis
    /// command, a pipeline), with `db.query.text` produced by `text` when the span records.
    ///
    /// The same as `DbCall::new(name).with_operation_name(name).with_query_text(text)`, built in
    /// one step: a call is large, and each step of a builder moves it.
    ///
    /// ```
    /// use tracewire_shared::db::DbCall;
    ///
    /// let call = DbCall::command("GET", || "GET key".to_owned()).with_namespace("0");
    /// # let _ = call;
    /// ```
    pub fn command(name: impl Into<Cow<'static, str>>, text: T) -> Self {
        let name = name.into();
        Self {
            operation_name: Some(name.clone()),
            name,
            query_text: Some(text),
            batch_size: 0,
            stored_procedure: None,
            namespace: None,
            parent: None,
            health_check: false,
        }
    }

    /// `db.operation.name`.
    pub fn with_operation_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.operation_name = Some(name.into());
        self
    }

    /// `db.query.text`, produced (already sanitized) only when the span records and the configuration
    /// records text.
    pub fn with_query_text<F: FnOnce() -> String>(self, text: F) -> DbCall<'a, F> {
        DbCall {
            name: self.name,
            operation_name: self.operation_name,
            query_text: Some(text),
            batch_size: self.batch_size,
            stored_procedure: self.stored_procedure,
            namespace: self.namespace,
            parent: self.parent,
            health_check: self.health_check,
        }
    }

    /// `db.operation.batch.size` (recorded when 2 or more).
    pub fn with_batch_size(mut self, size: usize) -> Self {
        self.batch_size = size;
        self
    }

    /// `db.stored_procedure.name`.
    pub fn with_stored_procedure(mut self, name: impl Into<String>) -> Self {
        self.stored_procedure = Some(name.into().into_boxed_str());
        self
    }

    /// Overrides `db.namespace` for this call (after a Redis `SELECT`, say).
    pub fn with_namespace(mut self, namespace: impl Into<StringValue>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Parents the span to `cx` instead of looking the parent up.
    pub fn with_parent(mut self, cx: &'a Context) -> Self {
        self.parent = Some(cx);
        self
    }

    /// Marks the call as a pool health check (`tracewire.health_check = true`).
    pub fn health_check(mut self, yes: bool) -> Self {
        self.health_check = yes;
        self
    }
}

impl DbClient {
    /// Instrumentation for operations against `target`.
    pub fn new(inst: Instrumentation, target: DbTarget) -> Self {
        let mut base = Vec::with_capacity(4);
        target.push_common(&mut base, None);
        Self {
            inner: Arc::new(Inner {
                base_metric_attributes: base.into_boxed_slice(),
                inst,
                target,
                dialect: Dialect::Other,
                statements: StatementCache::new(DEFAULT_CAPACITY),
                operations: StatementCache::new(OPERATION_CAPACITY),
                metrics: OnceLock::new(),
                metrics_summary: true,
            }),
        }
    }

    /// Sets the dialect [`sql`](Self::sql) sanitizes in (default: [`Dialect::Other`]).
    pub fn with_sql_dialect(self, dialect: Dialect) -> Self {
        self.map_inner(|inner| Inner { dialect, ..inner })
    }

    /// Rebuilds the client with `f` applied; the statement cache and instruments start afresh, as they
    /// depend on the settings.
    fn map_inner(self, f: impl FnOnce(Inner) -> Inner) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            inst: shared.inst.clone(),
            target: shared.target.clone(),
            dialect: shared.dialect,
            statements: StatementCache::new(DEFAULT_CAPACITY),
            operations: StatementCache::new(OPERATION_CAPACITY),
            metrics: OnceLock::new(),
            metrics_summary: shared.metrics_summary,
            base_metric_attributes: shared.base_metric_attributes.clone(),
        });
        Self {
            inner: Arc::new(f(Inner {
                statements: StatementCache::new(DEFAULT_CAPACITY),
                operations: StatementCache::new(OPERATION_CAPACITY),
                ..inner
            })),
        }
    }

    /// The instrumentation (configuration, tracer, meter).
    pub fn instrumentation(&self) -> &Instrumentation {
        &self.inner.inst
    }

    /// The target.
    pub fn target(&self) -> &DbTarget {
        &self.inner.target
    }

    /// The SQL dialect.
    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    fn metrics(&self) -> Option<&DbClientMetrics> {
        let inst = &self.inner.inst;
        inst.config().metrics_enabled().then(|| {
            self.inner
                .metrics
                .get_or_init(|| DbClientMetrics::new(inst.meter()))
        })
    }

    /// The analysed statement of `query`, from the cache when present.
    pub fn statement(&self, query: &str) -> Arc<Statement> {
        let config = self.inner.inst.config();
        let (mode, max) = (config.query_text(), config.max_text_len());
        self.inner.statements.get_or_insert_with(query, |q| {
            let analysis = analyze_with_limit(q, self.inner.dialect, max);
            let text = match mode {
                QueryText::Sanitized => Some(shared_str(analysis.text)),
                QueryText::Raw => {
                    let mut raw = q.to_owned();
                    truncate_on_char_boundary(&mut raw, max);
                    Some(shared_str(raw))
                }
                QueryText::Off => None,
            };
            let summary: Option<StringValue> = analysis.summary.map(shared_str);
            let mut metric_attributes = self.inner.base_metric_attributes.to_vec();
            if let Some(summary) = summary.clone().filter(|_| self.inner.metrics_summary) {
                metric_attributes.push(KeyValue::new(semconv::DB_QUERY_SUMMARY, summary));
            }
            Statement {
                metric_attributes: metric_attributes.into_boxed_slice(),
                sql: Arc::from(q),
                health_check: is_health_check_sql(q),
                name: match &summary {
                    Some(summary) => span_name::intern(summary.as_str()),
                    None => Cow::Borrowed(self.inner.target.system),
                },
                text,
                summary,
                batch_size: (analysis.statements >= 2)
                    .then(|| i64::try_from(analysis.statements).unwrap_or(i64::MAX)),
            }
        })
    }

    /// Starts the operation of one SQL statement (or `;`-separated batch): span named by its summary,
    /// sanitized text, `db.operation.batch.size` for batches.
    pub fn sql(&self, query: &str) -> DbOperation<'_> {
        self.sql_with(query, None, false)
    }

    /// [`sql`](Self::sql) with an explicit parent and the health-check mark.
    pub fn sql_with(
        &self,
        query: &str,
        parent: Option<&Context>,
        health_check: bool,
    ) -> DbOperation<'_> {
        self.start_owned(self.statement(query), parent, health_check)
    }

    /// Starts the operation of an already analysed statement (see [`statement`](Self::statement)).
    /// Statements that [are health checks](Statement::is_health_check) are marked as such.
    pub fn start_statement(
        &self,
        stmt: &Arc<Statement>,
        parent: Option<&Context>,
        health_check: bool,
    ) -> DbOperation<'_> {
        self.start_owned(stmt.clone(), parent, health_check)
    }

    fn start_owned(
        &self,
        stmt: Arc<Statement>,
        parent: Option<&Context>,
        health_check: bool,
    ) -> DbOperation<'_> {
        let (request, timer) = self.request(stmt.name.clone(), parent);
        let span = self.inner.inst.start(request, |attrs| {
            self.push_statement(attrs, Some(&stmt), health_check)
        });
        self.operation_from(span, timer, Some(stmt))
    }

    /// Starts an operation whose statement text is expensive to produce (diesel renders its SQL only on
    /// request): the span starts named after `db.system.name`, and `render` runs only if the span
    /// records, after which the span gets the statement's name and attributes. Metric points of such
    /// operations carry no `db.query.summary`, so their series do not depend on sampling. Returns the
    /// statement when it was rendered.
    pub fn start_deferred(
        &self,
        parent: Option<&Context>,
        render: impl FnOnce() -> Option<Arc<Statement>>,
    ) -> (DbOperation<'_>, Option<Arc<Statement>>) {
        let (request, timer) = self.request(self.inner.target.system.into(), parent);
        let mut rendered = None;
        let mut span = self.inner.inst.start(request, |attrs| {
            rendered = render();
            self.push_statement(attrs, rendered.as_deref(), false);
        });
        if let Some(stmt) = &rendered {
            span.update_name(stmt.name.clone());
        }
        (self.operation_from(span, timer, None), rendered)
    }

    /// Whether metric points carry `db.query.summary` (see [`with_metrics_summary`](Self::with_metrics_summary)),
    /// so an adapter knows it must produce the statement even for unsampled operations.
    pub fn metrics_need_summary(&self) -> bool {
        self.inner.metrics_summary && self.inner.inst.config().metrics_enabled()
    }

    /// Whether `db.client.operation.duration` points carry `db.query.summary` (default: yes). Turning
    /// it off lets adapters whose statement text is expensive skip producing it for unsampled
    /// operations, at the price of coarser metric series.
    pub fn with_metrics_summary(self, on: bool) -> Self {
        self.map_inner(|inner| Inner {
            metrics_summary: on,
            ..inner
        })
    }

    fn push_statement(
        &self,
        attrs: &mut Vec<KeyValue>,
        stmt: Option<&Statement>,
        health_check: bool,
    ) {
        let target = &self.inner.target;
        target.push_common(attrs, None);
        if let Some(stmt) = stmt {
            if let Some(text) = &stmt.text {
                attrs.push(KeyValue::new(semconv::DB_QUERY_TEXT, text.clone()));
            }
            if let Some(summary) = &stmt.summary {
                attrs.push(KeyValue::new(semconv::DB_QUERY_SUMMARY, summary.clone()));
            }
            if let Some(size) = stmt.batch_size {
                attrs.push(KeyValue::new(semconv::DB_OPERATION_BATCH_SIZE, size));
            }
        }
        push_peer(target, attrs);
        if health_check || stmt.is_some_and(Statement::is_health_check) {
            attrs.push(KeyValue::new(semconv::TRACEWIRE_HEALTH_CHECK, true));
        }
    }

    /// The span request of one operation, and its timer, whose start is the span's start.
    fn request<'a>(
        &self,
        name: Cow<'static, str>,
        parent: Option<&'a Context>,
    ) -> (SpanRequest<'a>, Timer) {
        let timer = Timer::start(self.inner.inst.config().metrics_enabled());
        let mut request = SpanRequest::client(name);
        if let Some(cx) = parent {
            request = request.with_parent(cx);
        }
        if let Some(at) = timer.started_at() {
            request = request.with_start_time(at);
        }
        (request, timer)
    }

    fn operation_from(
        &self,
        span: OperationSpan,
        timer: Timer,
        statement: Option<Arc<Statement>>,
    ) -> DbOperation<'_> {
        DbOperation {
            span,
            timer,
            client: Cow::Borrowed(self),
            statement,
            operation_name: None,
            namespace: None,
        }
    }

    /// Starts a non-SQL operation (a Redis command).
    // Inlined into the adapter's few call sites, so the call's fields go straight where they are
    // kept instead of through a copy of the call.
    #[inline(always)]
    pub fn operation<T: FnOnce() -> String>(&self, call: DbCall<'_, T>) -> DbOperation<'_> {
        let target = &self.inner.target;
        let config = self.inner.inst.config();
        let (request, timer) = self.request(call.name, call.parent);
        let (operation_name, namespace) = (call.operation_name, call.namespace);
        let (query_text, batch_size, stored_procedure, health_check) = (
            call.query_text,
            call.batch_size,
            call.stored_procedure,
            call.health_check,
        );
        let span = self.inner.inst.start(request, |attrs| {
            target.push_common(attrs, namespace.as_ref());
            if let Some(op) = &operation_name {
                attrs.push(KeyValue::new(
                    semconv::DB_OPERATION_NAME,
                    StringValue::from(op.clone()),
                ));
            }
            if let Some(text) = query_text.filter(|_| config.query_text() != QueryText::Off) {
                let mut text = text();
                truncate_on_char_boundary(&mut text, config.max_text_len());
                attrs.push(KeyValue::new(semconv::DB_QUERY_TEXT, text));
            }
            if batch_size >= 2 {
                attrs.push(KeyValue::new(
                    semconv::DB_OPERATION_BATCH_SIZE,
                    i64::try_from(batch_size).unwrap_or(i64::MAX),
                ));
            }
            if let Some(proc_name) = stored_procedure {
                attrs.push(KeyValue::new(
                    semconv::DB_STORED_PROCEDURE_NAME,
                    String::from(proc_name),
                ));
            }
            push_peer(target, attrs);
            if health_check {
                attrs.push(KeyValue::new(semconv::TRACEWIRE_HEALTH_CHECK, true));
            }
        });
        DbOperation {
            span,
            timer,
            client: Cow::Borrowed(self),
            statement: None,
            operation_name,
            namespace,
        }
    }

    /// Sanitizes a server error message in this client's dialect so it can go into a span: quoted
    /// values and numbers are masked (MySQL's `Duplicate entry 'alice@example.com' for key 'email'`
    /// becomes `Duplicate entry ? for key ?`), and so is the statement excerpt servers quote in syntax
    /// errors (`near '…' at line 1`, `at or near "…"`), whose own quotes would otherwise unbalance the
    /// sanitizer's view and let a literal through.
    pub fn sanitize_message(&self, message: &str) -> String {
        analyze_with_limit(&mask_statement_excerpt(message), self.inner.dialect, 1024).text
    }
}

/// Masks the statement excerpt of a syntax error: MySQL/MariaDB `near '…' at line 1`, PostgreSQL
/// `at or near "…"`, SQLite `near "…": syntax error`. The excerpt runs to the last matching quote (it
/// may contain quotes of its own), or to the end when unterminated.
fn mask_statement_excerpt(message: &str) -> Cow<'_, str> {
    let Some(near) = message.find("near ") else {
        return Cow::Borrowed(message);
    };
    let open = near + "near ".len();
    let quote = match message.as_bytes().get(open) {
        Some(q @ (b'\'' | b'"')) => char::from(*q),
        _ => return Cow::Borrowed(message),
    };
    match message.rfind(quote) {
        Some(close) if close > open => {
            Cow::Owned(format!("{}?{}", &message[..open], &message[close + 1..]))
        }
        _ => Cow::Owned(format!("{}?", &message[..open])),
    }
}

fn push_peer(target: &DbTarget, attrs: &mut Vec<KeyValue>) {
    if let Some((addr, port)) = &target.peer {
        attrs.push(KeyValue::new(semconv::NETWORK_PEER_ADDRESS, addr.clone()));
        attrs.push(KeyValue::new(semconv::NETWORK_PEER_PORT, i64::from(*port)));
    }
}

/// One database operation in flight: its span and its duration measurement.
///
/// Ends once, through [`end_ok`](Self::end_ok), [`end_error`](Self::end_error), their in-place forms
/// ([`end_ok_in_place`](Self::end_ok_in_place), [`end_error_in_place`](Self::end_error_in_place)) or
/// drop (cancelled: the span ends without error and no duration is recorded, as the operation did not
/// complete); whatever comes after the first end does nothing.
///
/// It borrows the [`DbClient`] that started it, which costs nothing per operation; an operation that
/// must outlive that borrow (kept in a connection's state, say) is made independent with
/// [`into_owned`](Self::into_owned).
///
/// ```
/// use tracewire_shared::db::{DbClient, DbOperation, DbTarget};
/// use tracewire_shared::{Config, Instrumentation, config::Domain};
///
/// let inst = Instrumentation::new(Config::new(), "example", "0", Domain::Database);
/// let client = DbClient::new(inst, DbTarget::new("sqlite"));
/// client.sql("SELECT name FROM users WHERE id = ?").end_ok();
///
/// let pending: DbOperation<'static> = client.sql("DELETE FROM sessions").into_owned();
/// drop(client);
/// pending.end_ok();
/// ```
#[derive(Debug)]
pub struct DbOperation<'c> {
    span: OperationSpan,
    timer: Timer,
    /// Borrowed while the operation runs under the caller's client; owned once detached.
    client: Cow<'c, DbClient>,
    /// The statement, whose prebuilt metric attributes serve the common case.
    statement: Option<Arc<Statement>>,
    operation_name: Option<Cow<'static, str>>,
    namespace: Option<StringValue>,
}

impl DbOperation<'_> {
    /// The operation without its borrow of the client (which it then holds a handle to), for when it
    /// must outlive the call that started it.
    pub fn into_owned(self) -> DbOperation<'static> {
        DbOperation {
            span: self.span,
            timer: self.timer,
            client: Cow::Owned(self.client.into_owned()),
            statement: self.statement,
            operation_name: self.operation_name,
            namespace: self.namespace,
        }
    }

    /// The span, to add adapter-specific attributes.
    pub fn span_mut(&mut self) -> &mut OperationSpan {
        &mut self.span
    }

    /// Whether the span records.
    pub fn is_recording(&self) -> bool {
        self.span.is_recording()
    }

    /// Ends the operation as a success.
    #[inline]
    pub fn end_ok(mut self) {
        self.end_ok_in_place(None);
    }

    /// Ends the operation as a success that returned `rows` rows: `db.response.returned_rows` and the
    /// `db.client.response.returned_rows` histogram, when opted in.
    #[inline]
    pub fn end_ok_with_rows(mut self, rows: Option<u64>) {
        self.end_ok_in_place(rows);
    }

    /// Ends the operation as a failure.
    #[inline]
    pub fn end_error(mut self, failure: &Failure<'_>) {
        self.end_error_in_place(failure);
    }

    /// [`end_ok_with_rows`](Self::end_ok_with_rows) where the operation lies, for an operation kept
    /// in a future's state: an operation is a few hundred bytes, and each move out of such a state
    /// copies it. Once the operation has ended, later ends do nothing and its drop records nothing.
    ///
    /// ```
    /// use tracewire_shared::db::{DbClient, DbTarget};
    /// use tracewire_shared::{Config, Instrumentation, config::Domain};
    ///
    /// let inst = Instrumentation::new(Config::new(), "example", "0", Domain::Database);
    /// let client = DbClient::new(inst, DbTarget::new("redis"));
    /// let mut op = client.sql("PING");
    /// op.end_ok_in_place(None);
    /// op.end_ok_in_place(None); // already ended: nothing more is recorded
    /// ```
    pub fn end_ok_in_place(&mut self, rows: Option<u64>) {
        if self.span.is_ended() {
            return;
        }
        let rows = rows.filter(|_| {
            self.client
                .inner
                .inst
                .config()
                .is_opted_in(semconv::DB_RESPONSE_RETURNED_ROWS)
        });
        if let Some(rows) = rows {
            self.span.set_attribute(KeyValue::new(
                semconv::DB_RESPONSE_RETURNED_ROWS,
                i64::try_from(rows).unwrap_or(i64::MAX),
            ));
        }
        let end = self.timer.now();
        self.record_metrics(end, None, rows);
        self.span.end_ok_in_place(end);
    }

    /// [`end_error`](Self::end_error) where the operation lies (see
    /// [`end_ok_in_place`](Self::end_ok_in_place)).
    ///
    /// ```
    /// use tracewire_shared::db::{DbCall, DbClient, DbTarget};
    /// use tracewire_shared::record::Failure;
    /// use tracewire_shared::{Config, Instrumentation, config::Domain};
    ///
    /// let inst = Instrumentation::new(Config::new(), "example", "0", Domain::Database);
    /// let client = DbClient::new(inst, DbTarget::new("redis"));
    /// let mut op = client.operation(DbCall::command("INCR", || "INCR k".to_owned()));
    /// op.end_error_in_place(&Failure::new("WRONGTYPE", "").with_db_status_code("WRONGTYPE"));
    /// drop(op); // ended already: not recorded as cancelled
    /// ```
    pub fn end_error_in_place(&mut self, failure: &Failure<'_>) {
        if self.span.is_ended() {
            return;
        }
        let end = self.timer.now();
        self.record_metrics(end, Some(failure), None);
        self.span.end_error_in_place(failure, end);
    }

    fn record_metrics(
        &self,
        end: Option<SystemTime>,
        failure: Option<&Failure<'_>>,
        rows: Option<u64>,
    ) {
        let Some(seconds) = self.timer.elapsed_secs_until(end) else {
            return;
        };
        let Some(metrics) = self.client.metrics() else {
            return;
        };
        let prebuilt: &[KeyValue] = match &self.statement {
            Some(stmt) => &stmt.metric_attributes,
            None => &self.client.inner.base_metric_attributes,
        };
        // A successful SQL statement, the common case, records with attributes built once.
        if failure.is_none() && self.operation_name.is_none() && self.namespace.is_none() {
            metrics.operation_duration.record(seconds, prebuilt);
            if let Some(rows) = rows {
                metrics.returned_rows.record(rows, prebuilt);
            }
            return;
        }
        // So does a successful command in the namespace its name was first seen in; a command in
        // another namespace builds its attributes, as every failure does.
        if let (None, Some(op)) = (failure, &self.operation_name) {
            // Read in place: a hit in this thread's memory takes no reference count.
            let recorded = self.client.inner.operations.with_or_insert(
                op,
                |_| OperationAttributes {
                    namespace: self.namespace.clone(),
                    attributes: self.metric_attributes(prebuilt, None).into_boxed_slice(),
                },
                |cached| {
                    if cached.namespace != self.namespace {
                        return false;
                    }
                    metrics
                        .operation_duration
                        .record(seconds, &cached.attributes);
                    if let Some(rows) = rows {
                        metrics.returned_rows.record(rows, &cached.attributes);
                    }
                    true
                },
            );
            if recorded {
                return;
            }
        }
        let attrs = self.metric_attributes(prebuilt, failure);
        metrics.operation_duration.record(seconds, &attrs);
        if let Some(rows) = rows {
            metrics.returned_rows.record(rows, &attrs);
        }
    }

    fn metric_attributes(
        &self,
        prebuilt: &[KeyValue],
        failure: Option<&Failure<'_>>,
    ) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(prebuilt.len() + 3);
        if self.namespace.is_some() {
            self.client
                .inner
                .target
                .push_common(&mut attrs, self.namespace.as_ref());
        } else {
            attrs.extend_from_slice(prebuilt);
        }
        if let Some(op) = &self.operation_name {
            attrs.push(KeyValue::new(
                semconv::DB_OPERATION_NAME,
                StringValue::from(op.clone()),
            ));
        }
        if let Some(f) = failure {
            attrs.push(KeyValue::new(
                semconv::ERROR_TYPE,
                f.error_type().to_owned(),
            ));
            if let Some(code) = f.db_status_code() {
                attrs.push(KeyValue::new(
                    semconv::DB_RESPONSE_STATUS_CODE,
                    code.to_owned(),
                ));
            }
        }
        attrs
    }
}

#[cfg(test)]
mod tests {
    use super::mask_statement_excerpt;

    #[test]
    fn statement_excerpts_are_masked() {
        let cases = [
            (
                "You have an error in your SQL syntax; check the manual for the right syntax to use near 'x = 'secret' hunter2' at line 1",
                "You have an error in your SQL syntax; check the manual for the right syntax to use near ? at line 1",
            ),
            (
                "syntax error at or near \"'secret'\"",
                "syntax error at or near ?",
            ),
            ("near \"secret\": syntax error", "near ?: syntax error"),
            ("near 'unterminated", "near ?"),
            ("no excerpt here", "no excerpt here"),
            ("near the end", "near the end"),
        ];
        for (message, masked) in cases {
            assert_eq!(mask_statement_excerpt(message), masked, "{message}");
        }
    }
}
