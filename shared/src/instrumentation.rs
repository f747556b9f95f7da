//! [`Instrumentation`]: one adapter instance's resolved tracer, meter and configuration.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use opentelemetry::metrics::Meter;
use opentelemetry::trace::{SpanBuilder, TraceContextExt};
use opentelemetry::{InstrumentationScope, KeyValue};

use crate::config::{Config, Domain};
use crate::context;
use crate::record::{Decision, OperationSpan, SpanRequest, StartingSpan, push_duplicated};
use crate::semconv::SCHEMA_URL;
use crate::tracer::{self, StartSpan};

/// Room for a span's attributes: the SDK keeps the `Vec` handed to it at start, and the ones set at the
/// end (status code, outcome, returned rows) are pushed into it, so a start with eight attributes and
/// an end with up to four never reallocates.
const ATTRIBUTE_CAPACITY: usize = 12;

/// An adapter's handle on OpenTelemetry: its [`Config`], and the tracer and meter of its
/// instrumentation scope (crate name, version, schema URL). Cheap to clone.
///
/// Providers passed in the config are used as given; otherwise the global ones are asked at first use,
/// not at construction, so an application may install its providers after building its clients.
///
/// ```
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
/// use tracewire_shared::{Config, Instrumentation, config::Domain, record::SpanRequest};
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let inst = Instrumentation::new(
///     Config::new().with_tracer_provider(provider),
///     "tracewire-example",
///     "0.1.0",
///     Domain::Database,
/// );
/// inst.start(SpanRequest::client("GET"), |_| {}).end_ok();
/// assert_eq!(exporter.get_finished_spans().unwrap()[0].instrumentation_scope.name(), "tracewire-example");
/// ```
#[derive(Clone, Debug)]
pub struct Instrumentation {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    scope: InstrumentationScope,
    domain: Domain,
    tracer: OnceLock<Box<dyn StartSpan>>,
    meter: OnceLock<Meter>,
    /// Whether the last span started without a parent recorded: the best guess for the next one.
    roots_record: AtomicBool,
    /// Whether the last span started under a sampled parent recorded (it does under the usual
    /// parent-based samplers; not under one that ignores the parent).
    sampled_children_record: AtomicBool,
}

impl Instrumentation {
    /// The instrumentation of the adapter crate `name` at `version`, in semantic-conventions `domain`.
    pub fn new(
        config: Config,
        name: impl Into<Cow<'static, str>>,
        version: impl Into<Cow<'static, str>>,
        domain: Domain,
    ) -> Self {
        let scope = InstrumentationScope::builder(name)
            .with_version(version)
            .with_schema_url(SCHEMA_URL)
            .build();
        Self {
            inner: Arc::new(Inner {
                config,
                scope,
                domain,
                tracer: OnceLock::new(),
                meter: OnceLock::new(),
                roots_record: AtomicBool::new(false),
                sampled_children_record: AtomicBool::new(true),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The semantic-conventions domain.
    pub fn domain(&self) -> Domain {
        self.inner.domain
    }

    /// The tracer (resolved on first use).
    fn tracer(&self) -> &dyn StartSpan {
        self.inner
            .tracer
            .get_or_init(|| match &self.inner.config.tracer_provider {
                Some(p) => p.span_starter(self.inner.scope.clone()),
                None => tracer::global(self.inner.scope.clone()),
            })
            .as_ref()
    }

    /// The meter (resolved on first use).
    pub fn meter(&self) -> &Meter {
        self.inner
            .meter
            .get_or_init(|| match &self.inner.config.meter_provider {
                Some(p) => p.meter_with_scope(self.inner.scope.clone()),
                None => opentelemetry::global::meter_provider()
                    .meter_with_scope(self.inner.scope.clone()),
            })
    }

    /// Starts the span of one operation.
    ///
    /// `attributes` pushes the creation-time attributes; it runs only when the span will record (or,
    /// when a start hook is configured, before the sampling decision so the hook sees them). Under a
    /// `/dup` stability mode the legacy twins are added here.
    pub fn start(
        &self,
        request: SpanRequest<'_>,
        attributes: impl FnOnce(&mut Vec<KeyValue>),
    ) -> OperationSpan {
        let config = &self.inner.config;
        let SpanRequest {
            kind,
            mut name,
            parent,
            links,
            start_time,
        } = request;
        let parent = match parent {
            Some(cx) => cx.clone(),
            None => context::parent(),
        };
        if config.require_parent && !parent.has_active_span() {
            return OperationSpan::disabled(parent);
        }
        let dup =
            OperationSpan::dup_mode(self.inner.domain, config.stability.mode(self.inner.domain));
        let mut builder = SpanBuilder {
            name: Cow::Borrowed(""),
            span_kind: Some(kind),
            links: (!links.is_empty()).then_some(links),
            start_time,
            ..SpanBuilder::default()
        };
        let mut deferred = Some(attributes);
        // Attributes go into the builder (where samplers see them, and the SDK takes the Vec as is,
        // with room for the attributes set at the end) when a hook needs them or the span will most
        // likely record. The guess is the sampler's last decision for a span of the same kind: a root,
        // or a child of a sampled parent (decisions rarely flip from one span to the next: always on,
        // always off, parent-based, or a small ratio). A child of an unsampled parent is assumed
        // dropped. Otherwise attributes are built only after the sampler said yes, and a wrong guess
        // costs one set of attributes built in vain.
        let guess = {
            let span = parent.span();
            let sc = span.span_context();
            if !sc.is_valid() {
                Some(&self.inner.roots_record)
            } else if sc.is_sampled() {
                Some(&self.inner.sampled_children_record)
            } else {
                None
            }
        };
        let eager =
            config.on_start.is_some() || guess.is_some_and(|last| last.load(Ordering::Relaxed));
        if eager {
            let mut attrs = Vec::with_capacity(ATTRIBUTE_CAPACITY);
            if let Some(f) = deferred.take() {
                f(&mut attrs);
            }
            if let Some(hook) = &config.on_start {
                let kind = builder
                    .span_kind
                    .clone()
                    .unwrap_or(opentelemetry::trace::SpanKind::Internal);
                if hook(&mut StartingSpan::new(&mut name, &kind, &mut attrs)) == Decision::Skip {
                    return OperationSpan::disabled(parent);
                }
            }
            if let Some(domain) = dup {
                push_duplicated(&mut attrs, domain);
            }
            builder.attributes = Some(attrs);
        }
        builder.name = name;
        let mut span = self.tracer().start_span(builder, &parent);
        let recording = span.is_recording();
        if let Some(last) = guess {
            // Written only on a change, so threads starting spans do not fight over the cache line.
            if recording != last.load(Ordering::Relaxed) {
                last.store(recording, Ordering::Relaxed);
            }
        }
        if let Some(f) = deferred
            && let Some(recording) = span.recording()
        {
            let mut attrs = Vec::with_capacity(8);
            f(&mut attrs);
            if let Some(domain) = dup {
                push_duplicated(&mut attrs, domain);
            }
            for kv in attrs {
                recording.set_attribute(kv);
            }
        }
        OperationSpan::new(span, parent, dup, config.on_end.clone())
    }
}
