//! Synchronous connections against a real Redis: commands arrive as `Cmd`s or as packed bytes,
//! pipelines always as packed bytes.

mod support;

use opentelemetry::trace::{SpanId, SpanKind, TraceContextExt};
use redis::{Commands, ConnectionLike, Value};
use support::*;
use tracewire_redis::InstrumentedSyncConnection;
use tracewire_shared::semconv;
use tracewire_shared::testing::{Telemetry, attr, attr_str};

fn connect(t: &Telemetry) -> (redis::Client, InstrumentedSyncConnection<redis::Connection>) {
    let client = client();
    let con = client.get_connection().expect("connect to redis");
    let wrapped = instrumentation(t, &client).wrap_sync(con);
    (client, wrapped)
}

#[test]
fn commands_spans_and_parents() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t);
    let k = key("sync");
    let parent = t.parent("job");
    let parent_id = parent.span().span_context().span_id();
    {
        let _guard = parent.clone().attach();
        let _: () = con.set(&k, "SYNC-VALUE").unwrap();
    }
    drop(parent);
    let v: String = con.get(&k).unwrap();
    assert_eq!(v, "SYNC-VALUE");
    // Packed by hand: the command is read back from the bytes.
    let packed = redis::cmd("STRLEN").arg(&k).get_packed_command();
    assert_eq!(con.req_packed_command(&packed).unwrap(), Value::Int(10));
    let _: () = con.del(&k).unwrap();

    let set = t.span("SET");
    assert_eq!(set.span_kind, SpanKind::Client);
    assert_eq!(set.parent_span_id, parent_id);
    assert_eq!(text(&set), Some(format!("SET {k} ?")));
    assert_eq!(attr_str(&set, semconv::DB_NAMESPACE).as_deref(), Some("0"));
    assert_eq!(
        attr_str(&set, semconv::SERVER_ADDRESS).as_deref(),
        Some("127.0.0.1")
    );
    let strlen = t.span("STRLEN");
    assert_eq!(text(&strlen), Some(format!("STRLEN {k}")));
    assert_eq!(
        attr_str(&strlen, semconv::DB_OPERATION_NAME).as_deref(),
        Some("STRLEN")
    );
    assert_eq!(t.span("GET").parent_span_id, SpanId::INVALID);
    assert_nowhere(&t, "SYNC-VALUE");
}

#[test]
fn pipelines_from_packed_bytes() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t);
    let (a, b) = (key("sync-pipe-a"), key("sync-pipe-b"));
    let (x, y): (i64, Option<String>) = redis::pipe()
        .set(&a, 1)
        .ignore()
        .incr(&a, 2)
        .get(&b)
        .query(&mut con)
        .unwrap();
    assert_eq!((x, y), (3, None));
    let span = t.span("PIPELINE");
    assert_eq!(
        attr(&span, semconv::DB_OPERATION_BATCH_SIZE),
        Some(&3i64.into())
    );
    assert_eq!(
        text(&span),
        Some(format!("SET {a} ?\nINCRBY {a} ?\nGET {b}"))
    );

    let (x,): (i64,) = redis::pipe().atomic().get(&a).query(&mut con).unwrap();
    assert_eq!(x, 3);
    let multi = t.span("MULTI GET");
    assert_eq!(
        attr_str(&multi, semconv::DB_OPERATION_NAME).as_deref(),
        Some("MULTI GET")
    );
    assert!(
        attr(&multi, semconv::DB_OPERATION_BATCH_SIZE).is_none(),
        "one command"
    );
    assert_eq!(text(&multi), Some(format!("GET {a}")));

    let (): () = redis::pipe()
        .atomic()
        .set(&a, "SYNC-MULTI-VALUE")
        .ignore()
        .set(&b, "SYNC-MULTI-VALUE")
        .ignore()
        .query(&mut con)
        .unwrap();
    let multi = t.span("MULTI SET");
    assert_eq!(
        attr(&multi, semconv::DB_OPERATION_BATCH_SIZE),
        Some(&2i64.into())
    );
    assert_eq!(text(&multi), Some(format!("SET {a} ?\nSET {b} ?")));
    let _: () = con.del(&[&a, &b]).unwrap();
    assert_nowhere(&t, "SYNC-MULTI-VALUE");
}

#[test]
fn server_errors_and_aborted_transactions() {
    let t = Telemetry::new();
    let (client, mut con) = connect(&t);
    let mut bare = client.get_connection().unwrap();
    let k = key("sync-err");
    let _: () = con.set(&k, "x").unwrap();

    let err = con.lpush::<_, _, i64>(&k, 1).unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
    let span = t.span("LPUSH");
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some("WRONGTYPE")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_RESPONSE_STATUS_CODE).as_deref(),
        Some("WRONGTYPE")
    );

    let packed = redis::cmd("HSET")
        .arg(&k)
        .arg("f")
        .arg("v")
        .get_packed_command();
    let wrapped = con.req_packed_command(&packed);
    let direct = bare.req_packed_command(&packed);
    assert!(matches!(wrapped, Ok(Value::ServerError(_))), "{wrapped:?}");
    assert_eq!(wrapped, direct);
    assert_eq!(
        attr_str(&t.span("HSET"), semconv::ERROR_TYPE).as_deref(),
        Some("WRONGTYPE")
    );

    let mut tx = redis::pipe();
    tx.atomic().cmd("GET").cmd("SET").arg(&k);
    let wrapped = tx.query::<Value>(&mut con).unwrap_err();
    let direct = tx.query::<Value>(&mut bare).unwrap_err();
    assert_eq!(wrapped.to_string(), direct.to_string());
    let span = t.span("MULTI");
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some("EXECABORT")
    );
    assert_eq!(
        attr(&span, semconv::DB_OPERATION_BATCH_SIZE),
        Some(&2i64.into())
    );
    let _: () = con.del(&k).unwrap();
}

#[test]
fn select_and_scan() {
    let t = Telemetry::new();
    let (_client, mut con) = connect(&t);
    let k = key("sync-select");
    let _: () = redis::cmd("SELECT").arg(5).query(&mut con).unwrap();
    assert_eq!(con.db_namespace(), 5);
    let _: () = con.set(&k, 1).unwrap();
    let (): () = redis::pipe()
        .cmd("SELECT")
        .arg(6)
        .ignore()
        .query(&mut con)
        .unwrap();
    assert_eq!(con.db_namespace(), 6);
    let packed = redis::cmd("SELECT").arg(5).get_packed_command();
    assert_eq!(con.req_packed_command(&packed).unwrap(), Value::Okay);
    assert_eq!(con.db_namespace(), 5);
    let found: Vec<String> = con
        .scan_match(format!("{k}*"))
        .unwrap()
        .collect::<redis::RedisResult<_>>()
        .unwrap();
    assert_eq!(found, vec![k.clone()]);
    let _: () = con.del(&k).unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();

    assert_eq!(
        attr_str(&t.span("SET"), semconv::DB_NAMESPACE).as_deref(),
        Some("5")
    );
    let scans = spans_named(&t, "SCAN");
    assert!(!scans.is_empty());
    assert_eq!(text(&scans[0]), Some(format!("SCAN 0 MATCH {k}*")));
    assert!(
        scans
            .iter()
            .all(|s| attr_str(s, semconv::DB_NAMESPACE).as_deref() == Some("5"))
    );
}

#[test]
fn auth_secrets_are_masked() {
    const PASSWORD: &str = "SYNC-SECRET-PASSWORD";
    let t = Telemetry::new();
    let (client, mut con) = connect(&t);
    let mut admin = client.get_connection().unwrap();
    let user = format!("tw_user_{}", key("sync-acl").replace(':', "_"));
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("on")
        .arg(format!(">{PASSWORD}"))
        .arg("~*")
        .arg("+@all")
        .query(&mut con)
        .unwrap();
    let (): () = redis::pipe()
        .cmd("AUTH")
        .arg(&user)
        .arg(PASSWORD)
        .ignore()
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("AUTH")
        .arg(&user)
        .arg(PASSWORD)
        .query(&mut con)
        .unwrap();
    // Deleting the user disconnects the connections it authenticated: use another one.
    let _: i64 = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query(&mut admin)
        .unwrap();
    assert_eq!(text(&t.span("PIPELINE AUTH")).as_deref(), Some("AUTH ? ?"));
    assert_eq!(text(&t.span("AUTH")).as_deref(), Some("AUTH ? ?"));
    assert_nowhere(&t, PASSWORD);
}

#[test]
fn differential_results_and_errors_match_the_bare_connection() {
    let t = Telemetry::new();
    let (client, mut con) = connect(&t);
    let mut bare = client.get_connection().unwrap();
    let (kw, kb) = (key("sync-diff-w"), key("sync-diff-b"));
    fn script(k: &str) -> Vec<redis::Cmd> {
        vec![
            redis::cmd("SET").arg(k).arg("v1").clone(),
            redis::cmd("GET").arg(k).clone(),
            redis::cmd("INCR").arg(k).clone(),
            redis::cmd("HSET").arg(k).arg("f").arg("v").clone(),
            redis::cmd("SET").arg(k).clone(),
            redis::cmd("NOSUCH").arg(k).clone(),
            redis::cmd("EVAL")
                .arg("return redis.error_reply('MYERR custom')")
                .arg(0)
                .clone(),
            redis::cmd("DEL").arg(k).clone(),
            redis::cmd("RPUSH").arg(k).arg("a").arg(b"\x00\xff").clone(),
            redis::cmd("LRANGE").arg(k).arg(0).arg(-1).clone(),
            redis::cmd("DEL").arg(k).clone(),
        ]
    }
    // Error messages may quote the key: compare with each side's key replaced.
    let same = |wrapped: String, direct: String| {
        assert_eq!(wrapped.replace(&kw, "KEY"), direct.replace(&kb, "KEY"));
    };
    for (w, b) in script(&kw).into_iter().zip(script(&kb)) {
        let wrapped = w.query::<Value>(&mut con);
        let direct = b.query::<Value>(&mut bare);
        same(format!("{wrapped:?}"), format!("{direct:?}"));
        let wrapped = con.req_packed_command(&w.get_packed_command());
        let direct = bare.req_packed_command(&b.get_packed_command());
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
        let wrapped = build(&kw).query::<Value>(&mut con);
        let direct = build(&kb).query::<Value>(&mut bare);
        same(format!("{wrapped:?}"), format!("{direct:?}"));
    }
    assert!(con.is_open());
    assert!(con.check_connection());
    assert_eq!(con.get_db(), bare.get_db());
}
