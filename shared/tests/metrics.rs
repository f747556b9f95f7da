//! Instruments: names, units, bucket boundaries and attributes, read back through the in-memory exporter.

use std::sync::{Arc, Weak};

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider;
use tracewire_shared::metrics::{
    DB_DURATION_BOUNDARIES, DbClientMetrics, HTTP_DURATION_BOUNDARIES, HttpClientMetrics,
    MessagingMetrics, PoolMetrics, PoolSnapshot, RETURNED_ROWS_BOUNDARIES, observe_pool,
};
use tracewire_shared::semconv::{self, metric};
use tracewire_shared::testing::Telemetry;

#[test]
fn db_client_instruments() {
    let t = Telemetry::new();
    let m = DbClientMetrics::new(&t.meter_provider.meter("db"));
    let attrs = [
        KeyValue::new(semconv::DB_SYSTEM_NAME, "postgresql"),
        KeyValue::new(semconv::ERROR_TYPE, "23505"),
    ];
    m.operation_duration.record(0.003, &attrs);
    m.operation_duration.record(0.2, &attrs);
    m.returned_rows.record(7, &attrs[..1]);

    let d = t.metric(metric::DB_CLIENT_OPERATION_DURATION);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].name, "db.client.operation.duration");
    assert_eq!(d[0].unit, "s");
    assert_eq!(d[0].kind, "histogram");
    assert_eq!(d[0].count, 2);
    assert!((d[0].value - 0.203).abs() < 1e-9);
    assert_eq!(d[0].bounds, DB_DURATION_BOUNDARIES);
    assert_eq!(
        d[0].bounds,
        [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]
    );
    assert_eq!(d[0].attr_str(semconv::ERROR_TYPE).as_deref(), Some("23505"));

    let r = t.metric(metric::DB_CLIENT_RESPONSE_RETURNED_ROWS);
    assert_eq!(r[0].unit, "{row}");
    assert_eq!(r[0].bounds, RETURNED_ROWS_BOUNDARIES);
    assert_eq!(r[0].value, 7.0);
}

#[test]
fn http_and_messaging_instruments() {
    let t = Telemetry::new();
    let meter = t.meter_provider.meter("x");
    let http = HttpClientMetrics::new(&meter);
    http.request_duration
        .record(0.03, &[KeyValue::new(semconv::HTTP_REQUEST_METHOD, "GET")]);
    http.active_requests.add(1, &[]);
    http.active_requests.add(1, &[]);
    http.active_requests.add(-1, &[]);
    let mq = MessagingMetrics::new(&meter);
    mq.operation_duration.record(0.001, &[]);
    mq.process_duration.record(0.002, &[]);
    mq.sent_messages.add(
        3,
        &[KeyValue::new(semconv::MESSAGING_DESTINATION_NAME, "orders")],
    );
    mq.consumed_messages.add(2, &[]);

    let d = &t.metric(metric::HTTP_CLIENT_REQUEST_DURATION)[0];
    assert_eq!(
        (d.unit.as_str(), d.bounds.as_slice()),
        ("s", HTTP_DURATION_BOUNDARIES)
    );
    assert_eq!(d.bounds.len(), 14);
    let a = &t.metric(metric::HTTP_CLIENT_ACTIVE_REQUESTS)[0];
    assert_eq!(
        (a.unit.as_str(), a.kind, a.value),
        ("{request}", "sum", 1.0)
    );
    for name in [
        metric::MESSAGING_CLIENT_OPERATION_DURATION,
        metric::MESSAGING_PROCESS_DURATION,
    ] {
        let p = &t.metric(name)[0];
        assert_eq!(
            (p.unit.as_str(), p.bounds.as_slice(), p.count),
            ("s", HTTP_DURATION_BOUNDARIES, 1)
        );
    }
    let sent = &t.metric(metric::MESSAGING_CLIENT_SENT_MESSAGES)[0];
    assert_eq!((sent.unit.as_str(), sent.value), ("{message}", 3.0));
    assert_eq!(
        sent.attr_str(semconv::MESSAGING_DESTINATION_NAME)
            .as_deref(),
        Some("orders")
    );
    assert_eq!(
        t.metric(metric::MESSAGING_CLIENT_CONSUMED_MESSAGES)[0].value,
        2.0
    );
}

#[test]
fn pool_instruments_observe_the_snapshot_until_the_pool_is_gone() {
    let t = Telemetry::new();
    let meter = t.meter_provider.meter("pool");
    let pool = Arc::new(PoolSnapshot {
        idle: Some(3),
        used: Some(2),
        max: Some(10),
        idle_max: Some(5),
        idle_min: None,
        pending_requests: Some(1),
    });
    let weak: Weak<PoolSnapshot> = Arc::downgrade(&pool);
    let _observers = observe_pool(&meter, "main", move || weak.upgrade().map(|s| *s));
    let events = PoolMetrics::new(&meter, "main");
    events.wait_time.record(0.0004, events.attributes());
    events.timeouts.add(1, events.attributes());

    let count = t.metric(metric::DB_CLIENT_CONNECTION_COUNT);
    assert_eq!(count.len(), 2);
    for p in &count {
        assert_eq!(p.unit, "{connection}");
        assert_eq!(
            p.attr_str(semconv::DB_CLIENT_CONNECTION_POOL_NAME)
                .as_deref(),
            Some("main")
        );
        let state = p
            .attr(semconv::DB_CLIENT_CONNECTION_STATE)
            .unwrap()
            .as_str()
            .into_owned();
        assert_eq!(p.value, if state == "idle" { 3.0 } else { 2.0 }, "{state}");
    }
    assert_eq!(t.metric(metric::DB_CLIENT_CONNECTION_MAX)[0].value, 10.0);
    assert_eq!(
        t.metric(metric::DB_CLIENT_CONNECTION_IDLE_MAX)[0].value,
        5.0
    );
    assert!(
        t.metric(metric::DB_CLIENT_CONNECTION_IDLE_MIN).is_empty(),
        "not exposed, not reported"
    );
    let pending = &t.metric(metric::DB_CLIENT_CONNECTION_PENDING_REQUESTS)[0];
    assert_eq!((pending.unit.as_str(), pending.value), ("{request}", 1.0));
    let wait = &t.metric(metric::DB_CLIENT_CONNECTION_WAIT_TIME)[0];
    assert_eq!(
        (wait.unit.as_str(), wait.bounds.as_slice(), wait.count),
        ("s", DB_DURATION_BOUNDARIES, 1)
    );
    let timeouts = &t.metric(metric::DB_CLIENT_CONNECTION_TIMEOUTS)[0];
    assert_eq!((timeouts.unit.as_str(), timeouts.value), ("{timeout}", 1.0));

    drop(pool);
    let after = t.metric(metric::DB_CLIENT_CONNECTION_COUNT);
    assert!(
        after.iter().all(|p| p.value == 0.0) || after.is_empty(),
        "{after:?}"
    );
}
