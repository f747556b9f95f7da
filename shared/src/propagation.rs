//! Injecting and extracting trace context through the configured propagator.
//!
//! [`Propagator`] defaults to the global propagator (`opentelemetry::global::set_text_map_propagator`),
//! looked up at each call so an application may install it after building its clients. Carriers for
//! [`http::HeaderMap`] live here; adapters add their own (the AMQP header table).
//!
//! ```
//! use http::HeaderMap;
//! use opentelemetry::Context;
//! use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
//! use opentelemetry_sdk::propagation::TraceContextPropagator;
//! use tracewire_shared::propagation::Propagator;
//!
//! let propagator = Propagator::new(TraceContextPropagator::new());
//! let sent = SpanContext::new(
//!     TraceId::from(1u128), SpanId::from(2u64), TraceFlags::SAMPLED, false, TraceState::default(),
//! );
//! let mut headers = HeaderMap::new();
//! propagator.inject_headers(&Context::new().with_remote_span_context(sent), &mut headers);
//! assert_eq!(headers["traceparent"], "00-00000000000000000000000000000001-0000000000000002-01");
//!
//! let received = propagator.extract_headers(&headers);
//! assert_eq!(received.span().span_context().span_id(), SpanId::from(2u64));
//! ```

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::SpanContext;

mod w3c;

pub use w3c::W3cTraceContext;

/// The propagator an adapter injects and extracts with.
///
/// ```
/// use opentelemetry_sdk::propagation::TraceContextPropagator;
/// use tracewire_shared::propagation::{Propagator, W3cTraceContext};
///
/// let global = Propagator::global(); // the default
/// let explicit = Propagator::new(TraceContextPropagator::new());
/// let fastest = Propagator::new(W3cTraceContext::new());
/// # let _ = (global, explicit, fastest);
/// ```
#[derive(Clone, Default)]
pub struct Propagator(Kind);

#[derive(Clone, Default)]
enum Kind {
    #[default]
    Global,
    /// [`W3cTraceContext`], known by type so HTTP headers are written without a `String`.
    W3c,
    Custom(Arc<dyn TextMapPropagator + Send + Sync>),
}

impl fmt::Debug for Propagator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Global => f.write_str("Propagator(global)"),
            Kind::W3c => f
                .debug_tuple("Propagator")
                .field(&W3cTraceContext::new())
                .finish(),
            Kind::Custom(p) => f.debug_tuple("Propagator").field(p).finish(),
        }
    }
}

impl Propagator {
    /// Uses whatever propagator is installed globally at the time of each call.
    pub fn global() -> Self {
        Self(Kind::Global)
    }

    /// Uses `propagator`, ignoring the global one.
    pub fn new<P: TextMapPropagator + Send + Sync + 'static>(propagator: P) -> Self {
        if TypeId::of::<P>() == TypeId::of::<W3cTraceContext>() {
            return Self(Kind::W3c);
        }
        Self(Kind::Custom(Arc::new(propagator)))
    }

    fn with<T: Default>(&self, f: impl FnOnce(&dyn TextMapPropagator) -> T) -> T {
        match &self.0 {
            Kind::W3c => f(&W3cTraceContext::new()),
            Kind::Custom(p) => f(p.as_ref()),
            Kind::Global => {
                // The global accessor takes an FnMut; it calls it exactly once.
                let mut f = Some(f);
                opentelemetry::global::get_text_map_propagator(|p| f.take().map(|f| f(p)))
                    .unwrap_or_default()
            }
        }
    }

    /// Writes `cx`'s trace context into `injector`.
    pub fn inject(&self, cx: &Context, injector: &mut dyn Injector) {
        self.with(|p| p.inject_context(cx, injector));
    }

    /// Reads a trace context from `extractor` into a fresh [`Context`] (not the current one): when the
    /// carrier holds no valid context the result has no span, so it never parents anything.
    pub fn extract(&self, extractor: &dyn Extractor) -> Context {
        self.with(|p| p.extract_with_context(&Context::new(), extractor))
    }

    /// [`inject`](Self::inject) into HTTP headers; values that are not valid header values are skipped.
    pub fn inject_headers(&self, cx: &Context, headers: &mut HeaderMap) {
        match &self.0 {
            Kind::W3c => {
                let span = opentelemetry::trace::TraceContextExt::span(cx);
                write_w3c_headers(span.span_context(), headers);
            }
            _ => self.inject(cx, &mut HeaderInjector(headers)),
        }
    }

    /// Injects the context of a span whose [`SpanContext`] is at hand into HTTP headers. `cx` builds
    /// the whole [`Context`] for propagators that need more than the span (baggage, say); it is only
    /// called when the propagator is not [`W3cTraceContext`].
    pub(crate) fn inject_span_headers(
        &self,
        span: &SpanContext,
        cx: impl FnOnce() -> Context,
        headers: &mut HeaderMap,
    ) {
        match &self.0 {
            Kind::W3c => write_w3c_headers(span, headers),
            _ => self.inject(&cx(), &mut HeaderInjector(headers)),
        }
    }

    /// Injects the context of a span whose [`SpanContext`] is at hand into `injector`; like
    /// [`inject_span_headers`](Self::inject_span_headers), `cx` is only built when the propagator is
    /// not [`W3cTraceContext`].
    pub(crate) fn inject_span(
        &self,
        span: &SpanContext,
        cx: impl FnOnce() -> Context,
        injector: &mut dyn Injector,
    ) {
        match &self.0 {
            Kind::W3c => w3c::inject_span_context(span, injector),
            _ => self.inject(&cx(), injector),
        }
    }

    /// [`extract`](Self::extract) from HTTP headers; values that are not visible ASCII are ignored.
    pub fn extract_headers(&self, headers: &HeaderMap) -> Context {
        self.extract(&HeaderExtractor(headers))
    }
}

// Validated at compile time: `from_static` at run time re-checks the name on every call.
const TRACEPARENT: HeaderName = HeaderName::from_static(w3c::TRACEPARENT);
const TRACESTATE: HeaderName = HeaderName::from_static(w3c::TRACESTATE);
const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// `traceparent` (and a non-empty `tracestate`) of `sc`, straight from a fixed buffer.
fn write_w3c_headers(sc: &SpanContext, headers: &mut HeaderMap) {
    if !sc.is_valid() {
        return;
    }
    if let Ok(value) = HeaderValue::from_bytes(&w3c::traceparent(sc)) {
        headers.insert(TRACEPARENT, value);
    }
    let state = sc.trace_state().header();
    if state.is_empty() {
        // A stale value (a retried request, say) must not outlive the context it belonged to; with
        // `traceparent` the only header, there is none to look for.
        if headers.len() > 1 {
            headers.remove(&TRACESTATE);
        }
    } else if let Ok(value) = HeaderValue::try_from(state) {
        headers.insert(TRACESTATE, value);
    }
}

/// An [`Injector`] writing into an [`http::HeaderMap`]. Names or values that HTTP does not allow are
/// dropped instead of panicking: telemetry never breaks a request.
///
/// ```
/// use http::HeaderMap;
/// use opentelemetry::propagation::Injector;
/// use tracewire_shared::propagation::HeaderInjector;
///
/// let mut headers = HeaderMap::new();
/// HeaderInjector(&mut headers).set("traceparent", "00-…".to_string());
/// HeaderInjector(&mut headers).set("bad", "line\nbreak".to_string());
/// assert!(headers.contains_key("traceparent"));
/// assert!(!headers.contains_key("bad"));
/// ```
#[derive(Debug)]
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The W3C names are static (no allocation), and the propagator's String becomes the header
        // value without a copy: this runs on every outgoing request.
        let name = match key {
            "traceparent" => TRACEPARENT,
            "tracestate" => TRACESTATE,
            "baggage" => BAGGAGE,
            other => match HeaderName::from_bytes(other.as_bytes()) {
                Ok(name) => name,
                Err(_) => return,
            },
        };
        if let Ok(value) = HeaderValue::try_from(value) {
            self.0.insert(name, value);
        }
    }
}

/// An [`Extractor`] reading from an [`http::HeaderMap`].
///
/// ```
/// use http::HeaderMap;
/// use opentelemetry::propagation::Extractor;
/// use tracewire_shared::propagation::HeaderExtractor;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("tracestate", "a=1".parse().unwrap());
/// assert_eq!(HeaderExtractor(&headers).get("tracestate"), Some("a=1"));
/// ```
#[derive(Debug)]
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    fn context(flags: TraceFlags, state: &str) -> Context {
        let sc = SpanContext::new(
            TraceId::from(0x0af7651916cd43dd8448eb211c80319cu128),
            SpanId::from(0xb7ad6b7169203331u64),
            flags,
            false,
            state.parse::<TraceState>().unwrap(),
        );
        Context::new().with_remote_span_context(sc)
    }

    #[test]
    fn round_trip_keeps_ids_flags_and_state() {
        let p = Propagator::new(TraceContextPropagator::new());
        for flags in [TraceFlags::SAMPLED, TraceFlags::NOT_SAMPLED] {
            let mut headers = HeaderMap::new();
            p.inject_headers(&context(flags, "vendor=a,other=b"), &mut headers);
            assert_eq!(headers["tracestate"], "vendor=a,other=b");
            let cx = p.extract_headers(&headers);
            let sc = cx.span().span_context().clone();
            assert!(sc.is_valid() && sc.is_remote());
            assert_eq!(
                sc.trace_id(),
                TraceId::from(0x0af7651916cd43dd8448eb211c80319cu128)
            );
            assert_eq!(sc.span_id(), SpanId::from(0xb7ad6b7169203331u64));
            assert_eq!(sc.trace_flags(), flags);
        }
    }

    #[test]
    fn w3c_fast_path_writes_the_sdk_headers_and_clears_a_stale_state() {
        let ours = Propagator::new(W3cTraceContext::new());
        let sdk = Propagator::new(TraceContextPropagator::new());
        assert_eq!(
            format!("{ours:?}"),
            "Propagator(W3cTraceContext { _private: () })"
        );
        for flags in [TraceFlags::SAMPLED, TraceFlags::NOT_SAMPLED] {
            let cx = context(flags, "vendor=a");
            let (mut a, mut b) = (HeaderMap::new(), HeaderMap::new());
            ours.inject_headers(&cx, &mut a);
            sdk.inject_headers(&cx, &mut b);
            assert_eq!(a, b);
            let back = ours.extract_headers(&a);
            let (sent, got) = (
                cx.span().span_context().clone(),
                back.span().span_context().clone(),
            );
            assert_eq!(
                (
                    got.trace_id(),
                    got.span_id(),
                    got.trace_flags(),
                    got.trace_state().header()
                ),
                (
                    sent.trace_id(),
                    sent.span_id(),
                    sent.trace_flags(),
                    sent.trace_state().header()
                )
            );
            assert!(got.is_remote());
        }
        let mut retried = HeaderMap::new();
        retried.insert("tracestate", HeaderValue::from_static("old=1"));
        retried.insert("x-other", HeaderValue::from_static("kept"));
        ours.inject_headers(&context(TraceFlags::SAMPLED, ""), &mut retried);
        assert!(!retried.contains_key("tracestate"));
        assert_eq!(retried["x-other"], "kept");
        assert!(retried.contains_key("traceparent"));
        let mut untouched = HeaderMap::new();
        ours.inject_headers(&Context::new(), &mut untouched);
        assert!(untouched.is_empty());
    }

    #[test]
    fn malformed_traceparent_gives_no_parent() {
        let p = Propagator::new(TraceContextPropagator::new());
        let bad = [
            "",
            "garbage",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-zz",
            "00-😀😀😀-b7ad6b7169203331-01",
        ];
        for value in bad {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert("traceparent", v);
            }
            let cx = p.extract_headers(&headers);
            assert!(!cx.has_active_span(), "{value:?} must not give a parent");
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_bytes(b"00-\xff\xfe").unwrap(),
        );
        assert!(!p.extract_headers(&headers).has_active_span());
    }

    #[test]
    fn injector_drops_what_http_does_not_allow() {
        let mut headers = HeaderMap::new();
        let mut inj = HeaderInjector(&mut headers);
        inj.set("traceparent", "00-abc".to_owned());
        inj.set("X-Custom", "v".to_owned());
        inj.set("bad name", "v".to_owned());
        inj.set("x-bad-value", "a\r\nb".to_owned());
        inj.set("traceparent", "00-def".to_owned());
        assert_eq!(headers["traceparent"], "00-def");
        assert_eq!(headers["x-custom"], "v");
        assert_eq!(headers.len(), 2);
    }

    #[test]
    fn global_propagator_is_used_by_default() {
        // The global propagator is a no-op until an application installs one: nothing is injected.
        let mut headers = HeaderMap::new();
        Propagator::global().inject_headers(&context(TraceFlags::SAMPLED, ""), &mut headers);
        assert!(headers.is_empty());
    }
}
