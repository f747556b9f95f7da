//! Parent lookup (DESIGN §3.4): plain OpenTelemetry parent, `tracing` parent with tracing-opentelemetry's
//! context activation on and off, and none. Subscribers are thread-local (`with_default`), never global.

use opentelemetry::trace::{SpanId, TraceContextExt};
use tracewire_shared::config::Domain;
use tracewire_shared::record::SpanRequest;
use tracewire_shared::testing::Telemetry;
use tracewire_shared::{Instrumentation, context};

#[test]
fn plain_otel_parent() {
    let t = Telemetry::new();
    let parent = t.parent("otel-parent");
    let id = parent.span().span_context().span_id();
    let _guard = parent.attach();
    assert_eq!(context::parent().span().span_context().span_id(), id);
}

#[test]
fn no_parent_at_all() {
    let cx = context::parent();
    assert!(!cx.has_active_span());
    assert_eq!(cx.span().span_context().span_id(), SpanId::INVALID);
}

#[test]
fn carry_moves_the_context_to_another_thread() {
    let t = Telemetry::new();
    let i = Instrumentation::new(t.config(), "t", "0", Domain::Database);
    let parent = t.parent("request");
    let id = parent.span().span_context().span_id();
    let job = {
        let _guard = parent.attach();
        let i = i.clone();
        context::carry(move || {
            i.start(SpanRequest::client("blocking query"), |_| {})
                .end_ok()
        })
    };
    std::thread::spawn(job).join().unwrap();
    assert_eq!(t.span("blocking query").parent_span_id, id);
}

#[cfg(feature = "tracing")]
mod with_tracing {
    use super::*;
    use opentelemetry::trace::TracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    fn check(activation: bool) {
        let t = Telemetry::new();
        let i = Instrumentation::new(t.config(), "t", "0", Domain::Database);
        let layer = tracing_opentelemetry::layer()
            .with_tracer(t.tracer_provider.tracer("app"))
            .with_context_activation(activation);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("handler");
            let expected = span.context().span().span_context().span_id();
            assert_ne!(expected, SpanId::INVALID);
            span.in_scope(|| {
                assert_eq!(
                    opentelemetry::Context::current().has_active_span(),
                    activation,
                    "activation decides whether the OTel context is current"
                );
                assert_eq!(context::parent().span().span_context().span_id(), expected);
                i.start(SpanRequest::client("SELECT t"), |_| {}).end_ok();
            });
            drop(span);
            assert_eq!(t.span("SELECT t").parent_span_id, expected);
            assert_eq!(
                t.span("SELECT t").span_context.trace_id(),
                t.span("handler").span_context.trace_id()
            );
        });
    }

    #[test]
    fn tracing_parent_with_context_activation() {
        check(true);
    }

    #[test]
    fn tracing_parent_without_context_activation() {
        check(false);
    }

    #[test]
    fn otel_context_wins_over_tracing_span() {
        let t = Telemetry::new();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(t.tracer_provider.tracer("app"))
            .with_context_activation(false);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let otel = t.parent("explicit");
            let id = otel.span().span_context().span_id();
            tracing::info_span!("ambient").in_scope(|| {
                let _g = otel.attach();
                assert_eq!(context::parent().span().span_context().span_id(), id);
            });
        });
    }
}
