//! OTLP export end to end: the tour's providers, pointed at an in-test OTLP/gRPC receiver, deliver
//! every span and the client metrics with their semantic-conventions attributes and resource.

use std::collections::BTreeSet;

use opentelemetry_semantic_conventions::attribute::HTTP_ROUTE;
use opentelemetry_semantic_conventions::resource::SERVICE_NAME;
use tracewire_demo::{DemoTelemetry, Environment, Order, OtlpTarget, run_order_flow};
use tracewire_shared::semconv::{self, db_system};
use tracewire_tests::opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tracewire_tests::{OtlpReceiver, ReceivedSpan, find};

fn one<'a>(spans: &'a [ReceivedSpan], name: &str, kind: SpanKind) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.span.name == name && s.span.kind == kind as i32)
        .collect();
    assert_eq!(found.len(), 1, "one {kind:?} span {name:?} received");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_reach_an_otlp_receiver() {
    let receiver = OtlpReceiver::start().await;
    let telemetry = DemoTelemetry::new(
        "tracewire-otlp-test",
        Some(OtlpTarget::grpc(receiver.endpoint())),
    )
    .expect("providers");
    let report = run_order_flow(
        &Environment::embedded(),
        &telemetry.config(),
        &Order::default(),
    )
    .await
    .expect("the order flow");
    let local = telemetry.spans();
    telemetry.shutdown().await.expect("flushed to the receiver");

    let spans = receiver.spans();
    assert_eq!(spans.len(), local.len(), "every span exported once");
    let sent: BTreeSet<String> = local.iter().map(|s| s.name.to_string()).collect();
    let received: BTreeSet<String> = spans.iter().map(|s| s.span.name.clone()).collect();
    assert_eq!(received, sent);
    for s in &spans {
        assert_eq!(
            s.span.trace_id,
            report.trace_id.to_bytes().to_vec(),
            "{} is in the order's trace",
            s.span.name
        );
        assert_eq!(
            s.resource_attr(SERVICE_NAME).as_deref(),
            Some("tracewire-otlp-test")
        );
    }

    let insert = one(&spans, "INSERT orders", SpanKind::Client);
    assert_eq!(insert.scope, "tracewire-sqlx");
    assert_eq!(
        insert.attr(semconv::DB_SYSTEM_NAME).as_deref(),
        Some(db_system::SQLITE)
    );
    assert_eq!(
        insert.attr(semconv::DB_QUERY_TEXT).as_deref(),
        Some(
            "INSERT INTO orders (customer, sku, quantity, total_cents, status) \
             VALUES (?, ?, ?, ?, ?) RETURNING id"
        )
    );
    assert_eq!(
        insert.attr(semconv::DB_QUERY_SUMMARY).as_deref(),
        Some("INSERT orders")
    );
    assert_eq!(
        insert.attr(semconv::DB_NAMESPACE).as_deref(),
        Some(":memory:")
    );

    let select = one(&spans, "SELECT products", SpanKind::Client);
    assert_eq!(select.scope, "tracewire-diesel");
    assert_eq!(
        select.attr(semconv::DB_QUERY_TEXT).as_deref(),
        Some("SELECT price_cents FROM products WHERE sku = ?")
    );

    let client = one(&spans, "POST /orders", SpanKind::Client);
    assert_eq!(client.scope, "tracewire-reqwest");
    assert_eq!(
        client.attr(semconv::HTTP_REQUEST_METHOD).as_deref(),
        Some("POST")
    );
    assert_eq!(
        client.attr(semconv::HTTP_RESPONSE_STATUS_CODE).as_deref(),
        Some("201")
    );
    assert_eq!(
        client.attr(semconv::SERVER_ADDRESS).as_deref(),
        Some("127.0.0.1")
    );
    assert!(
        client
            .attr(semconv::URL_FULL)
            .is_some_and(|u| u.starts_with("http://127.0.0.1:") && u.ends_with("/orders"))
    );
    let server = one(&spans, "POST /orders", SpanKind::Server);
    assert_eq!(server.span.parent_span_id, client.span.span_id);
    assert_eq!(server.attr(HTTP_ROUTE).as_deref(), Some("/orders"));
    assert_eq!(insert.span.parent_span_id, server.span.span_id);

    let metrics = receiver.metrics();
    let db = metrics
        .iter()
        .filter(|m| m.metric.name == semconv::metric::DB_CLIENT_OPERATION_DURATION)
        .flat_map(|m| m.points())
        .collect::<Vec<_>>();
    assert!(
        db.iter().any(|(attrs, count)| *count >= 1.0
            && find(attrs, semconv::DB_SYSTEM_NAME).as_deref() == Some(db_system::SQLITE)
            && find(attrs, semconv::DB_QUERY_SUMMARY).as_deref() == Some("INSERT orders")),
        "db.client.operation.duration for INSERT orders: {db:?}"
    );
    let http: Vec<_> = metrics
        .iter()
        .filter(|m| m.metric.name == semconv::metric::HTTP_CLIENT_REQUEST_DURATION)
        .inspect(|m| assert_eq!(m.metric.unit, "s"))
        .flat_map(|m| m.points())
        .collect();
    assert!(
        http.iter().any(|(attrs, count)| *count >= 1.0
            && find(attrs, semconv::HTTP_REQUEST_METHOD).as_deref() == Some("POST")
            && find(attrs, semconv::HTTP_RESPONSE_STATUS_CODE).as_deref() == Some("201")),
        "http.client.request.duration for the POST: {http:?}"
    );
    // Metric attributes stay low-cardinality.
    for m in &metrics {
        for (attrs, _) in m.points() {
            assert!(
                find(&attrs, semconv::DB_QUERY_TEXT).is_none(),
                "{}",
                m.metric.name
            );
            assert!(
                find(&attrs, semconv::URL_FULL).is_none(),
                "{}",
                m.metric.name
            );
        }
    }
    receiver.stop().await;
}
