//! The async cluster connection against a real three-node cluster of local `redis-server`
//! processes, started and stopped by the test.

mod support;

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry::context::FutureExt;
use opentelemetry::trace::TraceContextExt;
use redis::AsyncCommands;
use redis::aio::ConnectionLike;
use support::*;
use tracewire_redis::RedisInstrumentation;
use tracewire_shared::semconv;
use tracewire_shared::testing::{Telemetry, attr, attr_str};

/// Three cluster nodes; killed, and their directory removed, on drop.
struct Cluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port that is free, and whose cluster bus port (+10000) is free too.
fn free_port(taken: &[u16]) -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind port 0");
        let port = listener.local_addr().unwrap().port();
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if taken.contains(&port) || taken.contains(&bus) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, bus)).is_ok() {
            return port;
        }
    }
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn start_cluster() -> Cluster {
    let dir = std::env::temp_dir().join(format!("tw-redis-cluster-{}", key("c").replace(':', "-")));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cluster = Cluster {
        ports: Vec::new(),
        children: Vec::new(),
        dir: dir.clone(),
    };
    for _ in 0..3 {
        let mut taken = cluster.ports.clone();
        taken.extend(cluster.ports.iter().map(|p| p + 10_000));
        let port = free_port(&taken);
        let conf = dir.join(format!("nodes-{port}.conf"));
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", conf.to_str().unwrap()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--bind", "127.0.0.1", "--dir", dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        cluster.children.push(child);
        cluster.ports.push(port);
    }
    for &port in &cluster.ports {
        wait_until("a node to listen", || {
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
        });
    }
    let nodes: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let status = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("redis-cli is installed");
    assert!(status.success(), "redis-cli --cluster create failed");
    for &port in &cluster.ports {
        wait_until("cluster_state:ok", || {
            redis_cli(port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
        });
    }
    cluster
}

#[tokio::test]
async fn commands_and_pipelines_through_a_three_node_cluster() {
    let cluster = start_cluster();
    let t = Telemetry::new();
    let nodes: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}/"))
        .collect();
    let client = redis::cluster::ClusterClient::new(nodes).unwrap();
    let redis = RedisInstrumentation::builder()
        .config(t.config())
        .server("127.0.0.1", Some(cluster.ports[0]))
        .build();
    let mut con = redis.wrap(client.get_async_connection().await.unwrap());
    let mut bare = client.get_async_connection().await.unwrap();

    let parent = t.parent("request");
    let parent_id = parent.span().span_context().span_id();
    let keys: Vec<String> = (0..20).map(|i| format!("{}:{i}", key("cluster"))).collect();
    async {
        // Keys spread over the three nodes' slots.
        for k in &keys {
            let _: () = con.set(k, "CLUSTER-VALUE").await.unwrap();
        }
        for k in &keys {
            let v: String = con.get(k).await.unwrap();
            assert_eq!(v, "CLUSTER-VALUE");
        }
        // A pipeline on one slot (hash tag).
        let tag = key("{tag}");
        let (a, b) = (format!("{tag}:a"), format!("{tag}:b"));
        let (x, y): (i64, i64) = redis::pipe()
            .incr(&a, 1)
            .incr(&b, 2)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!((x, y), (1, 2));
        // A server error, and what the bare connection says to the same command.
        let wrapped = con.lpush::<_, _, i64>(&keys[0], 1).await.unwrap_err();
        let direct = bare.lpush::<_, _, i64>(&keys[0], 1).await.unwrap_err();
        assert_eq!(wrapped.to_string(), direct.to_string());
        assert_eq!(wrapped.code(), Some("WRONGTYPE"));
        let cmd = redis::cmd("HSET").arg(&keys[1]).arg("f").arg("v").clone();
        let wrapped = con.req_packed_command(&cmd).await;
        let direct = bare.req_packed_command(&cmd).await;
        assert_eq!(format!("{wrapped:?}"), format!("{direct:?}"));
        for k in keys.iter().chain([&a, &b]) {
            let _: () = con.del(k).await.unwrap();
        }
    }
    .with_context(parent.clone())
    .await;
    drop(parent);

    let sets = spans_named(&t, "SET");
    assert_eq!(sets.len(), 20);
    for (span, k) in sets.iter().zip(&keys) {
        assert_eq!(span.parent_span_id, parent_id);
        assert_eq!(text(span), Some(format!("SET {k} ?")));
        assert_eq!(attr_str(span, semconv::DB_NAMESPACE).as_deref(), Some("0"));
        assert_eq!(
            attr(span, semconv::SERVER_PORT),
            Some(&i64::from(cluster.ports[0]).into())
        );
    }
    assert_eq!(spans_named(&t, "GET").len(), 20);
    let pipeline = t.span("PIPELINE INCRBY");
    assert_eq!(
        attr(&pipeline, semconv::DB_OPERATION_BATCH_SIZE),
        Some(&2i64.into())
    );
    let lpush = t.span("LPUSH");
    assert_eq!(
        attr_str(&lpush, semconv::ERROR_TYPE).as_deref(),
        Some("WRONGTYPE")
    );
    let hset = t.span("HSET");
    assert_eq!(
        attr_str(&hset, semconv::DB_RESPONSE_STATUS_CODE).as_deref(),
        Some("WRONGTYPE")
    );
    assert_nowhere(&t, "CLUSTER-VALUE");
    drop(cluster);
}
