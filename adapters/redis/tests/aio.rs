//! Async connections against a real Redis: MultiplexedConnection, ConnectionManager, guards,
//! deadpool and bb8 pools.

mod support;

use std::collections::HashMap;

use opentelemetry::context::FutureExt;
use opentelemetry::trace::{SpanId, SpanKind, TraceContextExt};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncCommands, Value};
use support::*;
use tracewire_redis::{InstrumentedConnection, RedisInstrumentation};
use tracewire_shared::semconv;
use tracewire_shared::testing::{Telemetry, attr, attr_str};

async fn connect(t: &Telemetry) -> (redis::Client, InstrumentedConnection<MultiplexedConnection>) {
    let client = client();
    let redis = instrumentation(t, &client);
    let con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis");
    (client, redis.wrap(con))
}

#[tokio::test]
async fn command_spans_carry_the_conventions_and_never_the_value() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t).await;
    let k = key("cmd");
    let _: () = con.set(&k, "VALUE-MARKER-1").await.unwrap();
    let v: String = con.get(&k).await.unwrap();
    assert_eq!(v, "VALUE-MARKER-1");
    let v: String = redis::cmd("GET")
        .arg(&k)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(v, "VALUE-MARKER-1");

    let set = t.span("SET");
    assert_eq!(set.span_kind, SpanKind::Client);
    assert_eq!(
        attr_str(&set, semconv::DB_SYSTEM_NAME).as_deref(),
        Some("redis")
    );
    assert_eq!(
        attr_str(&set, semconv::DB_OPERATION_NAME).as_deref(),
        Some("SET")
    );
    assert_eq!(text(&set), Some(format!("SET {k} ?")));
    assert_eq!(attr_str(&set, semconv::DB_NAMESPACE).as_deref(), Some("0"));
    assert_eq!(
        attr_str(&set, semconv::SERVER_ADDRESS).as_deref(),
        Some("127.0.0.1")
    );
    assert!(
        attr(&set, semconv::SERVER_PORT).is_none(),
        "6379 is the default port"
    );
    assert!(attr(&set, semconv::DB_OPERATION_BATCH_SIZE).is_none());
    assert!(!is_error(&set));
    assert_eq!(set.instrumentation_scope.name(), "tracewire-redis");

    let gets = spans_named(&t, "GET");
    assert_eq!(gets.len(), 2);
    for get in &gets {
        assert_eq!(text(get), Some(format!("GET {k}")));
    }
    assert_nowhere(&t, "VALUE-MARKER-1");
    let _: () = con.del(&k).await.unwrap();
}

#[tokio::test]
async fn spans_are_parented_to_the_current_context() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t).await;
    let k = key("parent");
    let parent = t.parent("request");
    let parent_span = parent.span().span_context().clone();
    async {
        let _: () = con.set(&k, 1).await.unwrap();
    }
    .with_context(parent.clone())
    .await;
    let _: Option<i64> = con.get(&k).await.unwrap();
    drop(parent);

    let set = t.span("SET");
    assert_eq!(set.parent_span_id, parent_span.span_id());
    assert_eq!(set.span_context.trace_id(), parent_span.trace_id());
    let get = t.span("GET");
    assert_eq!(
        get.parent_span_id,
        SpanId::INVALID,
        "no ambient span: a root"
    );
    assert_ne!(get.span_context.trace_id(), parent_span.trace_id());
    let _: () = con.del(&k).await.unwrap();
}

#[tokio::test]
async fn a_command_is_recorded_from_its_first_poll() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t).await;
    let get = redis::cmd("GET").arg(key("lazy")).clone();
    let parent = t.parent("request");
    let parent_span = parent.span().span_context().clone();

    // Made outside any context, run inside one: the span belongs where the command runs.
    let reply = con.req_packed_command(&get);
    assert_eq!(
        reply.with_context(parent.clone()).await.unwrap(),
        Value::Nil
    );
    // Dropped before its first poll: nothing was sent, so nothing is recorded.
    drop(con.req_packed_command(&get));
    drop(parent);

    let gets: Vec<_> = t
        .spans_of_kind(SpanKind::Client)
        .into_iter()
        .filter(|s| s.name == "GET")
        .collect();
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(gets[0].parent_span_id, parent_span.span_id());
    assert_eq!(gets[0].span_context.trace_id(), parent_span.trace_id());
}

#[tokio::test]
async fn pipelines_and_transactions() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t).await;
    let (a, b) = (key("pipe-a"), key("pipe-b"));

    let (x, y): (i64, Option<i64>) = redis::pipe()
        .set(&a, 41)
        .ignore()
        .incr(&a, 1)
        .get(&b)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((x, y), (42, None));
    let pipeline = t.span("PIPELINE");
    assert_eq!(
        attr(&pipeline, semconv::DB_OPERATION_BATCH_SIZE),
        Some(&3i64.into())
    );
    assert_eq!(
        attr_str(&pipeline, semconv::DB_OPERATION_NAME).as_deref(),
        Some("PIPELINE")
    );
    assert_eq!(
        text(&pipeline),
        Some(format!("SET {a} ?\nINCRBY {a} ?\nGET {b}"))
    );

    let (x, y): (i64, Option<i64>) = redis::pipe()
        .get(&a)
        .get(&b)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((x, y), (42, None));
    let uniform = t.span("PIPELINE GET");
    assert_eq!(
        attr_str(&uniform, semconv::DB_OPERATION_NAME).as_deref(),
        Some("PIPELINE GET")
    );
    assert_eq!(
        attr(&uniform, semconv::DB_OPERATION_BATCH_SIZE),
        Some(&2i64.into())
    );

    let (): () = redis::pipe()
        .atomic()
        .set(&a, "SECRET-IN-MULTI")
        .ignore()
        .set(&b, 2)
        .ignore()
        .query_async(&mut con)
        .await
        .unwrap();
    let multi = t.span("MULTI SET");
    assert_eq!(
        attr(&multi, semconv::DB_OPERATION_BATCH_SIZE),
        Some(&2i64.into())
    );
    assert_eq!(text(&multi), Some(format!("SET {a} ?\nSET {b} ?")));

    let (got,): (String,) = redis::pipe()
        .atomic()
        .get(&a)
        .del(&b)
        .ignore()
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(got, "SECRET-IN-MULTI");
    let multi = t.span("MULTI");
    assert_eq!(text(&multi), Some(format!("GET {a}\nDEL {b}")));
    assert!(!is_error(&multi));
    assert_nowhere(&t, "SECRET-IN-MULTI");
    let _: () = con.del(&[&a, &b]).await.unwrap();
}

#[tokio::test]
async fn server_errors_fail_the_span_and_reach_the_caller_unchanged() {
    let t = Telemetry::new();
    let (client, mut con) = connect(&t).await;
    let mut bare = client.get_multiplexed_async_connection().await.unwrap();
    let k = key("wrongtype");
    let _: () = con.set(&k, "x").await.unwrap();

    // Through query_async: an Err, converted from the ServerError value.
    let err = con.hset::<_, _, _, i64>(&k, "f", "v").await.unwrap_err();
    let bare_err = bare.hset::<_, _, _, i64>(&k, "f", "v").await.unwrap_err();
    assert_eq!(err.to_string(), bare_err.to_string());
    assert_eq!(err.code(), Some("WRONGTYPE"));
    let hset = t.span("HSET");
    assert!(is_error(&hset));
    assert_eq!(
        attr_str(&hset, semconv::ERROR_TYPE).as_deref(),
        Some("WRONGTYPE")
    );
    assert_eq!(
        attr_str(&hset, semconv::DB_RESPONSE_STATUS_CODE).as_deref(),
        Some("WRONGTYPE")
    );
    assert!(hset.events.iter().any(|e| e.name == "exception"));

    // Through req_packed_command: Ok(Value::ServerError), exactly like the bare connection.
    let lpush = redis::cmd("LPUSH").arg(&k).arg("v").clone();
    let wrapped = con.req_packed_command(&lpush).await;
    let direct = bare.req_packed_command(&lpush).await;
    assert!(matches!(wrapped, Ok(Value::ServerError(_))), "{wrapped:?}");
    assert_eq!(wrapped, direct);
    let span = t.span("LPUSH");
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some("WRONGTYPE")
    );

    // An unknown command: ERR, and its arguments do not reach the message.
    let err = redis::cmd("NOSUCHCMD")
        .arg("ARG-MARKER")
        .query_async::<Value>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ERR"));
    let unknown = t.span("NOSUCHCMD");
    assert_eq!(
        attr_str(&unknown, semconv::ERROR_TYPE).as_deref(),
        Some("ERR")
    );
    assert_eq!(text(&unknown).as_deref(), Some("NOSUCHCMD ?"));
    assert_nowhere(&t, "ARG-MARKER");

    // A pipeline fails on its first error reply; the caller sees what the bare connection sees.
    let mut pipe = redis::pipe();
    pipe.get(&k).lpush(&k, "v").get(&k);
    let wrapped = pipe.query_async::<Value>(&mut con).await.unwrap_err();
    let direct = pipe.query_async::<Value>(&mut bare).await.unwrap_err();
    assert_eq!(wrapped.to_string(), direct.to_string());
    let span = t.span("PIPELINE");
    assert_eq!(
        attr_str(&span, semconv::DB_RESPONSE_STATUS_CODE).as_deref(),
        Some("WRONGTYPE")
    );

    // A transaction whose command fails at run time: the error is inside the EXEC reply.
    let mut tx = redis::pipe();
    tx.atomic().get(&k).lpush(&k, "v");
    let wrapped = tx.query_async::<Value>(&mut con).await;
    let direct = tx.query_async::<Value>(&mut bare).await;
    assert_eq!(format!("{wrapped:?}"), format!("{direct:?}"));
    let span = t.span("MULTI");
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some("WRONGTYPE")
    );

    // A transaction aborted at queue time (wrong arity): EXECABORT.
    let mut tx = redis::pipe();
    tx.atomic().cmd("GET").cmd("SET").arg(&k);
    let wrapped = tx.query_async::<Value>(&mut con).await.unwrap_err();
    let direct = tx.query_async::<Value>(&mut bare).await.unwrap_err();
    assert_eq!(wrapped.to_string(), direct.to_string());
    assert_eq!(wrapped.code(), Some("EXECABORT"));
    let aborted: Vec<_> = spans_named(&t, "MULTI")
        .into_iter()
        .filter(|s| attr_str(s, semconv::ERROR_TYPE).as_deref() == Some("EXECABORT"))
        .collect();
    assert_eq!(aborted.len(), 1);
    let _: () = con.del(&k).await.unwrap();
}

#[tokio::test]
async fn eval_evalsha_and_scripts() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t).await;
    let k = key("eval");
    let source = format!("return redis.call('SET', KEYS[1], ARGV[1]) -- {}", k);
    let v: String = redis::cmd("EVAL")
        .arg(&source)
        .arg(1)
        .arg(&k)
        .arg("EVAL-ARG-MARKER")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(v, "OK");
    let eval = t.span("EVAL");
    assert_eq!(text(&eval), Some(format!("EVAL ? 1 {k} ?")));
    assert!(attr(&eval, semconv::DB_STORED_PROCEDURE_NAME).is_none());

    // A script the server does not know yet: EVALSHA fails with NOSCRIPT, redis-rs loads it and
    // retries.
    let script = redis::Script::new(&format!("return redis.call('GET', KEYS[1]) -- {k}"));
    let got: String = script.key(&k).invoke_async(&mut con).await.unwrap();
    assert_eq!(got, "EVAL-ARG-MARKER");
    let evalshas = spans_named(&t, "EVALSHA");
    assert_eq!(evalshas.len(), 2);
    assert_eq!(
        attr_str(&evalshas[0], semconv::ERROR_TYPE).as_deref(),
        Some("NOSCRIPT")
    );
    assert!(attr(&evalshas[1], semconv::ERROR_TYPE).is_none());
    for span in &evalshas {
        assert_eq!(
            attr_str(span, semconv::DB_STORED_PROCEDURE_NAME).as_deref(),
            Some(script.get_hash())
        );
        assert_eq!(
            text(span),
            Some(format!("EVALSHA {} 1 {k}", script.get_hash()))
        );
    }
    let load = t.span("SCRIPT");
    assert_eq!(text(&load).as_deref(), Some("SCRIPT LOAD ?"));
    assert_nowhere(&t, "EVAL-ARG-MARKER");
    assert_nowhere(&t, "redis.call");
    let _: () = con.del(&k).await.unwrap();
}

#[tokio::test]
async fn fcall_records_the_function_name() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t).await;
    let lib = format!("twlib{}", std::process::id());
    let func = format!("twfn{}", std::process::id());
    let code = format!(
        "#!lua name={lib}\nredis.register_function('{func}', function(keys, args) return args[1] end)"
    );
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(&code)
        .query_async(&mut con)
        .await
        .unwrap();
    let got: String = redis::cmd("FCALL")
        .arg(&func)
        .arg(0)
        .arg("FCALL-ARG")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(got, "FCALL-ARG");
    let fcall = t.span("FCALL");
    assert_eq!(
        attr_str(&fcall, semconv::DB_STORED_PROCEDURE_NAME),
        Some(func.clone())
    );
    assert_eq!(text(&fcall), Some(format!("FCALL {func} 0 ?")));
    let _: () = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg(&lib)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_nowhere(&t, "FCALL-ARG");
    assert_nowhere(&t, "register_function");
}

#[tokio::test]
async fn acl_user_password_never_reaches_a_span() {
    const PASSWORD: &str = "SECRETPASSWORD-tw-7f3a";
    let t = Telemetry::new();
    let (_client, mut admin) = connect(&t).await;
    let user = format!("tw_user_{}", key("acl").replace(':', "_"));
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("on")
        .arg(format!(">{PASSWORD}"))
        .arg("~*")
        .arg("+@all")
        .query_async(&mut admin)
        .await
        .unwrap();
    let setuser = t.span("ACL");
    assert_eq!(text(&setuser), Some(format!("ACL SETUSER {user} ? ? ? ?")));

    let base = redis_url();
    let url = base.replacen("redis://", &format!("redis://{user}:{PASSWORD}@"), 1);
    let client = redis::Client::open(url).unwrap();
    let redis = RedisInstrumentation::for_client(&client, t.config());
    let mut con = redis.wrap(client.get_multiplexed_async_connection().await.unwrap());
    let k = key("acl");
    let _: () = con.set(&k, PASSWORD).await.unwrap();
    let got: String = con.get(&k).await.unwrap();
    assert_eq!(got, PASSWORD);
    let _: () = redis::cmd("AUTH")
        .arg(&user)
        .arg(PASSWORD)
        .query_async(&mut con)
        .await
        .unwrap();
    let _: Value = redis::cmd("HELLO")
        .arg(2)
        .arg("AUTH")
        .arg(&user)
        .arg(PASSWORD)
        .query_async(&mut con)
        .await
        .unwrap();
    let wrong = redis::cmd("AUTH")
        .arg(&user)
        .arg(format!("{PASSWORD}-wrong"))
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("WRONGPASS"));

    let auths = spans_named(&t, "AUTH");
    assert_eq!(auths.len(), 2);
    assert!(auths.iter().all(|s| text(s).as_deref() == Some("AUTH ? ?")));
    assert_eq!(
        attr_str(&auths[1], semconv::DB_RESPONSE_STATUS_CODE).as_deref(),
        Some("WRONGPASS")
    );
    assert_eq!(text(&t.span("HELLO")).as_deref(), Some("HELLO 2 AUTH ? ?"));

    let _: i64 = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async(&mut admin)
        .await
        .unwrap();
    let _: () = admin.del(&k).await.unwrap();
    assert_nowhere(&t, PASSWORD);
    assert_nowhere(&t, "SECRETPASSWORD");
}

#[tokio::test]
async fn config_set_secrets_are_masked() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t).await;
    let before: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("masterauth")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("masterauth")
        .arg("MASTERAUTH-MARKER")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("masterauth")
        .arg(before.get(1).map(String::as_str).unwrap_or(""))
        .query_async(&mut con)
        .await
        .unwrap();
    let texts: Vec<_> = spans_named(&t, "CONFIG").iter().filter_map(text).collect();
    assert_eq!(texts[0], "CONFIG GET masterauth");
    assert_eq!(texts[1], "CONFIG SET masterauth ?");
    assert_nowhere(&t, "MASTERAUTH-MARKER");
}

#[tokio::test]
async fn select_moves_the_namespace() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t).await;
    assert_eq!(con.db_namespace(), 0);
    let k = key("select");
    let _: () = redis::cmd("SELECT")
        .arg(3)
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = con.set(&k, 1).await.unwrap();
    assert_eq!(con.db_namespace(), 3);
    // A failing SELECT leaves it alone.
    let _ = redis::cmd("SELECT")
        .arg(99_999)
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert_eq!(con.db_namespace(), 3);
    // SELECT inside a pipeline, and inside a transaction.
    let (): () = redis::pipe()
        .cmd("SELECT")
        .arg(4)
        .ignore()
        .del(&k)
        .ignore()
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(con.db_namespace(), 4);
    let (): () = redis::pipe()
        .atomic()
        .cmd("SELECT")
        .arg(3)
        .ignore()
        .del(&k)
        .ignore()
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(con.db_namespace(), 3);
    let _: () = redis::cmd("SELECT")
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();

    let select = &spans_named(&t, "SELECT")[0];
    assert_eq!(
        attr_str(select, semconv::DB_NAMESPACE).as_deref(),
        Some("0"),
        "before it ran"
    );
    assert_eq!(
        attr_str(&t.span("SET"), semconv::DB_NAMESPACE).as_deref(),
        Some("3")
    );
    assert_eq!(
        attr_str(&t.span("MULTI"), semconv::DB_NAMESPACE).as_deref(),
        Some("4")
    );
}

#[tokio::test]
async fn binary_and_huge_arguments_stay_bounded() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t).await;
    let mut k = key("bin").into_bytes();
    k.extend_from_slice(b"\x00\xff\xfe \"\n");
    let big = vec![0xAAu8; 1 << 20];
    let _: () = con.set(&k, &big).await.unwrap();
    let back: Vec<u8> = con.get(&k).await.unwrap();
    assert_eq!(back, big);
    let long_key = vec![b'k'; 100_000];
    let _: Option<Vec<u8>> = con.get(&long_key).await.unwrap();
    let _: () = con.del(&k).await.unwrap();

    let set = t.span("SET");
    let text = text(&set).unwrap();
    assert!(text.starts_with("SET \"tw:test:bin:"), "{text}");
    assert!(text.contains("\\x00\\xff\\xfe \\\"\\n\""), "{text}");
    assert!(text.ends_with(" ?"));
    let get = spans_named(&t, "GET");
    assert!(get.iter().all(|s| support::text(s).unwrap().len() < 1024));

    // A small cap holds for a large pipeline.
    let t = Telemetry::new();
    let client = client();
    let redis = RedisInstrumentation::for_client(&client, t.config().with_max_text_len(200));
    let mut con = redis.wrap(client.get_multiplexed_async_connection().await.unwrap());
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.get(format!("{}:{i}", key("many")));
    }
    let _: Vec<Option<String>> = pipe.query_async(&mut con).await.unwrap();
    let span = t.span("PIPELINE GET");
    assert!(support::text(&span).unwrap().len() <= 200);
    assert_eq!(
        attr(&span, semconv::DB_OPERATION_BATCH_SIZE),
        Some(&1000i64.into())
    );
}

#[tokio::test]
async fn a_thousand_commands_from_fifty_tasks_are_parented_correctly() {
    let t = Telemetry::new();
    let (_client, con) = connect(&t).await;
    let k = key("concurrent");
    let mut tasks = Vec::new();
    let mut parents = HashMap::new();
    for task in 0..50 {
        let parent = t.parent("task");
        parents.insert(parent.span().span_context().span_id(), task);
        let mut con = con.clone();
        let k = format!("{k}:{task}");
        tasks.push(tokio::spawn(
            async move {
                for i in 0..20 {
                    let n: i64 = con.incr(&k, 1).await.unwrap();
                    assert_eq!(n, i + 1);
                }
                let _: () = con.del(&k).await.unwrap();
            }
            .with_context(parent),
        ));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let spans = t.spans_of_kind(SpanKind::Client);
    assert_eq!(spans.len(), 50 * 21);
    let mut per_parent: HashMap<SpanId, Vec<String>> = HashMap::new();
    for span in &spans {
        let task = parents
            .get(&span.parent_span_id)
            .unwrap_or_else(|| panic!("span {} has an unknown parent", span.name));
        // Each span names its own task's key: a span parented to another task would not.
        let text = text(span).unwrap();
        let own_key = format!("{k}:{task}");
        assert_eq!(text.split(' ').nth(1), Some(own_key.as_str()), "{text}");
        per_parent
            .entry(span.parent_span_id)
            .or_default()
            .push(span.name.to_string());
    }
    assert_eq!(per_parent.len(), 50);
    for names in per_parent.values() {
        assert_eq!(names.iter().filter(|n| *n == "INCRBY").count(), 20);
        assert_eq!(names.iter().filter(|n| *n == "DEL").count(), 1);
    }
}

#[tokio::test]
async fn unsampled_records_no_span_but_keeps_results_and_metrics() {
    let t = Telemetry::unsampled();
    let (_client, mut con) = connect(&t).await;
    let k = key("unsampled");
    let _: () = con.set(&k, 7).await.unwrap();
    let v: i64 = con.get(&k).await.unwrap();
    assert_eq!(v, 7);
    let _: (i64,) = redis::pipe().get(&k).query_async(&mut con).await.unwrap();
    let _: () = con.del(&k).await.unwrap();
    assert!(t.finished().is_empty());
    let points = t.metric(semconv::metric::DB_CLIENT_OPERATION_DURATION);
    let count: u64 = points.iter().map(|p| p.count).sum();
    assert_eq!(count, 4);
}

/// The configuration without a metrics pipeline (the one the unsampled benchmark target is read in):
/// spans stay whole and timed by the SDK's own clock, and no duration is recorded.
#[tokio::test]
async fn metrics_off_keeps_spans_and_records_no_duration() {
    for (t, sampled) in [(Telemetry::new(), true), (Telemetry::unsampled(), false)] {
        let client = client();
        let redis = RedisInstrumentation::for_client(&client, t.config().with_metrics(false));
        let mut con = redis.wrap(
            client
                .get_multiplexed_async_connection()
                .await
                .expect("connect to redis"),
        );
        let k = key("metrics-off");
        let _: () = con.set(&k, 7).await.unwrap();
        let v: i64 = con.get(&k).await.unwrap();
        assert_eq!(v, 7);
        let _: () = con.del(&k).await.unwrap();

        assert!(
            t.metric(semconv::metric::DB_CLIENT_OPERATION_DURATION)
                .is_empty(),
            "no duration point with metrics off"
        );
        let spans = t.finished();
        if !sampled {
            assert!(spans.is_empty(), "nothing recorded at all: {spans:?}");
            continue;
        }
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names, ["SET", "GET", "DEL"]);
        let get = &spans[1];
        assert_eq!(get.span_kind, SpanKind::Client);
        assert_eq!(
            attr_str(get, semconv::DB_QUERY_TEXT),
            Some(format!("GET {k}"))
        );
        assert_eq!(attr_str(get, semconv::DB_NAMESPACE).as_deref(), Some("0"));
        assert!(get.start_time > std::time::UNIX_EPOCH);
        assert!(get.end_time >= get.start_time);
    }
}

#[tokio::test]
async fn operation_duration_metric() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t).await;
    let k = key("metric");
    let _: () = con.set(&k, "v").await.unwrap();
    let _: String = con.get(&k).await.unwrap();
    let _: String = con.get(&k).await.unwrap();
    let _ = con.incr::<_, _, i64>(&k, 1).await.unwrap_err();
    let _: () = con.del(&k).await.unwrap();

    let points = t.metric(semconv::metric::DB_CLIENT_OPERATION_DURATION);
    let get = points
        .iter()
        .find(|p| p.attr_str(semconv::DB_OPERATION_NAME) == Some("GET".into()))
        .expect("GET point");
    assert_eq!(get.unit, "s");
    assert_eq!(get.kind, "histogram");
    assert_eq!(get.count, 2);
    assert_eq!(get.attr_str(semconv::DB_SYSTEM_NAME), Some("redis".into()));
    assert_eq!(get.attr_str(semconv::DB_NAMESPACE), Some("0".into()));
    assert!(
        get.attr(semconv::DB_QUERY_TEXT).is_none(),
        "no high-cardinality text in metrics"
    );
    assert_eq!(
        get.bounds,
        vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]
    );
    let failed = points
        .iter()
        .find(|p| p.attr(semconv::ERROR_TYPE).is_some())
        .expect("error point");
    assert_eq!(failed.attr_str(semconv::ERROR_TYPE), Some("ERR".into()));
    assert_eq!(
        failed.attr_str(semconv::DB_OPERATION_NAME),
        Some("INCRBY".into())
    );
}

#[tokio::test]
async fn connection_failures_get_a_low_cardinality_error_type() {
    let t = Telemetry::new();
    let (client, mut con) = connect(&t).await;
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut con)
        .await
        .unwrap();
    let mut killer = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut killer)
        .await
        .unwrap();
    let err = redis::cmd("PING")
        .query_async::<String>(&mut con)
        .await
        .unwrap_err();
    assert!(err.code().is_none(), "not a server error: {err:?}");
    let ping = t.span("PING");
    assert!(is_error(&ping));
    let error_type = attr_str(&ping, semconv::ERROR_TYPE).unwrap();
    assert!(
        ["io_error", "timeout", "parse_error", "client_error"].contains(&error_type.as_str()),
        "{error_type}"
    );
    assert!(attr(&ping, semconv::DB_RESPONSE_STATUS_CODE).is_none());
}

#[tokio::test]
async fn guards_over_borrowed_connections() {
    let t = Telemetry::new();
    let client = client();
    let redis = instrumentation(&t, &client);
    let mut bare = client.get_multiplexed_async_connection().await.unwrap();
    let k = key("guard");
    {
        let mut con = redis.wrap_guard(&mut bare);
        let _: () = con.set(&k, 5).await.unwrap();
        let (v,): (i64,) = redis::pipe().get(&k).query_async(&mut con).await.unwrap();
        assert_eq!(v, 5);
    }
    let _: () = bare.del(&k).await.unwrap();
    assert_eq!(text(&t.span("SET")), Some(format!("SET {k} ?")));
    assert_eq!(text(&t.span("PIPELINE GET")), Some(format!("GET {k}")));
    assert_eq!(t.finished().len(), 2, "the bare DEL is not recorded");
}

#[tokio::test]
async fn connection_manager() {
    let t = Telemetry::new();
    let client = client();
    let redis = instrumentation(&t, &client);
    let manager = redis::aio::ConnectionManager::new(client.clone())
        .await
        .unwrap();
    let mut con = redis.wrap(manager);
    let k = key("manager");
    let parent = t.parent("request");
    let parent_id = parent.span().span_context().span_id();
    async {
        let _: () = con.set(&k, "MANAGER-VALUE").await.unwrap();
        let (v,): (String,) = redis::pipe()
            .atomic()
            .get(&k)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(v, "MANAGER-VALUE");
        let err = con.lpush::<_, _, i64>(&k, 1).await.unwrap_err();
        assert_eq!(err.code(), Some("WRONGTYPE"));
        let _: () = con.del(&k).await.unwrap();
    }
    .with_context(parent.clone())
    .await;
    drop(parent);
    for name in ["SET", "MULTI GET", "LPUSH", "DEL"] {
        assert_eq!(t.span(name).parent_span_id, parent_id, "{name}");
    }
    assert_eq!(
        attr_str(&t.span("LPUSH"), semconv::ERROR_TYPE).as_deref(),
        Some("WRONGTYPE")
    );
    assert_nowhere(&t, "MANAGER-VALUE");
}

#[tokio::test]
async fn deadpool_pool() {
    use tracewire_redis::deadpool::InstrumentedPool;
    let t = Telemetry::new();
    let cfg = deadpool_redis::Config::from_url(redis_url());
    let pool = cfg
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    let redis = RedisInstrumentation::builder()
        .config(t.config())
        .client(&client())
        .build();
    let pool = InstrumentedPool::named(pool, &redis, "tw-deadpool");
    let k = key("deadpool");
    {
        let mut con = pool.get().await.unwrap();
        let _: () = con.set(&k, 1).await.unwrap();
        let (v,): (i64,) = redis::pipe().get(&k).query_async(&mut con).await.unwrap();
        assert_eq!(v, 1);
        let used = t.metric(semconv::metric::DB_CLIENT_CONNECTION_COUNT);
        let in_use = used
            .iter()
            .find(|p| p.attr_str(semconv::DB_CLIENT_CONNECTION_STATE) == Some("used".into()))
            .expect("used point");
        assert_eq!(in_use.value, 1.0);
    }
    let mut con = pool.get().await.unwrap();
    let _: () = con.del(&k).await.unwrap();
    drop(con);

    assert_eq!(text(&t.span("SET")), Some(format!("SET {k} ?")));
    assert_eq!(text(&t.span("PIPELINE GET")), Some(format!("GET {k}")));
    let wait = t.metric(semconv::metric::DB_CLIENT_CONNECTION_WAIT_TIME);
    assert_eq!(wait.len(), 1);
    assert_eq!(wait[0].count, 2);
    assert_eq!(
        wait[0].attr_str(semconv::DB_CLIENT_CONNECTION_POOL_NAME),
        Some("tw-deadpool".into())
    );
    let counts = t.metric(semconv::metric::DB_CLIENT_CONNECTION_COUNT);
    let idle = counts
        .iter()
        .find(|p| p.attr_str(semconv::DB_CLIENT_CONNECTION_STATE) == Some("idle".into()))
        .expect("idle point");
    assert_eq!(idle.value, 1.0);
    let max = t.metric(semconv::metric::DB_CLIENT_CONNECTION_MAX);
    assert_eq!(max[0].value, pool.inner().status().max_size as f64);
}

#[tokio::test]
async fn bb8_pool() {
    use tracewire_redis::bb8::InstrumentedPool;
    let t = Telemetry::new();
    let manager = bb8_redis::RedisConnectionManager::new(redis_url()).unwrap();
    let pool = bb8::Pool::builder()
        .max_size(3)
        .build(manager)
        .await
        .unwrap();
    let redis = RedisInstrumentation::builder()
        .config(t.config())
        .client(&client())
        .build();
    let pool = InstrumentedPool::named(pool, &redis, "tw-bb8");
    let k = key("bb8");
    let parent = t.parent("request");
    let parent_id = parent.span().span_context().span_id();
    async {
        let mut con = pool.get().await.unwrap();
        let _: () = con.set(&k, "BB8-VALUE").await.unwrap();
        let v: String = redis::cmd("GET")
            .arg(&k)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(v, "BB8-VALUE");
        let counts = t.metric(semconv::metric::DB_CLIENT_CONNECTION_COUNT);
        let used = counts
            .iter()
            .find(|p| p.attr_str(semconv::DB_CLIENT_CONNECTION_STATE) == Some("used".into()))
            .expect("used point");
        assert_eq!(used.value, 1.0);
        let mut owned = pool.get_owned().await.unwrap();
        let _: () = owned.del(&k).await.unwrap();
    }
    .with_context(parent.clone())
    .await;
    drop(parent);
    for name in ["SET", "GET", "DEL"] {
        assert_eq!(t.span(name).parent_span_id, parent_id, "{name}");
    }
    let max = t.metric(semconv::metric::DB_CLIENT_CONNECTION_MAX);
    assert_eq!(max[0].value, 3.0);
    assert_eq!(
        max[0].attr_str(semconv::DB_CLIENT_CONNECTION_POOL_NAME),
        Some("tw-bb8".into())
    );
    let wait = t.metric(semconv::metric::DB_CLIENT_CONNECTION_WAIT_TIME);
    assert_eq!(wait[0].count, 2);
    assert_nowhere(&t, "BB8-VALUE");
}

/// Every command, through the bare and the instrumented connection, gives the same result or the
/// same error.
#[tokio::test]
async fn differential_results_and_errors_match_the_bare_connection() {
    let t = Telemetry::new();
    let (client, mut con) = connect(&t).await;
    let mut bare = client.get_multiplexed_async_connection().await.unwrap();
    let (kw, kb) = (key("diff-w"), key("diff-b"));

    fn script(k: &str) -> Vec<redis::Cmd> {
        vec![
            redis::cmd("SET").arg(k).arg("v1").clone(),
            redis::cmd("GET").arg(k).clone(),
            redis::cmd("APPEND").arg(k).arg("-more").clone(),
            redis::cmd("STRLEN").arg(k).clone(),
            redis::cmd("INCR").arg(k).clone(),
            redis::cmd("HSET").arg(k).arg("f").arg("v").clone(),
            redis::cmd("GET").arg(format!("{k}:missing")).clone(),
            redis::cmd("SET").arg(k).clone(),
            redis::cmd("NOSUCH").arg(k).clone(),
            redis::cmd("EVALSHA")
                .arg("0000000000000000000000000000000000000000")
                .arg(0)
                .clone(),
            redis::cmd("EVAL")
                .arg("return {1, 'two', {3}}")
                .arg(0)
                .clone(),
            redis::cmd("EVAL")
                .arg("return redis.error_reply('MYERR custom')")
                .arg(0)
                .clone(),
            redis::cmd("DEL").arg(k).clone(),
            redis::cmd("RPUSH")
                .arg(k)
                .arg("a")
                .arg("b")
                .arg(b"\x00\xff")
                .clone(),
            redis::cmd("LRANGE").arg(k).arg(0).arg(-1).clone(),
            redis::cmd("OBJECT").arg("ENCODING").arg(k).clone(),
            redis::cmd("DEL").arg(k).clone(),
        ]
    }
    // Error messages may quote the key: compare with each side's key replaced.
    let same = |wrapped: String, direct: String| {
        assert_eq!(wrapped.replace(&kw, "KEY"), direct.replace(&kb, "KEY"));
    };
    for (w, b) in script(&kw).into_iter().zip(script(&kb)) {
        let wrapped = con.req_packed_command(&w).await;
        let direct = bare.req_packed_command(&b).await;
        same(format!("{wrapped:?}"), format!("{direct:?}"));
    }
    for (w, b) in script(&kw).into_iter().zip(script(&kb)) {
        let wrapped = w.query_async::<Value>(&mut con).await;
        let direct = b.query_async::<Value>(&mut bare).await;
        same(format!("{wrapped:?}"), format!("{direct:?}"));
    }
    for atomic in [false, true] {
        let build = |k: &str| {
            let mut p = redis::pipe();
            if atomic {
                p.atomic();
            }
            for c in script(k) {
                p.add_command(c);
            }
            p
        };
        let wrapped = build(&kw).query_async::<Value>(&mut con).await;
        let direct = build(&kb).query_async::<Value>(&mut bare).await;
        same(format!("{wrapped:?}"), format!("{direct:?}"));
        let wrapped = build(&kw)
            .ignore_errors()
            .query_async::<Vec<redis::RedisResult<Value>>>(&mut con)
            .await;
        let direct = build(&kb)
            .ignore_errors()
            .query_async::<Vec<redis::RedisResult<Value>>>(&mut bare)
            .await;
        same(format!("{wrapped:?}"), format!("{direct:?}"));
    }
    assert!(!t.finished().is_empty());
}

#[tokio::test]
async fn query_text_modes_never_record_values() {
    use tracewire_shared::QueryText;
    let client = client();
    let k = key("modes");
    for (mode, expected) in [
        (QueryText::Off, None),
        (QueryText::Raw, Some(format!("SET {k} ?"))),
        (QueryText::Sanitized, Some(format!("SET {k} ?"))),
    ] {
        let t = Telemetry::new();
        let redis = RedisInstrumentation::for_client(&client, t.config().with_query_text(mode));
        let mut con = redis.wrap(client.get_multiplexed_async_connection().await.unwrap());
        let _: () = con.set(&k, "MODE-VALUE").await.unwrap();
        let set = t.span("SET");
        assert_eq!(text(&set), expected, "{mode:?}");
        assert_eq!(
            attr_str(&set, semconv::DB_OPERATION_NAME).as_deref(),
            Some("SET")
        );
        assert_nowhere(&t, "MODE-VALUE");
    }
    let mut bare = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = bare.del(&k).await.unwrap();
}
