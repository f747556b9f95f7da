//! Where an adapter's span gets its parent, and how to carry a context into other code.
//!
//! [`parent`] returns the current OpenTelemetry context when it holds a span. Otherwise, with the
//! `tracing` feature, it asks the current `tracing` span (through tracing-opentelemetry), so spans made
//! under `#[tracing::instrument]` are parented even when tracing-opentelemetry does not activate its
//! context. Otherwise it returns the current context (a root span follows).
//!
//! Never hold a [`opentelemetry::ContextGuard`] across an `.await`: wrap the future with
//! [`FutureExt::with_context`] instead.
//!
//! ```
//! use opentelemetry::{Context, trace::TraceContextExt};
//! use tracewire_shared::context;
//!
//! // No span anywhere: the parent is the (empty) current context.
//! assert!(!context::parent().has_active_span());
//! ```

pub use opentelemetry::context::FutureExt;
use opentelemetry::{Context, trace::TraceContextExt};

/// The context a new client span should be parented to (see the module docs for the lookup order).
pub fn parent() -> Context {
    let current = Context::current();
    if current.has_active_span() {
        return current;
    }
    // Without any subscriber there is no current `tracing` span: one atomic load instead of the
    // dispatcher lookup.
    #[cfg(feature = "tracing")]
    if tracing::dispatcher::has_been_set() {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let span = tracing::Span::current();
        if !span.is_disabled() {
            let cx = span.context();
            if cx.has_active_span() {
                return cx;
            }
        }
    }
    current
}

/// Wraps `f` so that, wherever it runs, it runs inside the context that is current *now* (as found by
/// [`parent`]). Made for `tokio::task::spawn_blocking`, whose closure runs on another thread where the
/// caller's context is not current, so synchronous clients (diesel) parent their spans correctly.
///
/// ```
/// use opentelemetry::{Context, trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState}};
/// use tracewire_shared::context;
///
/// let sc = SpanContext::new(TraceId::from(7u128), SpanId::from(9u64), TraceFlags::SAMPLED, false, TraceState::default());
/// let _guard = Context::new().with_remote_span_context(sc).attach();
/// let job = context::carry(|| context::parent().span().span_context().span_id());
/// let seen = std::thread::spawn(job).join().unwrap();
/// assert_eq!(seen, SpanId::from(9u64));
/// ```
pub fn carry<F, R>(f: F) -> impl FnOnce() -> R + Send + 'static
where
    F: FnOnce() -> R + Send + 'static,
{
    let cx = parent();
    move || {
        let _guard = cx.attach();
        f()
    }
}

/// Runs `f` with `cx` attached as the current context, detaching it afterwards.
///
/// ```
/// use opentelemetry::{Context, KeyValue};
/// use tracewire_shared::context;
///
/// let cx = Context::new().with_value(42u32);
/// assert_eq!(context::run_in(&cx, || Context::current().get::<u32>().copied()), Some(42));
/// ```
pub fn run_in<F, R>(cx: &Context, f: F) -> R
where
    F: FnOnce() -> R,
{
    let _guard = cx.clone().attach();
    f()
}
