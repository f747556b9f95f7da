//! One instrumented request: start the span, inject the context, finish with the outcome.
//!
//! Both ways in (the middleware and the `reqwest::RequestBuilder` extension) go through here, so they
//! produce the same span and the same metrics.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use opentelemetry::metrics::UpDownCounter;
use opentelemetry::{Context, KeyValue, StringValue};
use reqwest::{Request, Response};
use tracewire_shared::Instrumentation;
use tracewire_shared::metrics::{HttpClientMetrics, Timer};
use tracewire_shared::record::{Failure, OperationSpan, SpanRequest};
use tracewire_shared::sanitize::url::redact_with;
use tracewire_shared::semconv;
use url::Url;

use crate::attributes::{
    CapturedHeader, KnownMethods, MethodName, ServerAddresses, protocol_version, server_port,
};
use crate::error::TransportError;
use crate::point::{self, PointBase};

pub(crate) type ExcludeFn = dyn Fn(&Request) -> bool + Send + Sync;
pub(crate) type SpanNameFn = dyn Fn(&Request) -> Option<String> + Send + Sync;
pub(crate) type RequestHook = dyn Fn(&Request, &mut OperationSpan) + Send + Sync;
pub(crate) type ResponseHook = dyn Fn(&Response, &mut OperationSpan) + Send + Sync;

/// Everything an [`OtelMiddleware`](crate::OtelMiddleware) knows, shared by its clones.
pub(crate) struct Core {
    pub(crate) inst: Instrumentation,
    pub(crate) metrics: OnceLock<HttpClientMetrics>,
    pub(crate) active_requests: bool,
    pub(crate) exclude_prefixes: Vec<String>,
    pub(crate) exclude: Option<Arc<ExcludeFn>>,
    pub(crate) request_headers: Vec<CapturedHeader>,
    pub(crate) response_headers: Vec<CapturedHeader>,
    pub(crate) span_name: Option<Arc<SpanNameFn>>,
    pub(crate) on_request: Option<Arc<RequestHook>>,
    pub(crate) on_response: Option<Arc<ResponseHook>>,
    pub(crate) known_methods: KnownMethods,
    pub(crate) user_agent: bool,
    pub(crate) addresses: ServerAddresses,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelMiddleware")
            .field("config", self.inst.config())
            .field("active_requests", &self.active_requests)
            .field("exclude_prefixes", &self.exclude_prefixes)
            .field("exclude", &self.exclude.is_some())
            .field("request_headers", &self.request_headers)
            .field("response_headers", &self.response_headers)
            .field("span_name", &self.span_name.is_some())
            .field("on_request", &self.on_request.is_some())
            .field("on_response", &self.on_response.is_some())
            .field("known_methods", &self.known_methods)
            .finish()
    }
}

/// What the caller said about one request.
#[derive(Default)]
pub(crate) struct RequestOptions<'a> {
    pub(crate) template: Option<&'a Cow<'static, str>>,
    pub(crate) span_name: Option<&'a Cow<'static, str>>,
    pub(crate) resend_count: Option<u32>,
    pub(crate) parent: Option<&'a Context>,
}

/// Decrements `http.client.active_requests` however the request ends (even when dropped).
struct ActiveGuard {
    counter: UpDownCounter<i64>,
    attributes: Vec<KeyValue>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.counter.add(-1, &self.attributes);
    }
}

/// A request on its way; finish it with the outcome, or drop it (the span ends as cancelled and no
/// duration is recorded).
pub(crate) struct InFlight {
    core: Arc<Core>,
    span: OperationSpan,
    timer: Timer,
    /// What the duration point depends on, known at start; `None` when metrics are off.
    point: Option<PointBase>,
    /// The raw URL, kept only while recording and only when its `url.full` differs from it (credentials,
    /// redacted query values, a fragment), to scrub it from error messages. Boxed, as is the rarely
    /// enabled active-requests guard, so that a flight stays small to move.
    url: Option<Box<Url>>,
    _active: Option<Box<ActiveGuard>>,
}

impl Core {
    pub(crate) fn metrics(&self) -> &HttpClientMetrics {
        self.metrics
            .get_or_init(|| HttpClientMetrics::new(self.inst.meter()))
    }

    fn is_excluded(&self, request: &Request) -> bool {
        // Finding the path scans the URL: only done when there are prefixes to compare it with.
        (!self.exclude_prefixes.is_empty() && {
            let path = request.url().path();
            self.exclude_prefixes
                .iter()
                .any(|p| path.starts_with(p.as_str()))
        }) || self.exclude.as_ref().is_some_and(|f| f(request))
    }

    /// Starts the span of `request` and injects its context into the request's headers; `None` when the
    /// request is excluded (no span, no header, no metric).
    pub(crate) fn begin(
        self: &Arc<Self>,
        request: &mut Request,
        options: RequestOptions<'_>,
    ) -> Option<InFlight> {
        if self.is_excluded(request) {
            return None;
        }
        let config = self.inst.config();
        let method = self.known_methods.classify(request.method());
        let template = options.template;

        let name: Cow<'static, str> = match (options.span_name, &self.span_name) {
            (Some(name), _) => name.clone(),
            (None, Some(f)) => match f(request) {
                Some(name) => Cow::Owned(name),
                None => default_name(&method, template),
            },
            (None, None) => default_name(&method, template),
        };
        let metrics_on = config.metrics_enabled();
        // The duration point and the span share their clock readings: two reads instead of four.
        let timer = Timer::start(metrics_on);
        let mut span_request = SpanRequest::client(name);
        if let Some(parent) = options.parent {
            span_request = span_request.with_parent(parent);
        }
        if let Some(at) = timer.started_at() {
            span_request = span_request.with_start_time(at);
        }

        let url = request.url();
        // Computed at most once, and only if the span records or metrics need it.
        let address = std::cell::OnceCell::new();
        let address = || address.get_or_init(|| self.addresses.of(url)).clone();
        let port = server_port(url);
        let url_has_secrets = std::cell::Cell::new(false);
        let mut span = self.inst.start(span_request, |attrs| {
            attrs.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, method.value()));
            if let MethodName::Other(original) = &method {
                attrs.push(KeyValue::new(
                    semconv::HTTP_REQUEST_METHOD_ORIGINAL,
                    original.clone(),
                ));
            }
            let full = redact_with(url, config.redacted_query_params());
            url_has_secrets.set(full != url.as_str());
            attrs.push(KeyValue::new(semconv::URL_FULL, full));
            if let Some(address) = address() {
                attrs.push(KeyValue::new(semconv::SERVER_ADDRESS, address));
            }
            if let Some(port) = port {
                attrs.push(KeyValue::new(semconv::SERVER_PORT, port));
            }
            if let Some(template) = template {
                attrs.push(KeyValue::new(semconv::URL_TEMPLATE, template.clone()));
            }
            if let Some(count) = options.resend_count {
                attrs.push(KeyValue::new(
                    semconv::HTTP_REQUEST_RESEND_COUNT,
                    i64::from(count),
                ));
            }
            if self.user_agent
                && let Some(ua) = request.headers().get(http::header::USER_AGENT)
            {
                attrs.push(KeyValue::new(
                    semconv::USER_AGENT_ORIGINAL,
                    String::from_utf8_lossy(ua.as_bytes()).into_owned(),
                ));
            }
            for header in &self.request_headers {
                attrs.extend(header.capture(request.headers()));
            }
        });
        let recording = span.is_recording();
        if recording && let Some(hook) = &self.on_request {
            hook(request, &mut span);
        }

        let mut point = None;
        let mut active = None;
        if metrics_on || self.active_requests {
            let base = PointBase {
                port,
                method,
                address: address(),
                // Only duration points carry the template: not copied for the active-requests count.
                template: template.filter(|_| metrics_on).cloned(),
            };
            if self.active_requests {
                let counter = self.metrics().active_requests.clone();
                let attributes = base.attributes();
                counter.add(1, &attributes);
                active = Some(Box::new(ActiveGuard {
                    counter,
                    attributes,
                }));
            }
            point = metrics_on.then_some(base);
        }

        // A URL that redacts to itself has nothing to scrub: not copied.
        let url = (recording && url_has_secrets.get()).then(|| Box::new(request.url().clone()));
        // Injected whether or not the span records: the server must see the sampling decision.
        span.inject_headers(config.propagator(), request.headers_mut());

        Some(InFlight {
            core: Arc::clone(self),
            span,
            timer,
            point,
            url,
            _active: active,
        })
    }
}

fn default_name(method: &MethodName, template: Option<&Cow<'static, str>>) -> Cow<'static, str> {
    match (method.span_name(), template) {
        (name, None) => name,
        (name, Some(template)) => Cow::Owned(format!("{name} {template}")),
    }
}

impl InFlight {
    /// Whether the span records (the middleware parents inner work to it only then).
    pub(crate) fn context_if_recording(&self) -> Option<Context> {
        self.span.is_recording().then(|| self.span.context())
    }

    /// Ends the request with its outcome. In place: the flight lives in the request's future, and
    /// moving it out would copy it; the drop that follows finds the span ended.
    pub(crate) fn finish<E: TransportError>(&mut self, result: &Result<Response, E>) {
        match result {
            Ok(response) => self.finish_response(response),
            Err(error) => self.finish_error(error),
        }
    }

    fn finish_response(&mut self, response: &Response) {
        let status = response.status();
        let version = protocol_version(response.version());
        let core = &*self.core;
        self.span.set_attributes_with(|attrs| {
            attrs.push(KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status.as_u16()),
            ));
            if let Some(version) = version {
                attrs.push(KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, version));
            }
            if let Some(peer) = response.remote_addr() {
                attrs.push(KeyValue::new(
                    semconv::NETWORK_PEER_ADDRESS,
                    peer.ip().to_string(),
                ));
                attrs.push(KeyValue::new(
                    semconv::NETWORK_PEER_PORT,
                    i64::from(peer.port()),
                ));
            }
            for header in &core.response_headers {
                attrs.extend(header.capture(response.headers()));
            }
        });
        if self.span.is_recording()
            && let Some(hook) = &core.on_response
        {
            hook(response, &mut self.span);
        }

        let error_type =
            (status.as_u16() >= 400).then(|| StringValue::from(status.as_str().to_owned()));
        let end = self.timer.now();
        // Taken, so that the point is recorded once however often the flight is finished.
        if let (Some(base), Some(seconds)) = (self.point.take(), self.timer.elapsed_secs_until(end))
        {
            point::record_response(
                &core.metrics().request_duration,
                seconds,
                &base,
                status,
                response.version(),
            );
        }

        match error_type {
            None => self.span.end_ok_in_place(end),
            Some(error_type) => {
                let message = match status.canonical_reason() {
                    Some(reason) => format!("HTTP {} {reason}", status.as_str()),
                    None => format!("HTTP {}", status.as_str()),
                };
                self.span
                    .end_error_in_place(&Failure::new(error_type.as_str(), message), end);
            }
        }
    }

    fn finish_error<E: TransportError>(&mut self, error: &E) {
        let error_type = error.error_type();
        let end = self.timer.now();
        if let (Some(base), Some(seconds)) = (self.point.take(), self.timer.elapsed_secs_until(end))
        {
            let mut attrs = base.point_attributes();
            attrs.push(KeyValue::new(semconv::ERROR_TYPE, error_type));
            self.core.metrics().request_duration.record(seconds, &attrs);
        }
        if self.span.is_recording() {
            let message = error.message(
                self.url.as_deref(),
                self.core.inst.config().redacted_query_params(),
            );
            self.span.end_error_in_place(
                &Failure::new(error_type, message).with_exception_type(error.exception_type()),
                end,
            );
        } else {
            self.span
                .end_error_in_place(&Failure::new(error_type, ""), end);
        }
    }
}
