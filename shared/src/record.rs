//! One operation, one span: starting it from a parent, finishing it as a success or a failure, and
//! ending it at drop when the operation is abandoned.
//!
//! Adapters start an [`OperationSpan`] through [`Instrumentation::start`](crate::Instrumentation::start)
//! and end it with [`OperationSpan::end_ok`] or [`OperationSpan::end_error`] (or their `_in_place`
//! forms, for a span kept in a future's state). A span that is dropped without any of them (a future
//! cancelled mid-query, a stream dropped half-read) ends at drop with `tracewire.cancelled = true` and
//! no error status: the caller chose to stop, nothing failed.
//!
//! When the sampler drops a span, nothing beyond the sampling check happens: the attribute closure is
//! not called and no attribute is built. The exception is a guess gone wrong: when the previous span of
//! the same kind (a root, or a child of a sampled parent) recorded, the attributes are built up front
//! (where samplers see them, and the SDK takes them without copying), and a sampler that then says no
//! has cost one set of attributes.
//!
//! ```
//! use opentelemetry::KeyValue;
//! use opentelemetry::trace::SpanKind;
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//! use tracewire_shared::{Config, Instrumentation, config::Domain, record::{Failure, SpanRequest}, semconv};
//!
//! let exporter = InMemorySpanExporter::default();
//! let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
//! let inst = Instrumentation::new(Config::new().with_tracer_provider(provider), "my-adapter", "0.1.0", Domain::Database);
//!
//! let span = inst.start(SpanRequest::client("SELECT users"), |attrs| {
//!     attrs.push(KeyValue::new(semconv::DB_SYSTEM_NAME, semconv::db_system::POSTGRESQL));
//! });
//! span.end_error(&Failure::new("23505", "duplicate key value").with_db_status_code("23505"));
//!
//! let spans = exporter.get_finished_spans().unwrap();
//! assert_eq!(spans[0].name, "SELECT users");
//! assert_eq!(spans[0].span_kind, SpanKind::Client);
//! assert!(spans[0].attributes.contains(&KeyValue::new(semconv::ERROR_TYPE, "23505")));
//! ```

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::propagation::Injector;
use opentelemetry::trace::{Link, SpanContext, SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue, Value};

use crate::config::{Domain, EndHook, StabilityMode};
use crate::propagation::Propagator;
use crate::semconv;
use crate::tracer::StartedSpan;

/// What to start: kind, name, parent and links.
///
/// ```
/// use opentelemetry::trace::SpanKind;
/// use tracewire_shared::record::SpanRequest;
///
/// let request = SpanRequest::new(SpanKind::Producer, "publish orders");
/// assert_eq!(request.name(), "publish orders");
/// ```
#[derive(Debug)]
pub struct SpanRequest<'a> {
    pub(crate) kind: SpanKind,
    pub(crate) name: Cow<'static, str>,
    pub(crate) parent: Option<&'a Context>,
    pub(crate) links: Vec<Link>,
    pub(crate) start_time: Option<SystemTime>,
}

impl<'a> SpanRequest<'a> {
    /// A span of `kind` named `name`, parented by [`context::parent`](crate::context::parent).
    pub fn new(kind: SpanKind, name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            name: name.into(),
            parent: None,
            links: Vec::new(),
            start_time: None,
        }
    }

    /// A CLIENT span named `name`.
    pub fn client(name: impl Into<Cow<'static, str>>) -> Self {
        Self::new(SpanKind::Client, name)
    }

    /// Parents the span to `parent` instead of looking the parent up.
    pub fn with_parent(mut self, parent: &'a Context) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Links the span to `span_context` (ignored when the context is invalid).
    pub fn with_link(mut self, span_context: SpanContext, attributes: Vec<KeyValue>) -> Self {
        if span_context.is_valid() {
            self.links.push(Link::new(span_context, attributes, 0));
        }
        self
    }

    /// The span's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts the span at `at` instead of reading the clock (see [`Timer`](crate::metrics::Timer)):
    /// with [`OperationSpan::end_ok_at`], one pair of clock reads serves both the span and a
    /// duration metric.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    /// use tracewire_shared::{Config, Instrumentation, config::Domain, metrics::Timer, record::SpanRequest};
    ///
    /// let exporter = InMemorySpanExporter::default();
    /// let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    /// let inst = Instrumentation::new(Config::new().with_tracer_provider(provider), "my-adapter", "0.1.0", Domain::Database);
    ///
    /// let timer = Timer::start(true);
    /// let request = SpanRequest::client("GET").with_start_time(timer.started_at().unwrap());
    /// let span = inst.start(request, |_| {});
    /// let end = timer.now();
    /// let elapsed = timer.elapsed_until(end.unwrap()).unwrap();
    /// span.end_ok_at(end);
    ///
    /// let spans = exporter.get_finished_spans().unwrap();
    /// assert_eq!(spans[0].end_time.duration_since(spans[0].start_time).unwrap(), elapsed);
    /// ```
    pub fn with_start_time(mut self, at: SystemTime) -> Self {
        self.start_time = Some(at);
        self
    }
}

/// Whether a span starts, as decided by a start hook.
///
/// ```
/// use tracewire_shared::record::Decision;
/// assert_ne!(Decision::Record, Decision::Skip);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start the span.
    Record,
    /// Start no span for this operation (metrics are still recorded).
    Skip,
}

/// A span about to start, as a start hook sees it: it may rename it and edit its attributes.
///
/// ```
/// use opentelemetry::KeyValue;
/// use tracewire_shared::{Config, record::Decision};
///
/// Config::new().with_on_start(|span| {
///     span.set_name(format!("db {}", span.name()));
///     span.attributes_mut().push(KeyValue::new("tenant", "acme"));
///     Decision::Record
/// });
/// ```
#[derive(Debug)]
pub struct StartingSpan<'a> {
    name: &'a mut Cow<'static, str>,
    kind: &'a SpanKind,
    attributes: &'a mut Vec<KeyValue>,
}

impl<'a> StartingSpan<'a> {
    pub(crate) fn new(
        name: &'a mut Cow<'static, str>,
        kind: &'a SpanKind,
        attributes: &'a mut Vec<KeyValue>,
    ) -> Self {
        Self {
            name,
            kind,
            attributes,
        }
    }

    /// The span's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Renames the span.
    pub fn set_name(&mut self, name: impl Into<Cow<'static, str>>) {
        *self.name = name.into();
    }

    /// The span's kind.
    pub fn kind(&self) -> &SpanKind {
        self.kind
    }

    /// The creation-time attributes.
    pub fn attributes(&self) -> &[KeyValue] {
        self.attributes
    }

    /// The creation-time attributes, to add to or edit.
    pub fn attributes_mut(&mut self) -> &mut Vec<KeyValue> {
        self.attributes
    }
}

/// A span about to end, as an end hook sees it.
///
/// A started span cannot be withdrawn through the OpenTelemetry API, so an end hook enriches; to drop
/// spans, veto them in the start hook.
///
/// ```
/// use opentelemetry::KeyValue;
/// use tracewire_shared::Config;
///
/// Config::new().with_on_end(|span| {
///     if span.is_cancelled() {
///         span.set_attribute(KeyValue::new("app.abandoned", true));
///     }
/// });
/// ```
pub struct EndingSpan<'a> {
    span: &'a mut OperationSpan,
    error_type: Option<&'a str>,
    cancelled: bool,
}

impl EndingSpan<'_> {
    /// `error.type` of a failed operation, `None` on success.
    pub fn error_type(&self) -> Option<&str> {
        self.error_type
    }

    /// Whether the operation was abandoned (dropped before completing).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// Adds an attribute to the span.
    pub fn set_attribute(&mut self, attribute: KeyValue) {
        self.span.set_attribute(attribute);
    }
}

/// How an operation failed: recorded as `error.type`, an error status, optionally
/// `db.response.status_code`, and an `exception` event.
///
/// ```
/// use tracewire_shared::record::Failure;
///
/// let f = Failure::new("WRONGTYPE", "Operation against a key holding the wrong kind of value")
///     .with_db_status_code("WRONGTYPE")
///     .with_exception_type("redis::RedisError");
/// assert_eq!(f.error_type(), "WRONGTYPE");
/// ```
#[derive(Clone, Debug)]
pub struct Failure<'a> {
    error_type: Cow<'a, str>,
    message: Cow<'a, str>,
    db_status_code: Option<Cow<'a, str>>,
    exception_type: Option<Cow<'a, str>>,
}

/// Longest status description kept, in bytes.
const MAX_DESCRIPTION_LEN: usize = 256;
/// Longest `exception.message` kept, in bytes.
const MAX_EXCEPTION_MESSAGE_LEN: usize = 1024;

impl<'a> Failure<'a> {
    /// A failure of low-cardinality kind `error_type` with a human-readable `message`. The message
    /// must already be free of secrets (adapters sanitize database messages first).
    pub fn new(error_type: impl Into<Cow<'a, str>>, message: impl Into<Cow<'a, str>>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
            db_status_code: None,
            exception_type: None,
        }
    }

    /// Records `db.response.status_code` (SQLSTATE, MySQL error number, Redis error prefix).
    pub fn with_db_status_code(mut self, code: impl Into<Cow<'a, str>>) -> Self {
        self.db_status_code = Some(code.into());
        self
    }

    /// The `exception.type` of the event (default: the error type).
    pub fn with_exception_type(mut self, exception_type: impl Into<Cow<'a, str>>) -> Self {
        self.exception_type = Some(exception_type.into());
        self
    }

    /// `error.type`.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `db.response.status_code`, if any.
    pub fn db_status_code(&self) -> Option<&str> {
        self.db_status_code.as_deref()
    }
}

fn bounded(text: &str, max: usize) -> String {
    let mut s = text.to_owned();
    crate::sanitize::truncate_on_char_boundary(&mut s, max);
    s
}

/// The span of one client operation. Ends exactly once: through `end_ok`, `end_error` (by value or
/// in place), or drop; whatever comes after the first end does nothing.
///
/// Obtained from [`Instrumentation::start`](crate::Instrumentation::start).
pub struct OperationSpan {
    span: StartedSpan,
    parent: Context,
    dup: Option<Domain>,
    on_end: Option<Arc<EndHook>>,
    ended: bool,
}

impl std::fmt::Debug for OperationSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationSpan")
            .field("span_context", &self.span_context())
            .field("recording", &self.is_recording())
            .finish()
    }
}

pub(crate) fn push_duplicated(attrs: &mut Vec<KeyValue>, domain: Domain) {
    let len = attrs.len();
    for i in 0..len {
        if let Some(legacy) = legacy_of(&attrs[i], domain) {
            attrs.push(legacy);
        }
    }
}

fn legacy_of(kv: &KeyValue, domain: Domain) -> Option<KeyValue> {
    let key = kv.key.as_str();
    let old = match domain {
        Domain::Database => semconv::legacy::database(key),
        Domain::Http => semconv::legacy::http(key),
        Domain::Messaging => semconv::legacy::messaging(key),
    }?;
    let value = match (&kv.value, domain) {
        (Value::String(s), Domain::Messaging) => semconv::legacy::messaging_value(key, s.as_str())
            .map_or_else(|| kv.value.clone(), Value::from),
        _ => kv.value.clone(),
    };
    Some(KeyValue::new(old, value))
}

impl OperationSpan {
    pub(crate) fn new(
        span: StartedSpan,
        parent: Context,
        dup: Option<Domain>,
        on_end: Option<Arc<EndHook>>,
    ) -> Self {
        Self {
            span,
            parent,
            dup,
            on_end,
            ended: false,
        }
    }

    pub(crate) fn dup_mode(domain: Domain, mode: StabilityMode) -> Option<Domain> {
        (mode == StabilityMode::Duplicate).then_some(domain)
    }

    /// A span that records nothing (vetoed, or no parent while one is required); its
    /// [`context`](Self::context) is the parent's.
    pub fn disabled(parent: Context) -> Self {
        Self::new(StartedSpan::Disabled, parent, None, None)
    }

    /// Whether the span records (sampled, not vetoed). Adapters skip building attributes otherwise.
    pub fn is_recording(&self) -> bool {
        self.span.is_recording()
    }

    /// The span's context, `None` when no span was started.
    pub fn span_context(&self) -> Option<&SpanContext> {
        self.span.span_context()
    }

    /// A context holding this span, for injecting into outgoing messages and for parenting work done on
    /// the operation's behalf. Carries the span context even when the span is not sampled, so
    /// downstream services see the sampling decision.
    pub fn context(&self) -> Context {
        match self.span_context() {
            Some(sc) if sc.is_valid() => self.parent.with_remote_span_context(sc.clone()),
            _ => self.parent.clone(),
        }
    }

    /// Injects [`context`](Self::context) into outgoing HTTP headers through `propagator`. With
    /// [`W3cTraceContext`](crate::propagation::W3cTraceContext) the headers are written from the span
    /// context directly, without building that context.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use tracewire_shared::propagation::{Propagator, W3cTraceContext};
    /// use tracewire_shared::{Config, Instrumentation, config::Domain, record::SpanRequest};
    ///
    /// let provider = SdkTracerProvider::builder().build();
    /// let inst = Instrumentation::new(Config::new().with_tracer_provider(provider), "example", "0", Domain::Http);
    /// let span = inst.start(SpanRequest::client("GET"), |_| {});
    /// let mut headers = HeaderMap::new();
    /// span.inject_headers(&Propagator::new(W3cTraceContext::new()), &mut headers);
    /// assert!(headers["traceparent"].to_str().unwrap().ends_with("-01"));
    /// span.end_ok();
    /// ```
    pub fn inject_headers(&self, propagator: &Propagator, headers: &mut http::HeaderMap) {
        match self.span_context().filter(|sc| sc.is_valid()) {
            Some(sc) => propagator.inject_span_headers(sc, || self.context(), headers),
            None => propagator.inject_headers(&self.parent, headers),
        }
    }

    /// Injects [`context`](Self::context) into any carrier through `propagator` (message headers, say);
    /// with [`W3cTraceContext`](crate::propagation::W3cTraceContext), from the span context directly.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use tracewire_shared::propagation::{Propagator, W3cTraceContext};
    /// use tracewire_shared::{Config, Instrumentation, config::Domain, record::SpanRequest};
    ///
    /// let provider = SdkTracerProvider::builder().build();
    /// let inst = Instrumentation::new(Config::new().with_tracer_provider(provider), "example", "0", Domain::Messaging);
    /// let span = inst.start(SpanRequest::client("publish jobs"), |_| {});
    /// let mut carrier = HashMap::new();
    /// span.inject(&Propagator::new(W3cTraceContext::new()), &mut carrier);
    /// assert_eq!(carrier["traceparent"].len(), 55);
    /// span.end_ok();
    /// ```
    pub fn inject(&self, propagator: &Propagator, injector: &mut dyn Injector) {
        match self.span_context().filter(|sc| sc.is_valid()) {
            Some(sc) => propagator.inject_span(sc, || self.context(), injector),
            None => propagator.inject(&self.parent, injector),
        }
    }

    /// Sets an attribute (and its legacy twin under a `/dup` stability mode). No-op when not recording.
    pub fn set_attribute(&mut self, attribute: KeyValue) {
        let Some(span) = self.span.recording() else {
            return;
        };
        if let Some(legacy) = self.dup.and_then(|domain| legacy_of(&attribute, domain)) {
            span.set_attribute(legacy);
        }
        span.set_attribute(attribute);
    }

    /// Sets several attributes; the closure runs only when the span records.
    pub fn set_attributes_with(&mut self, build: impl FnOnce(&mut Vec<KeyValue>)) {
        if !self.is_recording() {
            return;
        }
        let mut attrs = Vec::new();
        build(&mut attrs);
        for kv in attrs {
            self.set_attribute(kv);
        }
    }

    /// Links the span to `span_context` after it started, for links learned only from the response
    /// (a message pulled with `basic.get` names its creation context). No-op when not recording or when
    /// the context is invalid.
    pub fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        if let Some(span) = self.span.recording()
            && span_context.is_valid()
        {
            span.add_link(span_context, attributes);
        }
    }

    /// Adds an event. No-op when not recording.
    pub fn add_event(&mut self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        if let Some(span) = self.span.recording() {
            span.add_event_with_timestamp(name.into(), opentelemetry::time::now(), attributes);
        }
    }

    /// Renames the span.
    pub fn update_name(&mut self, name: impl Into<Cow<'static, str>>) {
        if let Some(span) = self.span.recording() {
            span.update_name(name.into());
        }
    }

    /// Ends the span as a success.
    pub fn end_ok(self) {
        self.end_ok_at(None);
    }

    /// [`end_ok`](Self::end_ok) at `at` (the current time when `None`): an operation that read the
    /// clock for its duration metric ends its span at the same instant.
    pub fn end_ok_at(mut self, at: Option<SystemTime>) {
        self.end_ok_in_place(at);
    }

    /// Whether the span has ended (through an in-place end).
    pub(crate) fn is_ended(&self) -> bool {
        self.ended
    }

    /// [`end_ok_at`](Self::end_ok_at) where the span lies, for an owner that keeps it in a future's
    /// state and would copy it by moving it out. Once ended, later ends do nothing and the drop
    /// records nothing more.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    /// use tracewire_shared::{Config, Instrumentation, config::Domain, record::SpanRequest};
    ///
    /// let exporter = InMemorySpanExporter::default();
    /// let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    /// let inst = Instrumentation::new(Config::new().with_tracer_provider(provider), "example", "0", Domain::Http);
    /// let mut span = inst.start(SpanRequest::client("GET"), |_| {});
    /// span.end_ok_in_place(None);
    /// span.end_ok_in_place(None);
    /// drop(span);
    /// assert_eq!(exporter.get_finished_spans().unwrap().len(), 1);
    /// ```
    pub fn end_ok_in_place(&mut self, at: Option<SystemTime>) {
        self.finish(None, false, at);
    }

    /// Ends the span as a failure.
    pub fn end_error(self, failure: &Failure<'_>) {
        self.end_error_at(failure, None);
    }

    /// [`end_error`](Self::end_error) at `at` (the current time when `None`).
    pub fn end_error_at(mut self, failure: &Failure<'_>, at: Option<SystemTime>) {
        self.end_error_in_place(failure, at);
    }

    /// [`end_error_at`](Self::end_error_at) where the span lies (see
    /// [`end_ok_in_place`](Self::end_ok_in_place)).
    ///
    /// ```
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    /// use tracewire_shared::record::{Failure, SpanRequest};
    /// use tracewire_shared::{Config, Instrumentation, config::Domain};
    ///
    /// let exporter = InMemorySpanExporter::default();
    /// let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    /// let inst = Instrumentation::new(Config::new().with_tracer_provider(provider), "example", "0", Domain::Http);
    /// let mut span = inst.start(SpanRequest::client("GET"), |_| {});
    /// span.end_error_in_place(&Failure::new("timeout", "no answer"), None);
    /// span.end_ok_in_place(None); // ended already
    /// let spans = exporter.get_finished_spans().unwrap();
    /// assert!(matches!(spans[0].status, opentelemetry::trace::Status::Error { .. }));
    /// ```
    pub fn end_error_in_place(&mut self, failure: &Failure<'_>, at: Option<SystemTime>) {
        if self.ended {
            return;
        }
        if self.is_recording() {
            self.set_attribute(KeyValue::new(
                semconv::ERROR_TYPE,
                failure.error_type.to_string(),
            ));
            if let Some(code) = &failure.db_status_code {
                self.set_attribute(KeyValue::new(
                    semconv::DB_RESPONSE_STATUS_CODE,
                    code.to_string(),
                ));
            }
            let exception_type = failure
                .exception_type
                .as_deref()
                .unwrap_or(&failure.error_type);
            self.add_event(
                "exception",
                vec![
                    KeyValue::new(semconv::EXCEPTION_TYPE, exception_type.to_owned()),
                    KeyValue::new(
                        semconv::EXCEPTION_MESSAGE,
                        bounded(&failure.message, MAX_EXCEPTION_MESSAGE_LEN),
                    ),
                ],
            );
            let description = if failure.message.is_empty() {
                failure.error_type.as_ref()
            } else {
                failure.message.as_ref()
            };
            if let Some(span) = self.span.recording() {
                span.set_status(Status::error(bounded(description, MAX_DESCRIPTION_LEN)));
            }
        }
        self.finish(Some(&failure.error_type), false, at);
    }

    /// Ends the span from a result: `Ok` as a success, `Err` through `classify`.
    pub fn end_result<T, E>(self, result: &Result<T, E>, classify: impl FnOnce(&E) -> Failure<'_>) {
        match result {
            Ok(_) => self.end_ok(),
            Err(e) => self.end_error(&classify(e)),
        }
    }

    fn finish(&mut self, error_type: Option<&str>, cancelled: bool, at: Option<SystemTime>) {
        if self.ended {
            return;
        }
        self.ended = true;
        if cancelled && self.is_recording() {
            self.set_attribute(KeyValue::new(semconv::TRACEWIRE_CANCELLED, true));
        }
        if let Some(hook) = self.on_end.clone().filter(|_| self.is_recording()) {
            hook(&mut EndingSpan {
                span: self,
                error_type,
                cancelled,
            });
        }
        self.span.end(at);
    }
}

impl Drop for OperationSpan {
    fn drop(&mut self) {
        self.finish(None, true, None);
    }
}
