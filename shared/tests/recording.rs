//! The recording helper: span shape, outcomes, cancellation, sampling, hooks, stability modes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};
use tracewire_shared::config::{Domain, SemconvStability};
use tracewire_shared::record::{Decision, Failure, SpanRequest};
use tracewire_shared::testing::{Telemetry, attr, attr_str};
use tracewire_shared::{Instrumentation, semconv};

fn inst(t: &Telemetry, config: tracewire_shared::Config, domain: Domain) -> Instrumentation {
    let _ = t;
    Instrumentation::new(config, "tracewire-test", "9.9.9", domain)
}

fn db_attrs(a: &mut Vec<KeyValue>) {
    a.push(KeyValue::new(
        semconv::DB_SYSTEM_NAME,
        semconv::db_system::POSTGRESQL,
    ));
    a.push(KeyValue::new(
        semconv::DB_QUERY_TEXT,
        "SELECT * FROM t WHERE id = $1",
    ));
}

#[test]
fn success_span_has_kind_name_attributes_parent_and_scope() {
    let t = Telemetry::new();
    let i = inst(&t, t.config(), Domain::Database);
    let parent = t.parent("request");
    let parent_id = parent.span().span_context().span_id();
    i.start(
        SpanRequest::client("SELECT t").with_parent(&parent),
        db_attrs,
    )
    .end_ok();
    drop(parent);

    let span = t.span("SELECT t");
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(span.parent_span_id, parent_id);
    assert_eq!(span.status, Status::Unset);
    assert_eq!(
        attr_str(&span, semconv::DB_SYSTEM_NAME).as_deref(),
        Some("postgresql")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_TEXT).as_deref(),
        Some("SELECT * FROM t WHERE id = $1")
    );
    assert!(attr(&span, semconv::ERROR_TYPE).is_none());
    assert!(attr(&span, semconv::TRACEWIRE_CANCELLED).is_none());
    assert!(
        attr(&span, "db.statement").is_none(),
        "legacy names only under /dup"
    );
    assert_eq!(span.instrumentation_scope.name(), "tracewire-test");
    assert_eq!(span.instrumentation_scope.version(), Some("9.9.9"));
    assert_eq!(
        span.instrumentation_scope.schema_url(),
        Some(semconv::SCHEMA_URL)
    );
    assert!(span.events.is_empty());
}

#[test]
fn parent_comes_from_the_current_context_by_default() {
    let t = Telemetry::new();
    let i = inst(&t, t.config(), Domain::Database);
    let parent = t.parent("outer");
    let parent_sc = parent.span().span_context().clone();
    {
        let _guard = parent.clone().attach();
        i.start(SpanRequest::client("child"), |_| {}).end_ok();
    }
    i.start(SpanRequest::client("root"), |_| {}).end_ok();
    let child = t.span("child");
    assert_eq!(child.parent_span_id, parent_sc.span_id());
    assert_eq!(child.span_context.trace_id(), parent_sc.trace_id());
    let root = t.span("root");
    assert_eq!(root.parent_span_id, SpanId::INVALID);
    assert_ne!(root.span_context.trace_id(), parent_sc.trace_id());
}

#[test]
fn failure_records_error_type_status_code_and_exception_event() {
    let t = Telemetry::new();
    let i = inst(&t, t.config(), Domain::Database);
    let span = i.start(SpanRequest::client("INSERT users"), db_attrs);
    let long = "duplicate key value violates unique constraint \"users_email_key\" ".repeat(20);
    span.end_error(
        &Failure::new("23505", long.as_str())
            .with_db_status_code("23505")
            .with_exception_type("sqlx::Error::Database"),
    );
    let span = t.span("INSERT users");
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some("23505")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_RESPONSE_STATUS_CODE).as_deref(),
        Some("23505")
    );
    match &span.status {
        Status::Error { description } => {
            assert!(description.starts_with("duplicate key value"));
            assert!(description.len() <= 256, "description is bounded");
        }
        other => panic!("status {other:?}"),
    }
    let events: Vec<_> = span.events.iter().collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, "exception");
    let event_attr = |k: &str| {
        events[0]
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.as_str().into_owned())
    };
    assert_eq!(
        event_attr(semconv::EXCEPTION_TYPE).as_deref(),
        Some("sqlx::Error::Database")
    );
    assert!(event_attr(semconv::EXCEPTION_MESSAGE).unwrap().len() <= 1024);
}

#[test]
fn end_result_maps_ok_and_err() {
    let t = Telemetry::new();
    let i = inst(&t, t.config(), Domain::Database);
    let ok: Result<u8, String> = Ok(1);
    i.start(SpanRequest::client("ok"), |_| {})
        .end_result(&ok, |e| Failure::new("x", e.as_str()));
    let err: Result<u8, String> = Err("boom".into());
    i.start(SpanRequest::client("err"), |_| {})
        .end_result(&err, |e| Failure::new("io", e.as_str()));
    assert_eq!(t.span("ok").status, Status::Unset);
    assert_eq!(t.span("err").status, Status::error("boom"));
    assert_eq!(
        attr_str(&t.span("err"), semconv::ERROR_TYPE).as_deref(),
        Some("io")
    );
}

#[test]
fn dropped_span_ends_cancelled_without_error() {
    let t = Telemetry::new();
    let i = inst(&t, t.config(), Domain::Database);
    let span = i.start(SpanRequest::client("abandoned"), db_attrs);
    assert!(t.finished().is_empty(), "nothing ends before the drop");
    drop(span);
    let span = t.span("abandoned");
    assert_eq!(
        attr(&span, semconv::TRACEWIRE_CANCELLED),
        Some(&true.into())
    );
    assert_eq!(span.status, Status::Unset);
    assert!(attr(&span, semconv::ERROR_TYPE).is_none());
    assert_eq!(t.finished().len(), 1, "ends exactly once");
}

#[test]
fn unsampled_spans_build_no_attributes_but_propagate_their_context() {
    let t = Telemetry::unsampled();
    let i = inst(&t, t.config(), Domain::Http);
    let called = AtomicBool::new(false);
    let mut span = i.start(SpanRequest::client("GET"), |a| {
        called.store(true, Ordering::SeqCst);
        a.push(KeyValue::new("k", "v"));
    });
    assert!(!span.is_recording());
    assert!(
        !called.load(Ordering::SeqCst),
        "the attribute closure must not run for unsampled spans"
    );
    span.set_attributes_with(|_| panic!("not called either"));
    let sc = span.span_context().unwrap().clone();
    assert!(sc.is_valid());
    assert!(!sc.is_sampled());
    let cx = span.context();
    assert_eq!(
        cx.span().span_context().span_id(),
        sc.span_id(),
        "downstream sees the decision"
    );
    span.end_error(&Failure::new("500", "x"));
    assert!(t.finished().is_empty());
}

#[test]
fn context_holds_the_operation_span_for_children_and_injection() {
    let t = Telemetry::new();
    let i = inst(&t, t.config(), Domain::Messaging);
    let span = i.start(SpanRequest::new(SpanKind::Producer, "publish q"), |_| {});
    let cx = span.context();
    let own = span.span_context().unwrap().clone();
    assert_eq!(cx.span().span_context().span_id(), own.span_id());
    i.start(SpanRequest::client("child").with_parent(&cx), |_| {})
        .end_ok();
    span.end_ok();
    assert_eq!(t.span("child").parent_span_id, own.span_id());
    assert_eq!(t.span("publish q").span_kind, SpanKind::Producer);
}

#[test]
fn links_are_recorded_and_invalid_ones_dropped() {
    let t = Telemetry::new();
    let i = inst(&t, t.config(), Domain::Messaging);
    let remote = SpanContext::new(
        TraceId::from(0xabcu128),
        SpanId::from(0xdefu64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let req = SpanRequest::new(SpanKind::Consumer, "process q")
        .with_link(remote.clone(), vec![])
        .with_link(SpanContext::empty_context(), vec![]);
    i.start(req, |_| {}).end_ok();
    let span = t.span("process q");
    let links: Vec<_> = span.links.iter().collect();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].span_context.span_id(), remote.span_id());
    assert_eq!(links[0].span_context.trace_id(), remote.trace_id());
}

#[test]
fn links_can_be_added_after_start() {
    let t = Telemetry::new();
    let i = inst(&t, t.config(), Domain::Messaging);
    let remote = SpanContext::new(
        TraceId::from(7u128),
        SpanId::from(8u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let mut span = i.start(SpanRequest::client("receive q"), |_| {});
    span.add_link(remote.clone(), vec![KeyValue::new("k", "v")]);
    span.add_link(SpanContext::empty_context(), vec![]);
    span.end_ok();
    let links: Vec<_> = t
        .span("receive q")
        .links
        .iter()
        .map(|l| l.span_context.span_id())
        .collect();
    assert_eq!(links, vec![remote.span_id()]);
}

#[test]
fn require_parent_skips_root_operations() {
    let t = Telemetry::new();
    let i = inst(&t, t.config().with_require_parent(true), Domain::Database);
    let root = i.start(SpanRequest::client("orphan"), |_| {
        panic!("no attributes for a skipped span")
    });
    assert!(root.span_context().is_none());
    root.end_ok();
    let parent = t.parent("p");
    i.start(SpanRequest::client("adopted").with_parent(&parent), |_| {})
        .end_ok();
    drop(parent);
    let names: Vec<_> = t.finished().iter().map(|s| s.name.to_string()).collect();
    assert!(!names.contains(&"orphan".to_string()), "{names:?}");
    assert!(names.contains(&"adopted".to_string()));
}

#[test]
fn start_hook_renames_enriches_and_vetoes() {
    let t = Telemetry::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    let config = t.config().with_on_start(move |s| {
        seen2.fetch_add(1, Ordering::SeqCst);
        assert!(
            s.attributes()
                .iter()
                .any(|kv| kv.key.as_str() == semconv::DB_SYSTEM_NAME)
        );
        if s.name() == "SELECT health" {
            return Decision::Skip;
        }
        s.set_name(format!("db {}", s.name()));
        s.attributes_mut().push(KeyValue::new("tenant", "acme"));
        Decision::Record
    });
    let i = inst(&t, config, Domain::Database);
    i.start(SpanRequest::client("SELECT health"), db_attrs)
        .end_ok();
    i.start(SpanRequest::client("SELECT users"), db_attrs)
        .end_ok();
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    assert_eq!(t.finished().len(), 1);
    let span = t.span("db SELECT users");
    assert_eq!(attr_str(&span, "tenant").as_deref(), Some("acme"));
    assert_eq!(
        attr_str(&span, semconv::DB_SYSTEM_NAME).as_deref(),
        Some("postgresql")
    );
}

#[test]
fn end_hook_sees_the_outcome() {
    let t = Telemetry::new();
    let config = t.config().with_on_end(|e| {
        let outcome = match (e.error_type(), e.is_cancelled()) {
            (Some(_), _) => "failed",
            (None, true) => "cancelled",
            (None, false) => "ok",
        };
        e.set_attribute(KeyValue::new("outcome", outcome));
    });
    let i = inst(&t, config, Domain::Database);
    i.start(SpanRequest::client("a"), |_| {}).end_ok();
    i.start(SpanRequest::client("b"), |_| {})
        .end_error(&Failure::new("x", "y"));
    drop(i.start(SpanRequest::client("c"), |_| {}));
    assert_eq!(attr_str(&t.span("a"), "outcome").as_deref(), Some("ok"));
    assert_eq!(attr_str(&t.span("b"), "outcome").as_deref(), Some("failed"));
    assert_eq!(
        attr_str(&t.span("c"), "outcome").as_deref(),
        Some("cancelled")
    );
}

#[test]
fn dup_stability_mode_adds_legacy_names() {
    let t = Telemetry::new();
    let dup = SemconvStability::parse("database/dup,messaging/dup");
    let db = inst(&t, t.config().with_semconv_stability(dup), Domain::Database);
    let mut span = db.start(SpanRequest::client("SELECT t"), db_attrs);
    span.set_attribute(KeyValue::new(semconv::DB_NAMESPACE, "test"));
    span.end_ok();
    let s = t.span("SELECT t");
    assert_eq!(
        attr_str(&s, "db.statement").as_deref(),
        Some("SELECT * FROM t WHERE id = $1")
    );
    assert_eq!(attr_str(&s, "db.system").as_deref(), Some("postgresql"));
    assert_eq!(attr_str(&s, "db.name").as_deref(), Some("test"));
    assert_eq!(
        attr_str(&s, semconv::DB_QUERY_TEXT).as_deref(),
        Some("SELECT * FROM t WHERE id = $1")
    );

    let mq = inst(
        &t,
        t.config().with_semconv_stability(dup),
        Domain::Messaging,
    );
    mq.start(SpanRequest::new(SpanKind::Producer, "publish x"), |a| {
        a.push(KeyValue::new(
            semconv::MESSAGING_OPERATION_TYPE,
            semconv::messaging::SEND,
        ));
    })
    .end_ok();
    let s = t.span("publish x");
    assert_eq!(
        attr_str(&s, semconv::MESSAGING_OPERATION_TYPE).as_deref(),
        Some("send")
    );
    assert_eq!(
        attr_str(&s, "messaging.operation").as_deref(),
        Some("publish")
    );

    // The HTTP domain was not opted in: no legacy names.
    let http = inst(&t, t.config().with_semconv_stability(dup), Domain::Http);
    http.start(SpanRequest::client("GET"), |a| {
        a.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, "GET"))
    })
    .end_ok();
    assert!(attr(&t.span("GET"), "http.method").is_none());
}

#[test]
fn disabled_span_context_is_the_parent() {
    let parent = Context::new();
    let span = tracewire_shared::record::OperationSpan::disabled(parent);
    assert!(!span.is_recording());
    assert!(!span.context().has_active_span());
}

/// Samples while `on`, and remembers how many attributes it was shown at each decision.
#[derive(Clone, Debug)]
struct Switch {
    on: Arc<AtomicBool>,
    shown: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl opentelemetry_sdk::trace::ShouldSample for Switch {
    fn should_sample(
        &self,
        _: Option<&Context>,
        _: opentelemetry::trace::TraceId,
        _: &str,
        _: &opentelemetry::trace::SpanKind,
        attributes: &[KeyValue],
        _: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        self.shown.lock().unwrap().push(attributes.len());
        let decision = if self.on.load(Ordering::SeqCst) {
            opentelemetry_sdk::trace::SamplingDecision::RecordAndSample
        } else {
            opentelemetry_sdk::trace::SamplingDecision::Drop
        };
        opentelemetry_sdk::trace::SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state: Default::default(),
        }
    }
}

#[test]
fn root_spans_build_attributes_up_front_after_a_recorded_root() {
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let switch = Switch {
        on: Arc::new(AtomicBool::new(true)),
        shown: Arc::default(),
    };
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(switch.clone())
        .with_simple_exporter(exporter.clone())
        .build();
    let i = Instrumentation::new(
        tracewire_shared::Config::new().with_tracer_provider(provider),
        "test",
        "0",
        Domain::Database,
    );
    let built = AtomicUsize::new(0);
    let run = |request: SpanRequest<'_>| {
        i.start(request, |a| {
            built.fetch_add(1, Ordering::SeqCst);
            a.push(KeyValue::new("k", "v"));
        })
        .end_ok()
    };
    let start = || run(SpanRequest::client("op"));
    // No root recorded yet: the sampler decides first, the attributes follow.
    start();
    // The previous root recorded: the sampler sees the attributes.
    start();
    // A wrong guess builds them in vain once; the next root is deferred again.
    switch.on.store(false, Ordering::SeqCst);
    start();
    start();
    assert_eq!(*switch.shown.lock().unwrap(), [0, 1, 1, 0]);
    assert_eq!(built.load(Ordering::SeqCst), 3);

    // Under a sampled parent the first guess is "records" (parent-based sampling); a sampler that
    // ignores the parent corrects it after one span.
    let sampled_parent = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(7u128),
        SpanId::from(9u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ));
    let child = || run(SpanRequest::client("child").with_parent(&sampled_parent));
    child();
    child();
    switch.on.store(true, Ordering::SeqCst);
    child();
    child();
    assert_eq!(*switch.shown.lock().unwrap(), [0, 1, 1, 0, 1, 0, 0, 1]);
    assert_eq!(built.load(Ordering::SeqCst), 6);
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 4);
    for span in &spans {
        assert_eq!(
            attr_str(span, "k").as_deref(),
            Some("v"),
            "same attributes either way"
        );
        assert_eq!(span.attributes.len(), 1);
    }
}
