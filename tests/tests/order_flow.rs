//! The tour's order flow end to end: against the real PostgreSQL, MariaDB, Redis and RabbitMQ it is
//! one connected trace — every span's parent (and the consumer's link) checked, names and kinds
//! right — and a secret planted in the order (bound parameter, inline SQL literal, Redis value, AMQP
//! body) reaches no attribute, event or status anywhere.

use std::collections::HashMap;

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_semantic_conventions::attribute::HTTP_ROUTE;
use tracewire_demo::{Environment, Order, Service, run_order_flow};
use tracewire_shared::semconv::{self, db_system};
use tracewire_shared::testing::{Telemetry, attr_str, service_url};

fn full_environment() -> Environment {
    let mut env = Environment::embedded();
    for service in Service::ALL {
        let url = service_url(service.name(), service.env_var(), service.default_url());
        env = env.with(service, url);
    }
    env
}

fn named<'a>(spans: &'a [SpanData], name: &str, kind: SpanKind) -> &'a SpanData {
    let found: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == name && s.span_kind == kind)
        .collect();
    let all: Vec<String> = spans
        .iter()
        .map(|s| format!("{} ({:?})", s.name, s.span_kind))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind:?} span {name:?}; spans: {all:?}"
    );
    found[0]
}

fn id(span: &SpanData) -> SpanId {
    span.span_context.span_id()
}

/// Asserts that `secret` appears in no span name, attribute, event, link or status description.
fn assert_no_secret(spans: &[SpanData], secret: &str) {
    for s in spans {
        assert!(!s.name.contains(secret), "span name {:?}", s.name);
        for kv in &s.attributes {
            assert!(
                !kv.value.as_str().contains(secret),
                "{}: attribute {} = {}",
                s.name,
                kv.key,
                kv.value
            );
        }
        for event in s.events.iter() {
            assert!(!event.name.contains(secret));
            for kv in &event.attributes {
                assert!(
                    !kv.value.as_str().contains(secret),
                    "{}: event {} attribute {}",
                    s.name,
                    event.name,
                    kv.key
                );
            }
        }
        for link in s.links.iter() {
            for kv in &link.attributes {
                assert!(!kv.value.as_str().contains(secret), "{}: link", s.name);
            }
        }
        if let Status::Error { description } = &s.status {
            assert!(!description.contains(secret), "{}: status", s.name);
        }
    }
}

/// Asserts the spans form one tree: one trace id, one root (`checkout`), every other parent present.
fn assert_connected(spans: &[SpanData]) -> HashMap<SpanId, &SpanData> {
    let by_id: HashMap<SpanId, &SpanData> = spans.iter().map(|s| (id(s), s)).collect();
    assert_eq!(by_id.len(), spans.len(), "span ids are unique");
    let trace = spans[0].span_context.trace_id();
    let mut roots = Vec::new();
    for s in spans {
        assert_eq!(
            s.span_context.trace_id(),
            trace,
            "{} is in another trace",
            s.name
        );
        if s.parent_span_id == SpanId::INVALID {
            roots.push(s.name.to_string());
        } else {
            assert!(
                by_id.contains_key(&s.parent_span_id),
                "{}'s parent is not in the trace",
                s.name
            );
        }
    }
    assert_eq!(roots, ["checkout"]);
    by_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_flow_is_one_connected_trace_without_secrets() {
    let secret = tracewire_tests::secret("order");
    let t = Telemetry::new();
    let env = full_environment();
    let order = Order {
        customer: format!("{secret}@example.com"),
        sku: "sku-42".to_owned(),
        quantity: 3,
        note: format!("ring twice, door code {secret}"),
    };
    let report = run_order_flow(&env, &t.config(), &order)
        .await
        .expect("the order flow");
    assert_eq!(report.http_status, 201);
    assert_eq!(report.total_cents, 3 * 1999);
    assert_eq!(report.status, "confirmed", "the worker confirmed the order");
    assert_eq!(report.orders_db, db_system::POSTGRESQL);
    let queue = report.queue.clone().expect("RabbitMQ was used");
    assert_eq!(queue, format!("orders.{}", env.run_id));

    let spans = t.finished();
    assert_connected(&spans);
    assert_eq!(spans[0].span_context.trace_id(), report.trace_id);

    // Client → server, continued through `traceparent`.
    let checkout = named(&spans, "checkout", SpanKind::Internal);
    let client = named(&spans, "POST /orders", SpanKind::Client);
    let server = named(&spans, "POST /orders", SpanKind::Server);
    assert_eq!(client.parent_span_id, id(checkout));
    assert_eq!(server.parent_span_id, id(client));
    assert!(
        server.parent_span_is_remote,
        "the server extracted its parent"
    );
    assert_eq!(
        attr_str(client, semconv::HTTP_RESPONSE_STATUS_CODE).as_deref(),
        Some("201")
    );
    assert_eq!(
        attr_str(client, semconv::URL_TEMPLATE).as_deref(),
        Some("/orders")
    );
    assert_eq!(attr_str(server, HTTP_ROUTE).as_deref(), Some("/orders"));
    assert_eq!(
        attr_str(server, semconv::HTTP_RESPONSE_STATUS_CODE).as_deref(),
        Some("201")
    );

    // Everything the handler does is a CLIENT or PRODUCER child of the server span.
    let handler_work = [
        ("GET", SpanKind::Client, db_system::REDIS),
        ("SELECT products", SpanKind::Client, db_system::SQLITE),
        ("UPDATE products", SpanKind::Client, db_system::SQLITE),
        ("INSERT orders", SpanKind::Client, db_system::POSTGRESQL),
        (
            "INSERT order_notes",
            SpanKind::Client,
            db_system::POSTGRESQL,
        ),
        (
            "INSERT tracewire_demo_audit",
            SpanKind::Client,
            db_system::MARIADB,
        ),
    ];
    for (name, kind, system) in handler_work {
        let span = named(&spans, name, kind);
        assert_eq!(span.parent_span_id, id(server), "{name}'s parent");
        assert_eq!(
            attr_str(span, semconv::DB_SYSTEM_NAME).as_deref(),
            Some(system),
            "{name}'s db.system.name"
        );
    }
    let sets: Vec<&SpanData> = spans.iter().filter(|s| s.name == "SETEX").collect();
    assert_eq!(sets.len(), 2, "price and order cached");
    for set in &sets {
        assert_eq!(set.parent_span_id, id(server));
        assert_eq!(set.span_kind, SpanKind::Client);
    }
    // The planted values were there; the statements carry placeholders instead.
    let note = named(&spans, "INSERT order_notes", SpanKind::Client);
    assert_eq!(
        attr_str(note, semconv::DB_QUERY_TEXT).as_deref(),
        Some("INSERT INTO order_notes (order_id, note) VALUES (?, ?)")
    );
    let order_set = sets
        .iter()
        .find(|s| attr_str(s, semconv::DB_QUERY_TEXT).is_some_and(|q| q.contains(":order:")))
        .expect("the order SET");
    assert!(
        attr_str(order_set, semconv::DB_QUERY_TEXT)
            .unwrap()
            .ends_with(" ? ?"),
        "the expiry and the value are masked"
    );

    // The transaction's statements are children of the server span too.
    for s in spans
        .iter()
        .filter(|s| attr_str(s, semconv::DB_SYSTEM_NAME).as_deref() == Some(db_system::POSTGRESQL))
        .filter(|s| s.name != "UPDATE orders")
    {
        assert_eq!(s.parent_span_id, id(server), "{}'s parent", s.name);
    }

    // Producer → consumer (parent and link) → the worker's write.
    let publish = named(&spans, &format!("publish {queue}"), SpanKind::Producer);
    assert_eq!(publish.parent_span_id, id(server));
    let process = named(&spans, &format!("process {queue}"), SpanKind::Consumer);
    assert_eq!(process.parent_span_id, id(publish));
    assert_eq!(process.links.len(), 1, "one link to the creation context");
    assert_eq!(process.links[0].span_context.span_id(), id(publish));
    assert_eq!(
        attr_str(process, semconv::TRACEWIRE_MESSAGING_OUTCOME).as_deref(),
        Some("ack")
    );
    let confirm = named(&spans, "UPDATE orders", SpanKind::Client);
    assert_eq!(confirm.parent_span_id, id(process));

    // No span failed.
    for s in &spans {
        assert!(
            !matches!(s.status, Status::Error { .. }),
            "{} failed: {:?}",
            s.name,
            s.status
        );
    }
    assert_no_secret(&spans, &secret);

    // Metrics carry no secret either, and each store recorded its operations.
    let durations = t.metric(semconv::metric::DB_CLIENT_OPERATION_DURATION);
    for system in [
        db_system::POSTGRESQL,
        db_system::MARIADB,
        db_system::SQLITE,
        db_system::REDIS,
    ] {
        assert!(
            durations.iter().any(|p| p.attr_str(semconv::DB_SYSTEM_NAME)
                == Some(system.to_owned())
                && p.count > 0),
            "db.client.operation.duration for {system}"
        );
    }
    for point in t.metrics() {
        for kv in &point.attributes {
            assert!(
                !kv.value.as_str().contains(&secret),
                "metric {} attribute {}",
                point.name,
                kv.key
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_services_the_flow_runs_on_sqlite_alone() {
    let secret = tracewire_tests::secret("embedded");
    let t = Telemetry::new();
    let order = Order {
        note: secret.clone(),
        ..Order::default()
    };
    let report = run_order_flow(&Environment::embedded(), &t.config(), &order)
        .await
        .expect("the embedded flow");
    assert_eq!(report.http_status, 201);
    assert_eq!(report.status, "pending", "no broker, no worker");
    assert_eq!(report.orders_db, db_system::SQLITE);
    assert_eq!(report.queue, None);

    let spans = t.finished();
    assert_connected(&spans);
    let server = named(&spans, "POST /orders", SpanKind::Server);
    for name in [
        "SELECT products",
        "UPDATE products",
        "INSERT orders",
        "INSERT order_notes",
    ] {
        let span = named(&spans, name, SpanKind::Client);
        assert_eq!(span.parent_span_id, id(server), "{name}'s parent");
        assert_eq!(
            attr_str(span, semconv::DB_SYSTEM_NAME).as_deref(),
            Some(db_system::SQLITE)
        );
    }
    assert!(
        spans
            .iter()
            .all(|s| !matches!(s.span_kind, SpanKind::Producer | SpanKind::Consumer)),
        "nothing published"
    );
    assert!(
        spans
            .iter()
            .all(|s| attr_str(s, semconv::DB_SYSTEM_NAME).as_deref() != Some(db_system::REDIS)),
        "nothing cached"
    );
    assert_no_secret(&spans, &secret);
}
