//! The task runner against a real RabbitMQ: concurrency, failures, panics, graceful shutdown.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, BasicQosOptions};
use lapin::types::FieldTable;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId, Tracer, TracerProvider};
use tracewire_lapin::{InstrumentedChannel, RequeuePolicy, Task, TaskRunner};
use tracewire_shared::semconv;
use tracewire_shared::testing::Telemetry;

use support::*;

async fn publish(ch: &InstrumentedChannel, queue: &str, body: &[u8], id: &str) {
    ch.basic_publish(
        "".into(),
        queue.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default().with_message_id(id.into()),
    )
    .await
    .expect("publish")
    .await
    .expect("confirm");
}

/// Waits (polling, bounded) until `done` holds; the bound only keeps a broken test from hanging.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..6_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_messages_with_concurrency_eight() {
    const N: usize = 1_000;
    let t = Telemetry::new();
    let telemetry = telemetry(&t);
    let (pub_conn, sub_conn) = (connect().await, connect().await);
    let publisher = telemetry.channel(channel(&pub_conn).await);
    let subscriber = telemetry.channel(channel(&sub_conn).await);
    let queue = unique("runner1000");
    declare_queue(&publisher, &queue).await;
    for i in 0..N {
        publish(&publisher, &queue, i.to_string().as_bytes(), &i.to_string()).await;
    }
    subscriber
        .basic_qos(32, BasicQosOptions::default())
        .await
        .unwrap();

    let tracer = t.tracer_provider.tracer("handler");
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let (flight, max, count) = (in_flight.clone(), max_in_flight.clone(), handled.clone());
    let handle = TaskRunner::new(consume(&subscriber, &queue).await)
        .concurrency(8)
        .run(move |task: Task| {
            let (flight, max, count, tracer) =
                (flight.clone(), max.clone(), count.clone(), tracer.clone());
            async move {
                let now = flight.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                // A span made by the handler (as a database client would) joins the message's trace.
                let body = String::from_utf8(task.data).unwrap();
                let child = tracer.start(format!("handle {body}"));
                tokio::task::yield_now().await;
                drop(child);
                flight.fetch_sub(1, Ordering::SeqCst);
                count.fetch_add(1, Ordering::SeqCst);
                Ok::<(), String>(())
            }
        });
    until(|| t.spans_of_kind(SpanKind::Consumer).len() == N).await;
    let report = handle.shutdown().await;
    assert_eq!(report.received, N as u64);
    assert_eq!(report.succeeded, N as u64);
    assert_eq!(report.failed + report.panicked + report.settle_errors, 0);
    assert_eq!(handled.load(Ordering::SeqCst), N);
    let max = max_in_flight.load(Ordering::SeqCst);
    assert!(
        (1..=8).contains(&max),
        "at most 8 handlers at once, saw {max}"
    );

    let spans = t.finished();
    let publishes: HashMap<String, (TraceId, SpanId)> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Producer)
        .map(|s| {
            (
                str_attr(s, semconv::MESSAGING_MESSAGE_ID).unwrap(),
                (s.span_context.trace_id(), s.span_context.span_id()),
            )
        })
        .collect();
    assert_eq!(publishes.len(), N);
    let processes: HashMap<String, (TraceId, SpanId)> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Consumer)
        .map(|s| {
            let id = str_attr(s, semconv::MESSAGING_MESSAGE_ID).unwrap();
            let (trace, publish_span) = publishes[&id];
            assert_eq!(s.span_context.trace_id(), trace, "message {id}");
            assert_eq!(s.parent_span_id, publish_span, "message {id}");
            assert_eq!(link_ids(s), vec![publish_span]);
            assert_eq!(
                str_attr(s, semconv::TRACEWIRE_MESSAGING_OUTCOME).as_deref(),
                Some("ack")
            );
            assert_eq!(s.status, Status::Unset);
            (id, (s.span_context.trace_id(), s.span_context.span_id()))
        })
        .collect();
    assert_eq!(
        processes.len(),
        N,
        "one process span per message, none lost"
    );
    let mut children = HashSet::new();
    for child in spans.iter().filter(|s| s.name.starts_with("handle ")) {
        let id = child.name.trim_start_matches("handle ").to_owned();
        let (trace, process_span) = processes[&id];
        assert_eq!(
            child.span_context.trace_id(),
            trace,
            "child of message {id}"
        );
        assert_eq!(child.parent_span_id, process_span, "child of message {id}");
        children.insert(id);
    }
    assert_eq!(children.len(), N);
    assert_eq!(ready_messages(&publisher, &queue).await, 0);
    delete_queue(&publisher, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_panics_are_recorded_and_the_runner_keeps_going() {
    let t = Telemetry::new();
    let telemetry = telemetry(&t);
    let connection = connect().await;
    let ch = telemetry.channel(channel(&connection).await);
    let queue = unique("runnerpanic");
    declare_queue(&ch, &queue).await;
    for (i, body) in ["ok", "panic", "fail", "ok"].iter().enumerate() {
        publish(&ch, &queue, body.as_bytes(), &i.to_string()).await;
    }
    let handle = TaskRunner::new(consume(&ch, &queue).await)
        .concurrency(2)
        .requeue(RequeuePolicy::Never)
        .run(|task: Task| async move {
            match task.data.as_slice() {
                b"panic" => panic!("handler exploded on purpose"),
                b"fail" => Err("payment declined".to_owned()),
                _ => Ok(()),
            }
        });
    until(|| t.spans_of_kind(SpanKind::Consumer).len() == 4).await;
    let report = handle.shutdown().await;
    assert_eq!(
        (
            report.received,
            report.succeeded,
            report.failed,
            report.panicked
        ),
        (4, 2, 1, 1)
    );
    assert_eq!(report.settle_errors, 0);

    let by_id: HashMap<String, _> = t
        .spans_of_kind(SpanKind::Consumer)
        .into_iter()
        .map(|s| (str_attr(&s, semconv::MESSAGING_MESSAGE_ID).unwrap(), s))
        .collect();
    for ok in ["0", "3"] {
        assert_eq!(
            str_attr(&by_id[ok], semconv::TRACEWIRE_MESSAGING_OUTCOME).as_deref(),
            Some("ack")
        );
        assert_eq!(by_id[ok].status, Status::Unset);
    }
    let panicked = &by_id["1"];
    assert_eq!(
        str_attr(panicked, semconv::ERROR_TYPE).as_deref(),
        Some("panic")
    );
    assert_eq!(
        str_attr(panicked, semconv::TRACEWIRE_MESSAGING_OUTCOME).as_deref(),
        Some("nack")
    );
    assert_eq!(
        bool_attr(panicked, semconv::TRACEWIRE_MESSAGING_REQUEUE),
        Some(false)
    );
    assert!(matches!(panicked.status, Status::Error { .. }));
    let exception = panicked
        .events
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("exception event");
    assert!(
        exception
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == semconv::EXCEPTION_MESSAGE
                && kv.value.as_str() == "handler exploded on purpose")
    );

    let failed = &by_id["2"];
    assert_eq!(
        str_attr(failed, semconv::ERROR_TYPE).as_deref(),
        Some(std::any::type_name::<String>())
    );
    assert_eq!(
        str_attr(failed, semconv::TRACEWIRE_MESSAGING_OUTCOME).as_deref(),
        Some("reject")
    );
    assert_eq!(
        bool_attr(failed, semconv::TRACEWIRE_MESSAGING_REQUEUE),
        Some(false)
    );
    assert_eq!(failed.status, Status::error("payment declined".to_owned()));
    let durations = t.metric(semconv::metric::MESSAGING_PROCESS_DURATION);
    let failed_points: u64 = durations
        .iter()
        .filter(|p| p.attr(semconv::ERROR_TYPE).is_some())
        .map(|p| p.count)
        .sum();
    assert_eq!(failed_points, 2);
    assert_eq!(ready_messages(&ch, &queue).await, 0, "nothing requeued");
    delete_queue(&ch, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_messages_are_requeued_once_with_unless_redelivered() {
    let t = Telemetry::new();
    let telemetry = telemetry(&t);
    let connection = connect().await;
    let ch = telemetry.channel(channel(&connection).await);
    let queue = unique("runnerrequeue");
    declare_queue(&ch, &queue).await;
    publish(&ch, &queue, b"always fails", "0").await;
    let handle = TaskRunner::new(consume(&ch, &queue).await)
        .requeue(RequeuePolicy::UnlessRedelivered)
        .run(|_task: Task| async { Err::<(), _>("nope") });
    until(|| t.spans_of_kind(SpanKind::Consumer).len() == 2).await;
    let report = handle.shutdown().await;
    assert_eq!((report.received, report.failed), (2, 2));
    let processes = t.spans_of_kind(SpanKind::Consumer);
    let requeued: Vec<_> = processes
        .iter()
        .map(|s| bool_attr(s, semconv::TRACEWIRE_MESSAGING_REQUEUE))
        .collect();
    assert_eq!(requeued, vec![Some(true), Some(false)]);
    assert_eq!(
        processes[0].span_context.trace_id(),
        processes[1].span_context.trace_id(),
        "the redelivery stays in the message's trace"
    );
    assert_eq!(ready_messages(&ch, &queue).await, 0);
    delete_queue(&ch, &queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_in_flight_handlers_and_requeues_the_rest() {
    const N: usize = 10;
    let t = Telemetry::new();
    let telemetry = telemetry(&t);
    let (pub_conn, sub_conn) = (connect().await, connect().await);
    let publisher = telemetry.channel(channel(&pub_conn).await);
    let subscriber = telemetry.channel(channel(&sub_conn).await);
    let queue = unique("runnershutdown");
    declare_queue(&publisher, &queue).await;
    for i in 0..N {
        publish(&publisher, &queue, b"job", &i.to_string()).await;
    }
    subscriber
        .basic_qos(N as u16, BasicQosOptions::default())
        .await
        .unwrap();

    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (g, s) = (gate.clone(), started.clone());
    let handle = TaskRunner::new(consume(&subscriber, &queue).await)
        .concurrency(2)
        .run(move |_task: Task| {
            let (gate, started) = (g.clone(), s.clone());
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
                Ok::<(), String>(())
            }
        });
    until(|| started.load(Ordering::SeqCst) == 2).await;
    let shutdown = tokio::spawn(handle.shutdown());
    // The consumer is cancelled while the two handlers are still blocked…
    let check = telemetry.channel(channel(&pub_conn).await);
    loop {
        let mut args = FieldTable::default();
        args.insert("x-expires".into(), lapin::types::AMQPValue::LongInt(60_000));
        let q = check
            .queue_declare(
                queue.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                args,
            )
            .await
            .unwrap();
        if q.consumer_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    until(|| {
        t.spans_of_kind(SpanKind::Consumer)
            .iter()
            .filter(|s| {
                str_attr(s, semconv::TRACEWIRE_MESSAGING_OUTCOME).as_deref() == Some("nack")
            })
            .count()
            == N - 2
    })
    .await;
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the handlers in flight"
    );
    // …and shutdown completes once they finish.
    gate.add_permits(2);
    let report = shutdown.await.unwrap();
    assert_eq!(report.received, 2);
    assert_eq!(report.succeeded, 2);
    assert_eq!(report.requeued_on_shutdown, (N - 2) as u64);
    assert_eq!(
        started.load(Ordering::SeqCst),
        2,
        "no handler starts after shutdown"
    );

    let processes = t.spans_of_kind(SpanKind::Consumer);
    assert_eq!(processes.len(), N);
    let outcomes: Vec<_> = processes
        .iter()
        .map(|s| {
            (
                str_attr(s, semconv::TRACEWIRE_MESSAGING_OUTCOME).unwrap(),
                bool_attr(s, semconv::TRACEWIRE_MESSAGING_REQUEUE),
            )
        })
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == ("ack".to_owned(), None))
            .count(),
        2
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == ("nack".to_owned(), Some(true)))
            .count(),
        N - 2
    );
    assert_eq!(ready_messages(&publisher, &queue).await, (N - 2) as u32);
    delete_queue(&publisher, &queue).await;
}
