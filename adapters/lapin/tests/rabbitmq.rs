//! Publish and consume against a real RabbitMQ: spans, propagation, settlement, metrics.

mod support;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation, ExchangeKind};
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceContextExt};
use tracewire_lapin::InstrumentedConsumer;
use tracewire_shared::context::FutureExt;
use tracewire_shared::semconv;
use tracewire_shared::testing::Telemetry;

use support::*;

async fn next(consumer: &mut InstrumentedConsumer) -> tracewire_lapin::InstrumentedDelivery {
    consumer
        .next()
        .await
        .expect("consumer ended")
        .expect("delivery")
}

/// Consumes `queue` and acks the first delivery.
async fn ack_one(channel: &tracewire_lapin::InstrumentedChannel, queue: &str) {
    let mut consumer = consume(channel, queue).await;
    next(&mut consumer)
        .await
        .ack(BasicAckOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn process_span_joins_the_publishers_trace_across_connections() {
    let t = Telemetry::new();
    let telemetry = telemetry(&t);
    let (pub_conn, sub_conn) = (connect().await, connect().await);
    let publisher = telemetry.channel(channel(&pub_conn).await);
    let subscriber = telemetry.channel(channel(&sub_conn).await);
    let queue = unique("trace");
    declare_queue(&publisher, &queue).await;

    let mut caller_headers = FieldTable::default();
    caller_headers.insert("tenant".into(), AMQPValue::LongString("acme".into()));
    caller_headers.insert("attempt".into(), AMQPValue::LongInt(2));
    let properties = BasicProperties::default()
        .with_message_id("msg-1".into())
        .with_correlation_id("conv-9".into())
        .with_headers(caller_headers);
    let request = t.parent("request");
    publisher
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            b"payload",
            properties,
        )
        .with_context(request.clone())
        .await
        .expect("publish")
        .await
        .expect("confirm");
    drop(request);

    let mut consumer = consume(&subscriber, &queue).await;
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.data, b"payload");
    let headers = delivery.properties.headers().clone().expect("headers");
    assert_eq!(
        headers.inner().get("tenant"),
        Some(&AMQPValue::LongString("acme".into()))
    );
    assert_eq!(headers.inner().get("attempt"), Some(&AMQPValue::LongInt(2)));
    assert!(matches!(
        headers.inner().get("traceparent"),
        Some(AMQPValue::LongString(_))
    ));
    let process_span_id = delivery.context().span().span_context().span_id();
    assert!(
        t.finished()
            .iter()
            .all(|s| s.span_kind != SpanKind::Consumer)
    );
    assert!(delivery.ack(BasicAckOptions::default()).await.expect("ack"));

    let request = t.span("request");
    let publish = t.span(&format!("publish {queue}"));
    let process = t.span(&format!("process {queue}"));
    assert_eq!(publish.span_kind, SpanKind::Producer);
    assert_eq!(publish.parent_span_id, request.span_context.span_id());
    assert_eq!(
        publish.span_context.trace_id(),
        request.span_context.trace_id()
    );
    for (key, value) in [
        (semconv::MESSAGING_SYSTEM, "rabbitmq"),
        (semconv::MESSAGING_OPERATION_TYPE, "send"),
        (semconv::MESSAGING_OPERATION_NAME, "publish"),
        (semconv::MESSAGING_DESTINATION_NAME, queue.as_str()),
        (
            semconv::MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY,
            queue.as_str(),
        ),
        (semconv::MESSAGING_MESSAGE_ID, "msg-1"),
        (semconv::MESSAGING_MESSAGE_CONVERSATION_ID, "conv-9"),
        (semconv::SERVER_ADDRESS, "127.0.0.1"),
    ] {
        assert_eq!(str_attr(&publish, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(int_attr(&publish, semconv::SERVER_PORT), Some(5672));
    assert_eq!(
        str_attr(&publish, semconv::MESSAGING_MESSAGE_BODY_SIZE),
        None
    );
    assert_eq!(publish.status, Status::Unset);

    assert_eq!(process.span_kind, SpanKind::Consumer);
    assert_eq!(process.span_context.span_id(), process_span_id);
    assert_eq!(
        process.span_context.trace_id(),
        publish.span_context.trace_id()
    );
    assert_eq!(process.parent_span_id, publish.span_context.span_id());
    assert!(process.parent_span_is_remote);
    assert_eq!(link_ids(&process), vec![publish.span_context.span_id()]);
    for (key, value) in [
        (semconv::MESSAGING_SYSTEM, "rabbitmq"),
        (semconv::MESSAGING_OPERATION_TYPE, "process"),
        (semconv::MESSAGING_OPERATION_NAME, "process"),
        (semconv::MESSAGING_DESTINATION_NAME, queue.as_str()),
        (semconv::MESSAGING_MESSAGE_ID, "msg-1"),
        (semconv::MESSAGING_MESSAGE_CONVERSATION_ID, "conv-9"),
        (semconv::TRACEWIRE_MESSAGING_OUTCOME, "ack"),
    ] {
        assert_eq!(str_attr(&process, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(
        int_attr(&process, semconv::MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG),
        Some(1)
    );
    assert_eq!(
        bool_attr(&process, semconv::TRACEWIRE_MESSAGING_REQUEUE),
        None
    );
    assert_eq!(bool_attr(&process, semconv::TRACEWIRE_CANCELLED), None);
    assert_no_secret(&t.finished());

    let sent = t.metric(semconv::metric::MESSAGING_CLIENT_SENT_MESSAGES);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].value, 1.0);
    assert_eq!(sent[0].unit, "{message}");
    assert_eq!(
        sent[0].attr_str(semconv::MESSAGING_DESTINATION_NAME),
        Some(queue.clone())
    );
    let consumed = t.metric(semconv::metric::MESSAGING_CLIENT_CONSUMED_MESSAGES);
    assert_eq!(consumed.len(), 1);
    assert_eq!(consumed[0].value, 1.0);
    let process_duration = t.metric(semconv::metric::MESSAGING_PROCESS_DURATION);
    assert_eq!(process_duration.len(), 1);
    assert_eq!(process_duration[0].count, 1);
    assert_eq!(process_duration[0].unit, "s");
    assert_eq!(process_duration[0].bounds.first(), Some(&0.005));
    let op_duration = t.metric(semconv::metric::MESSAGING_CLIENT_OPERATION_DURATION);
    assert_eq!(op_duration.len(), 1);
    assert_eq!(op_duration[0].count, 1);
    assert_eq!(
        op_duration[0].attr_str(semconv::MESSAGING_OPERATION_NAME),
        Some("publish".to_owned())
    );
    for point in t.metrics() {
        assert!(point.attr(semconv::MESSAGING_MESSAGE_ID).is_none());
    }
    delete_queue(&publisher, &queue).await;
}

#[tokio::test]
async fn ambient_span_parents_the_process_span_and_the_creation_span_is_linked() {
    let t = Telemetry::new();
    let telemetry = telemetry(&t);
    let connection = connect().await;
    let ch = telemetry.channel(channel(&connection).await);
    let queue = unique("ambient");
    declare_queue(&ch, &queue).await;
    publish_to(&ch, &queue, b"x").await;
    let mut consumer = consume(&ch, &queue).await;
    let worker = t.parent("worker");
    let delivery = async { next(&mut consumer).await }
        .with_context(worker.clone())
        .await;
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    drop(worker);

    let worker = t.span("worker");
    let publish = t.span(&format!("publish {queue}"));
    let process = t.span(&format!("process {queue}"));
    assert_eq!(process.parent_span_id, worker.span_context.span_id());
    assert_eq!(
        process.span_context.trace_id(),
        worker.span_context.trace_id()
    );
    assert_ne!(
        process.span_context.trace_id(),
        publish.span_context.trace_id()
    );
    assert_eq!(link_ids(&process), vec![publish.span_context.span_id()]);
    assert_eq!(
        process.links.links[0].span_context.trace_id(),
        publish.span_context.trace_id()
    );
    delete_queue(&ch, &queue).await;
}

#[tokio::test]
async fn nack_with_requeue_is_redelivered_in_the_same_trace() {
    let t = Telemetry::new();
    let telemetry = telemetry(&t);
    let connection = connect().await;
    let ch = telemetry.channel(channel(&connection).await);
    let queue = unique("nack");
    declare_queue(&ch, &queue).await;
    publish_to(&ch, &queue, b"retry me").await;
    let mut consumer = consume(&ch, &queue).await;
    let first = next(&mut consumer).await;
    assert!(!first.redelivered);
    let nack = BasicNackOptions {
        requeue: true,
        ..BasicNackOptions::default()
    };
    assert!(first.nack(nack).await.unwrap());
    assert!(first.is_settled());
    let second = next(&mut consumer).await;
    assert!(second.redelivered);
    assert_eq!(second.data, b"retry me");
    second.ack(BasicAckOptions::default()).await.unwrap();

    let publish = t.span(&format!("publish {queue}"));
    let processes = t.spans_of_kind(SpanKind::Consumer);
    assert_eq!(processes.len(), 2);
    for process in &processes {
        assert_eq!(process.name, format!("process {queue}"));
        assert_eq!(
            process.span_context.trace_id(),
            publish.span_context.trace_id()
        );
        assert_eq!(process.parent_span_id, publish.span_context.span_id());
        assert_eq!(link_ids(process), vec![publish.span_context.span_id()]);
    }
    let (nacked, acked) = (&processes[0], &processes[1]);
    assert_eq!(
        str_attr(nacked, semconv::TRACEWIRE_MESSAGING_OUTCOME).as_deref(),
        Some("nack")
    );
    assert_eq!(
        bool_attr(nacked, semconv::TRACEWIRE_MESSAGING_REQUEUE),
        Some(true)
    );
    assert_eq!(nacked.status, Status::Unset);
    assert_eq!(
        str_attr(acked, semconv::TRACEWIRE_MESSAGING_OUTCOME).as_deref(),
        Some("ack")
    );
    assert_ne!(
        int_attr(nacked, semconv::MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG),
        int_attr(acked, semconv::MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG)
    );
    delete_queue(&ch, &queue).await;
}

#[tokio::test]
async fn reject_without_requeue_and_receive_spans() {
    let t = Telemetry::new();
    let telemetry = telemetry(&t);
    let connection = connect().await;
    let ch = telemetry.channel(channel(&connection).await);
    let queue = unique("reject");
    declare_queue(&ch, &queue).await;
    for body in [&b"a"[..], b"b"] {
        publish_to(&ch, &queue, body).await;
    }
    // Pull the first message: a CLIENT receive span, and the creation context for processing.
    let got = ch
        .basic_get(queue.as_str().into(), BasicGetOptions::default())
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(got.delivery.data, b"a");
    let creation = got.creation_context().span().span_context().clone();
    got.ack(BasicAckOptions::default()).await.unwrap();

    let mut consumer = consume(&ch, &queue).await;
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.data, b"b");
    delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    // Nothing is left: the rejected message was dropped, and an empty get is traced too.
    assert!(
        ch.basic_get(queue.as_str().into(), BasicGetOptions::default())
            .await
            .unwrap()
            .is_none()
    );

    let publishes: Vec<_> = t
        .spans_of_kind(SpanKind::Producer)
        .into_iter()
        .map(|s| s.span_context.span_id())
        .collect();
    assert_eq!(publishes.len(), 2);
    assert_eq!(creation.span_id(), publishes[0]);
    let receives = t.spans_of_kind(SpanKind::Client);
    assert_eq!(receives.len(), 2);
    for receive in &receives {
        assert_eq!(receive.name, format!("receive {queue}"));
        assert_eq!(
            str_attr(receive, semconv::MESSAGING_OPERATION_TYPE).as_deref(),
            Some("receive")
        );
        assert_eq!(
            str_attr(receive, semconv::MESSAGING_DESTINATION_NAME).as_deref(),
            Some(queue.as_str())
        );
    }
    assert_eq!(
        int_attr(
            &receives[0],
            semconv::MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG
        ),
        Some(1)
    );
    assert_eq!(
        int_attr(
            &receives[1],
            semconv::MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG
        ),
        None
    );
    // The receive span that got a message links to its creation (publish) span; the empty one has none.
    let linked: Vec<_> = receives[0]
        .links
        .iter()
        .map(|l| l.span_context.span_id())
        .collect();
    assert_eq!(linked, vec![publishes[0]]);
    assert!(receives[1].links.is_empty());
    let process = t.span(&format!("process {queue}"));
    assert_eq!(process.parent_span_id, publishes[1]);
    assert_eq!(
        str_attr(&process, semconv::TRACEWIRE_MESSAGING_OUTCOME).as_deref(),
        Some("reject")
    );
    assert_eq!(
        bool_attr(&process, semconv::TRACEWIRE_MESSAGING_REQUEUE),
        Some(false)
    );
    let consumed = t.metric(semconv::metric::MESSAGING_CLIENT_CONSUMED_MESSAGES);
    let total: f64 = consumed.iter().map(|p| p.value).sum();
    assert_eq!(total, 2.0, "one get and one delivery: {consumed:?}");
    delete_queue(&ch, &queue).await;
}

#[tokio::test]
async fn default_and_topic_exchange_destination_names() {
    let t = Telemetry::new();
    let telemetry = telemetry(&t);
    let connection = connect().await;
    let ch = telemetry.channel(channel(&connection).await);

    // The default exchange with no routing key routes nowhere, but the publish is still traced.
    publish_to(&ch, "", b"void").await;
    let default = t.span("publish amq.default");
    assert_eq!(
        str_attr(&default, semconv::MESSAGING_DESTINATION_NAME).as_deref(),
        Some("amq.default")
    );
    assert_eq!(
        str_attr(
            &default,
            semconv::MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY
        ),
        None
    );

    let exchange = unique("topic");
    let queue = unique("topic-q");
    ch.exchange_declare(
        exchange.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare_queue(&ch, &queue).await;
    ch.queue_bind(
        queue.as_str().into(),
        exchange.as_str().into(),
        "orders.*".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.basic_publish(
        exchange.as_str().into(),
        "orders.created".into(),
        BasicPublishOptions::default(),
        b"{}",
        BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    ack_one(&ch, &queue).await;

    let publish = t.span(&format!("publish {exchange}:orders.created"));
    assert_eq!(
        str_attr(&publish, semconv::MESSAGING_DESTINATION_NAME),
        Some(format!("{exchange}:orders.created"))
    );
    assert_eq!(
        str_attr(
            &publish,
            semconv::MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY
        )
        .as_deref(),
        Some("orders.created")
    );
    let process = t.span(&format!("process {exchange}:orders.created:{queue}"));
    assert_eq!(
        str_attr(&process, semconv::MESSAGING_DESTINATION_NAME),
        Some(format!("{exchange}:orders.created:{queue}"))
    );
    assert_eq!(
        str_attr(
            &process,
            semconv::MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY
        )
        .as_deref(),
        Some("orders.created")
    );
    assert_eq!(process.parent_span_id, publish.span_context.span_id());
    delete_queue(&ch, &queue).await;
    let _ = ch
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await;
}

#[tokio::test]
async fn publisher_confirms_keep_the_span_open_until_resolved() {
    let t = Telemetry::new();
    let telemetry = telemetry(&t);
    let connection = connect().await;
    let ch = telemetry.channel(channel(&connection).await);
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let queue = unique("confirm");
    declare_queue(&ch, &queue).await;

    let confirm = ch
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            b"1",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    assert!(
        t.spans_of_kind(SpanKind::Producer).is_empty(),
        "the span waits for the confirmation"
    );
    assert!(confirm.await.unwrap().is_ack());
    let acked = t.span(&format!("publish {queue}"));
    assert_eq!(acked.status, Status::Unset);
    assert_eq!(bool_attr(&acked, semconv::TRACEWIRE_CANCELLED), None);

    // A mandatory message nobody can route comes back with the ack: the publish failed.
    let nowhere = unique("nowhere");
    let confirmation = ch
        .basic_publish(
            "".into(),
            nowhere.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            b"2",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(confirmation, Confirmation::Ack(Some(_))));
    let returned = t.span(&format!("publish {nowhere}"));
    assert_eq!(
        str_attr(&returned, semconv::ERROR_TYPE).as_deref(),
        Some("NO-ROUTE")
    );
    assert!(matches!(returned.status, Status::Error { .. }));

    // A confirm dropped unresolved ends the span, marked cancelled, without an error.
    let dropped_queue = unique("dropped");
    declare_queue(&ch, &dropped_queue).await;
    let confirm = ch
        .basic_publish(
            "".into(),
            dropped_queue.as_str().into(),
            BasicPublishOptions::default(),
            b"3",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    drop(confirm);
    let dropped = t.span(&format!("publish {dropped_queue}"));
    assert_eq!(
        bool_attr(&dropped, semconv::TRACEWIRE_CANCELLED),
        Some(true)
    );
    assert_eq!(dropped.status, Status::Unset);
    ch.wait_for_confirms().await.unwrap();

    let durations = t.metric(semconv::metric::MESSAGING_CLIENT_OPERATION_DURATION);
    let with_error: Vec<_> = durations
        .iter()
        .filter(|p| p.attr(semconv::ERROR_TYPE).is_some())
        .collect();
    assert_eq!(with_error.len(), 1);
    assert_eq!(with_error[0].count, 1);
    let recorded: u64 = durations.iter().map(|p| p.count).sum();
    assert_eq!(recorded, 2, "the dropped confirm records no duration");
    delete_queue(&ch, &queue).await;
    delete_queue(&ch, &dropped_queue).await;
}

#[tokio::test]
async fn bad_trace_headers_start_new_traces_without_links() {
    let t = Telemetry::new();
    let telemetry = telemetry(&t);
    let connection = connect().await;
    let bare = channel(&connection).await;
    let queue = unique("badheaders");
    declare_queue(&bare, &queue).await;
    let long_key = "k".repeat(255);
    let bad_values = vec![
        None,
        Some(AMQPValue::LongLongInt(42)),
        Some(AMQPValue::LongString("garbage".into())),
        Some(AMQPValue::LongString(
            "00-00000000000000000000000000000000-0000000000000000-01".into(),
        )),
        Some(AMQPValue::LongString(vec![0xff, 0xfe, 0xfd].into())),
        Some(AMQPValue::LongString("9".repeat(70_000).into())),
        Some(AMQPValue::FieldTable(FieldTable::default())),
    ];
    let count = bad_values.len();
    for value in bad_values {
        let mut headers = FieldTable::default();
        headers.insert(long_key.as_str().into(), AMQPValue::Boolean(true));
        if let Some(v) = value {
            headers.insert("traceparent".into(), v);
        }
        bare.basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default().with_headers(headers),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let ch = telemetry.channel(channel(&connection).await);
    let mut consumer = consume(&ch, &queue).await;
    for _ in 0..count {
        let delivery = next(&mut consumer).await;
        assert!(
            delivery
                .properties
                .headers()
                .as_ref()
                .unwrap()
                .contains_key(&long_key)
        );
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    let processes = t.spans_of_kind(SpanKind::Consumer);
    assert_eq!(processes.len(), count);
    let mut traces = std::collections::HashSet::new();
    for process in &processes {
        assert_eq!(process.parent_span_id, SpanId::INVALID, "a new trace");
        assert!(process.links.links.is_empty());
        traces.insert(process.span_context.trace_id());
    }
    assert_eq!(traces.len(), count);
    delete_queue(&bare, &queue).await;
}

#[tokio::test]
async fn dropped_delivery_ends_its_span_and_body_size_is_opt_in() {
    let t = Telemetry::new();
    let telemetry = tracewire_lapin::LapinTelemetry::builder()
        .config(t.config().with_opt_in(semconv::MESSAGING_MESSAGE_BODY_SIZE))
        .build();
    let connection = connect().await;
    let ch = telemetry.channel(channel(&connection).await);
    let queue = unique("drop");
    declare_queue(&ch, &queue).await;
    publish_to(&ch, &queue, b"12345").await;
    let mut consumer = consume(&ch, &queue).await;
    let delivery = next(&mut consumer).await;
    assert!(!delivery.is_settled());
    drop(delivery);

    let publish = t.span(&format!("publish {queue}"));
    assert_eq!(
        int_attr(&publish, semconv::MESSAGING_MESSAGE_BODY_SIZE),
        Some(5)
    );
    assert_eq!(str_attr(&publish, semconv::SERVER_ADDRESS), None);
    let process = t.span(&format!("process {queue}"));
    assert_eq!(
        int_attr(&process, semconv::MESSAGING_MESSAGE_BODY_SIZE),
        Some(5)
    );
    assert_eq!(
        str_attr(&process, semconv::TRACEWIRE_MESSAGING_OUTCOME).as_deref(),
        Some("dropped")
    );
    assert_eq!(
        bool_attr(&process, semconv::TRACEWIRE_CANCELLED),
        Some(true)
    );
    assert_eq!(process.status, Status::Unset);
    delete_queue(&ch, &queue).await;
}

#[tokio::test]
async fn unsampled_publish_still_propagates_the_decision() {
    let t = Telemetry::unsampled();
    let telemetry = telemetry(&t);
    let connection = connect().await;
    let ch = telemetry.channel(channel(&connection).await);
    let queue = unique("unsampled");
    declare_queue(&ch, &queue).await;
    publish_to(&ch, &queue, b"x").await;
    let mut consumer = ch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let delivery = next(&mut consumer).await;
    let headers = delivery.properties.headers().clone().unwrap();
    let Some(AMQPValue::LongString(traceparent)) = headers.inner().get("traceparent") else {
        panic!("no traceparent: {headers:?}");
    };
    assert!(traceparent.to_string().ends_with("-00"), "{traceparent}");
    let sc = delivery.context().span().span_context().clone();
    assert!(sc.is_valid() && !sc.is_sampled());
    drop(delivery);
    assert!(t.finished().is_empty());
    assert_eq!(
        t.metric(semconv::metric::MESSAGING_CLIENT_SENT_MESSAGES)
            .len(),
        1,
        "metrics do not depend on sampling"
    );
    delete_queue(&ch, &queue).await;
}

/// Each duration point and its span read the clock together: the recorded durations are the spans'
/// own, exactly, for a confirmed publish, a `basic_get` and a processed delivery.
#[tokio::test]
async fn duration_points_are_the_span_durations() {
    let connection = connect().await;
    let queue = unique("durations");
    let took = |span: &opentelemetry_sdk::trace::SpanData| {
        span.end_time
            .duration_since(span.start_time)
            .unwrap()
            .as_secs_f64()
    };

    let t = Telemetry::new();
    let ch = telemetry(&t).channel(channel(&connection).await);
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    declare_queue(&ch, &queue).await;
    for body in [b"1", b"2"] {
        assert!(publish_to(&ch, &queue, body).await.is_ack());
    }
    let published = t.spans_of_kind(SpanKind::Producer);
    assert_eq!(published.len(), 2);
    let points = t.metric(semconv::metric::MESSAGING_CLIENT_OPERATION_DURATION);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].count, 2);
    assert_eq!(points[0].value, took(&published[0]) + took(&published[1]));

    let t = Telemetry::new();
    let ch = telemetry(&t).channel(channel(&connection).await);
    let message = ch
        .basic_get(queue.as_str().into(), BasicGetOptions::default())
        .await
        .unwrap()
        .expect("the first message");
    message.ack(BasicAckOptions::default()).await.unwrap();
    let received = t.span(&format!("receive {queue}"));
    let points = t.metric(semconv::metric::MESSAGING_CLIENT_OPERATION_DURATION);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].count, 1);
    assert_eq!(points[0].value, took(&received));

    let t = Telemetry::new();
    let ch = telemetry(&t).channel(channel(&connection).await);
    ack_one(&ch, &queue).await;
    let processed = t.span(&format!("process {queue}"));
    let points = t.metric(semconv::metric::MESSAGING_PROCESS_DURATION);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].count, 1);
    assert_eq!(points[0].value, took(&processed));
    delete_queue(&ch, &queue).await;
}
