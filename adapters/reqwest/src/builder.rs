//! [`OtelMiddlewareBuilder`]: the adapter-specific options on top of the shared [`Config`].

use std::sync::{Arc, OnceLock};

use reqwest::{Request, Response};
use tracewire_shared::config::Domain;
use tracewire_shared::record::OperationSpan;
use tracewire_shared::semconv;
use tracewire_shared::{Config, Instrumentation};

use crate::OtelMiddleware;
use crate::attributes::{CapturedHeader, KnownMethods, ServerAddresses};
use crate::exchange::{Core, ExcludeFn, RequestHook, ResponseHook, SpanNameFn};

/// Builds an [`OtelMiddleware`].
///
/// The defaults: providers and propagator from the global OpenTelemetry setup, every URL traced, no
/// headers captured, span named `{method}` (or `{method} {url.template}`), `http.client.request.duration`
/// recorded and `http.client.active_requests` not.
///
/// ```
/// use tracewire_reqwest::OtelMiddleware;
/// use tracewire_shared::Config;
///
/// let otel = OtelMiddleware::builder()
///     .config(Config::new().with_redacted_query_params(["sig", "token"]))
///     .exclude_path_prefix("/health")
///     .capture_request_headers(["x-request-id"])
///     .capture_response_headers(["content-type"])
///     .active_requests(true)
///     .build();
/// # let _ = otel;
/// ```
#[derive(Default)]
pub struct OtelMiddlewareBuilder {
    config: Config,
    active_requests: bool,
    exclude_prefixes: Vec<String>,
    exclude: Option<Arc<ExcludeFn>>,
    request_headers: Vec<CapturedHeader>,
    response_headers: Vec<CapturedHeader>,
    span_name: Option<Arc<SpanNameFn>>,
    on_request: Option<Arc<RequestHook>>,
    on_response: Option<Arc<ResponseHook>>,
    known_methods: KnownMethods,
}

impl std::fmt::Debug for OtelMiddlewareBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelMiddlewareBuilder")
            .field("config", &self.config)
            .field("exclude_prefixes", &self.exclude_prefixes)
            .finish_non_exhaustive()
    }
}

impl OtelMiddlewareBuilder {
    /// The shared options: providers, propagator, `require_parent`, start/end hooks, opt-in attributes
    /// (`user_agent.original`), the URL redaction list, metrics on/off, stability mode.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Requests whose URL path starts with `prefix` get no span, no injected header and no metric
    /// (health checks, metrics scrapes). May be called several times.
    pub fn exclude_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.exclude_prefixes.push(prefix.into());
        self
    }

    /// Requests for which `predicate` returns `true` are not instrumented at all, like
    /// [`exclude_path_prefix`](Self::exclude_path_prefix). It runs before every request: keep it cheap.
    ///
    /// ```
    /// use tracewire_reqwest::OtelMiddleware;
    ///
    /// let otel = OtelMiddleware::builder()
    ///     .exclude(|req| req.url().host_str() == Some("metadata.internal"))
    ///     .build();
    /// # let _ = otel;
    /// ```
    pub fn exclude(mut self, predicate: impl Fn(&Request) -> bool + Send + Sync + 'static) -> Self {
        self.exclude = Some(Arc::new(predicate));
        self
    }

    /// Records these request headers as `http.request.header.<lower-case name>` (string arrays, one
    /// element per value). Opt-in: headers may carry secrets, so list only safe ones. Names that are
    /// not valid header names are ignored.
    pub fn capture_request_headers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.request_headers.extend(
            names.into_iter().filter_map(|n| {
                CapturedHeader::new(semconv::HTTP_REQUEST_HEADER_PREFIX, n.as_ref())
            }),
        );
        self
    }

    /// Records these response headers as `http.response.header.<lower-case name>`.
    pub fn capture_response_headers<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.response_headers.extend(
            names.into_iter().filter_map(|n| {
                CapturedHeader::new(semconv::HTTP_RESPONSE_HEADER_PREFIX, n.as_ref())
            }),
        );
        self
    }

    /// Names spans with `name(request)` when it returns `Some` (a per-request
    /// [`SpanName`](crate::SpanName) still wins). Return low-cardinality names only.
    ///
    /// ```
    /// use tracewire_reqwest::OtelMiddleware;
    ///
    /// let otel = OtelMiddleware::builder()
    ///     .span_name(|req| req.url().host_str().map(|h| format!("{} {h}", req.method())))
    ///     .build();
    /// # let _ = otel;
    /// ```
    pub fn span_name(
        mut self,
        name: impl Fn(&Request) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.span_name = Some(Arc::new(name));
        self
    }

    /// Runs `hook` on each recording span after it starts, before the request is sent, to add
    /// attributes from the request. To veto spans use [`exclude`](Self::exclude) or the shared
    /// [`Config::with_on_start`] hook.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use tracewire_reqwest::OtelMiddleware;
    ///
    /// let otel = OtelMiddleware::builder()
    ///     .on_request(|req, span| {
    ///         if let Some(tenant) = req.headers().get("x-tenant").and_then(|v| v.to_str().ok()) {
    ///             span.set_attribute(KeyValue::new("app.tenant", tenant.to_owned()));
    ///         }
    ///     })
    ///     .build();
    /// # let _ = otel;
    /// ```
    pub fn on_request(
        mut self,
        hook: impl Fn(&Request, &mut OperationSpan) + Send + Sync + 'static,
    ) -> Self {
        self.on_request = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` on each recording span when the response headers arrive, before the span ends.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use tracewire_reqwest::OtelMiddleware;
    ///
    /// let otel = OtelMiddleware::builder()
    ///     .on_response(|resp, span| {
    ///         if let Some(len) = resp.content_length() {
    ///             span.set_attribute(KeyValue::new("http.response.body.size", len as i64));
    ///         }
    ///     })
    ///     .build();
    /// # let _ = otel;
    /// ```
    pub fn on_response(
        mut self,
        hook: impl Fn(&Response, &mut OperationSpan) + Send + Sync + 'static,
    ) -> Self {
        self.on_response = Some(Arc::new(hook));
        self
    }

    /// Records the opt-in `http.client.active_requests` up-down counter (default off). Also on when the
    /// config opts in to `http.client.active_requests`.
    pub fn active_requests(mut self, enabled: bool) -> Self {
        self.active_requests = enabled;
        self
    }

    /// Replaces the methods recorded as themselves (default: the RFC 9110 methods, `PATCH` and
    /// `QUERY`); others become `_OTHER` with `http.request.method_original`. The semantic conventions'
    /// `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`, as code.
    pub fn known_methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.known_methods = KnownMethods::new(methods);
        self
    }

    /// The middleware.
    pub fn build(self) -> OtelMiddleware {
        let active_requests = self.active_requests
            || self
                .config
                .is_opted_in(semconv::metric::HTTP_CLIENT_ACTIVE_REQUESTS);
        let user_agent = self.config.is_opted_in(semconv::USER_AGENT_ORIGINAL);
        let inst = Instrumentation::new(
            self.config,
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            Domain::Http,
        );
        OtelMiddleware {
            core: Arc::new(Core {
                inst,
                metrics: OnceLock::new(),
                active_requests,
                exclude_prefixes: self.exclude_prefixes,
                exclude: self.exclude,
                request_headers: self.request_headers,
                response_headers: self.response_headers,
                span_name: self.span_name,
                on_request: self.on_request,
                on_response: self.on_response,
                known_methods: self.known_methods,
                user_agent,
                addresses: ServerAddresses::new(),
            }),
        }
    }
}
