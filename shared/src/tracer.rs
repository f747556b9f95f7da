//! The tracer behind an [`Instrumentation`](crate::Instrumentation), kept at its concrete type
//! behind one trait object.
//!
//! The API's own type erasure (`BoxedTracer`) boxes every span it starts, recorded or not. Here the
//! span is built by the concrete tracer and looked at before anything is boxed: a span the sampler
//! dropped is reduced to its [`SpanContext`] (all that propagation and children need of it) and costs
//! no allocation; a recording span is boxed once. With the global provider the API has already boxed
//! the span, and that box is kept as it is rather than boxed again.

use std::any::{Any, TypeId};
use std::fmt;
use std::time::SystemTime;

use opentelemetry::global::{BoxedSpan, ObjectSafeSpan};
use opentelemetry::trace::{Span, SpanBuilder, SpanContext, Tracer, TracerProvider};
use opentelemetry::{Context, InstrumentationScope};

/// A span as it came out of the tracer.
pub(crate) enum StartedSpan {
    /// A recording span of a tracer of any type, boxed once.
    Recording(Box<dyn ObjectSafeSpan + Send + Sync>),
    /// A recording span of the global provider, which arrives boxed already.
    RecordingGlobal(BoxedSpan),
    /// A span the sampler dropped: only its context is kept (trace and span ids, the unsampled flag),
    /// for injection and for children.
    NonRecording(SpanContext),
    /// No span was started (vetoed, or no parent while one is required).
    Disabled,
}

impl StartedSpan {
    /// The started span, recording or ended; `None` when the sampler dropped it or none was started.
    fn started(&self) -> Option<&dyn ObjectSafeSpan> {
        match self {
            StartedSpan::Recording(span) => Some(span.as_ref()),
            StartedSpan::RecordingGlobal(span) => Some(span),
            StartedSpan::NonRecording(_) | StartedSpan::Disabled => None,
        }
    }

    fn started_mut(&mut self) -> Option<&mut dyn ObjectSafeSpan> {
        match self {
            StartedSpan::Recording(span) => Some(span.as_mut()),
            StartedSpan::RecordingGlobal(span) => Some(span),
            StartedSpan::NonRecording(_) | StartedSpan::Disabled => None,
        }
    }

    /// The span to record into, while it records.
    pub(crate) fn recording(&mut self) -> Option<&mut dyn ObjectSafeSpan> {
        self.started_mut().filter(|span| span.is_recording())
    }

    /// Whether the span records (it stops recording once ended).
    pub(crate) fn is_recording(&self) -> bool {
        self.started().is_some_and(|span| span.is_recording())
    }

    /// The span's context; `None` when no span was started.
    pub(crate) fn span_context(&self) -> Option<&SpanContext> {
        match self {
            StartedSpan::NonRecording(sc) => Some(sc),
            started => started.started().map(|span| span.span_context()),
        }
    }

    /// Ends a started span at `at`, or now. A dropped span has nothing to end (and no clock is read
    /// for it).
    pub(crate) fn end(&mut self, at: Option<SystemTime>) {
        if let Some(span) = self.started_mut() {
            span.end_with_timestamp(at.unwrap_or_else(opentelemetry::time::now));
        }
    }
}

/// Starts spans with a tracer of any type.
pub(crate) trait StartSpan: Send + Sync {
    fn start_span(&self, builder: SpanBuilder, parent: &Context) -> StartedSpan;
}

impl fmt::Debug for dyn StartSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tracer")
    }
}

impl<T> StartSpan for T
where
    T: Tracer + Send + Sync,
    T::Span: Send + Sync + 'static,
{
    fn start_span(&self, builder: SpanBuilder, parent: &Context) -> StartedSpan {
        let span = self.build_with_context(builder, parent);
        if !Span::is_recording(&span) {
            // Dropping a span that does not record reports nothing.
            return StartedSpan::NonRecording(Span::span_context(&span).clone());
        }
        // The global provider's spans come boxed: kept as they are. The test is on types, decided at
        // compile time, so other tracers pay nothing for it.
        if TypeId::of::<T::Span>() == TypeId::of::<BoxedSpan>() {
            let mut span = Some(span);
            if let Some(global) = (&mut span as &mut dyn Any).downcast_mut::<Option<BoxedSpan>>()
                && let Some(global) = global.take()
            {
                return StartedSpan::RecordingGlobal(global);
            }
            return span.map_or(StartedSpan::Disabled, |span| {
                StartedSpan::Recording(Box::new(span))
            });
        }
        StartedSpan::Recording(Box::new(span))
    }
}

/// A tracer provider of any type, as [`Config`](crate::Config) keeps it.
pub(crate) trait TracerSource: Send + Sync {
    fn span_starter(&self, scope: InstrumentationScope) -> Box<dyn StartSpan>;
}

impl<P> TracerSource for P
where
    P: TracerProvider + Send + Sync,
    P::Tracer: Send + Sync + 'static,
    <P::Tracer as Tracer>::Span: Send + Sync + 'static,
{
    fn span_starter(&self, scope: InstrumentationScope) -> Box<dyn StartSpan> {
        Box::new(self.tracer_with_scope(scope))
    }
}

/// The global provider's tracer for `scope` (resolved when called).
pub(crate) fn global(scope: InstrumentationScope) -> Box<dyn StartSpan> {
    Box::new(opentelemetry::global::tracer_provider().tracer_with_scope(scope))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanKind, TraceContextExt};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};

    fn builder() -> SpanBuilder {
        SpanBuilder::from_name("op").with_kind(SpanKind::Client)
    }

    #[test]
    fn a_dropped_span_keeps_only_its_context() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer =
            TracerSource::span_starter(&provider, InstrumentationScope::builder("t").build());
        let mut span = tracer.start_span(builder(), &Context::new());
        assert!(matches!(span, StartedSpan::NonRecording(_)));
        let sc = span.span_context().expect("a context").clone();
        assert!(sc.is_valid());
        assert!(!sc.is_sampled());
        assert!(span.recording().is_none());
        span.end(None);
        assert!(exporter.get_finished_spans().unwrap().is_empty());
    }

    #[test]
    fn a_recording_span_is_boxed_once_and_ends_at_the_given_time() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer =
            TracerSource::span_starter(&provider, InstrumentationScope::builder("t").build());
        let parent_tracer = provider.tracer("parent");
        let parent = Context::new().with_span(parent_tracer.start("parent"));
        let mut span = tracer.start_span(builder(), &parent);
        assert!(matches!(span, StartedSpan::Recording(_)));
        assert!(span.is_recording());
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        span.end(Some(at));
        assert!(!span.is_recording());
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].end_time, at);
        assert_eq!(
            spans[0].parent_span_id,
            parent.span().span_context().span_id()
        );
    }

    #[test]
    fn the_global_providers_box_is_kept() {
        let provider = SdkTracerProvider::builder().build();
        let boxed = opentelemetry::global::BoxedTracer::new(Box::new(
            provider.tracer_with_scope(InstrumentationScope::builder("t").build()),
        ));
        let span = StartSpan::start_span(&boxed, builder(), &Context::new());
        assert!(matches!(span, StartedSpan::RecordingGlobal(_)));
        assert!(span.is_recording());
    }
}
