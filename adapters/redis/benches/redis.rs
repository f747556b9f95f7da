//! Bare vs instrumented (sampled, unsampled) MultiplexedConnection over loopback, in one run:
//! a GET, and a 100-command pipeline of GETs.
//!
//! `CARGO_TARGET_DIR=target/redis cargo bench -p tracewire-redis --all-features --bench redis -- --warm-up-time 1 --measurement-time 3`
//!
//! Needs Redis on 127.0.0.1:6379 (or `TRACEWIRE_REDIS_URL`). Metrics stay on with the default
//! (global, no-op) meter provider, as an application without a metrics pipeline would run.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use redis::Value;
use redis::aio::MultiplexedConnection;
use tracewire_redis::RedisInstrumentation;
use tracewire_shared::Config;
use tracewire_shared::testing::{bench_tracer_provider, service_url};

const PIPELINE_LEN: u64 = 100;

fn bench(c: &mut Criterion) {
    let url = service_url("redis", "TRACEWIRE_REDIS_URL", "redis://127.0.0.1:6379/");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = redis::Client::open(url).unwrap();
    let key = format!("tw:bench:{}", std::process::id());
    let bare: MultiplexedConnection = rt.block_on(async {
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("value")
            .query_async(&mut con)
            .await
            .unwrap();
        con
    });
    let sampled_provider = bench_tracer_provider(true);
    let unsampled_provider = bench_tracer_provider(false);
    let sampled = RedisInstrumentation::for_client(
        &client,
        Config::new().with_tracer_provider(sampled_provider.clone()),
    )
    .wrap(bare.clone());
    let unsampled = RedisInstrumentation::for_client(
        &client,
        Config::new().with_tracer_provider(unsampled_provider.clone()),
    )
    .wrap(bare.clone());

    let get = redis::cmd("GET").arg(&key).clone();
    let mut pipe = redis::pipe();
    for _ in 0..PIPELINE_LEN {
        pipe.get(&key);
    }

    let mut g = c.benchmark_group("redis_get");
    g.throughput(Throughput::Elements(1));
    macro_rules! get {
        ($name:literal, $con:expr) => {
            g.bench_function($name, |b| {
                let con = $con.clone();
                // One connection for the whole batch: no per-iteration clone in the numbers.
                b.to_async(&rt).iter_custom(|iters| {
                    let mut con = con.clone();
                    let get = &get;
                    async move {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let v: String = get.query_async(&mut con).await.unwrap();
                            black_box(v);
                        }
                        start.elapsed()
                    }
                })
            });
        };
    }
    get!("bare", bare);
    get!("sampled", sampled);
    get!("unsampled", unsampled);
    g.finish();

    let mut g = c.benchmark_group("redis_pipeline_100");
    g.throughput(Throughput::Elements(PIPELINE_LEN));
    macro_rules! pipeline {
        ($name:literal, $con:expr) => {
            g.bench_function($name, |b| {
                let con = $con.clone();
                b.to_async(&rt).iter_custom(|iters| {
                    let mut con = con.clone();
                    let pipe = &pipe;
                    async move {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let v: Vec<String> = pipe.query_async(&mut con).await.unwrap();
                            black_box(v);
                        }
                        start.elapsed()
                    }
                })
            });
        };
    }
    pipeline!("bare", bare);
    pipeline!("sampled", sampled);
    pipeline!("unsampled", unsampled);
    g.finish();

    let _ = sampled_provider.shutdown();
    let _ = unsampled_provider.shutdown();
    let mut con = bare;
    let _: () = rt
        .block_on(redis::cmd("DEL").arg(&key).query_async(&mut con))
        .unwrap();
}

/// A connection that answers at once, without I/O: the difference between its bare and wrapped
/// runs is the instrumentation's own cost, free of network noise.
#[derive(Clone)]
struct Instant0;

impl redis::aio::ConnectionLike for Instant0 {
    fn req_packed_command<'a>(&'a mut self, _cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        Box::pin(async { Ok(Value::BulkString(b"value".to_vec())) })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _pipeline: &'a redis::Pipeline,
        _offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        Box::pin(async move { Ok(vec![Value::BulkString(b"value".to_vec()); count]) })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let client = redis::Client::open("redis://127.0.0.1/").unwrap();
    let sampled_provider = bench_tracer_provider(true);
    let unsampled_provider = bench_tracer_provider(false);
    let sampled = RedisInstrumentation::for_client(
        &client,
        Config::new().with_tracer_provider(sampled_provider.clone()),
    );
    let unsampled = RedisInstrumentation::for_client(
        &client,
        Config::new().with_tracer_provider(unsampled_provider.clone()),
    );
    // What the duration histogram costs an unsampled command (its two clock reads, mostly).
    let unsampled_metrics_off = RedisInstrumentation::for_client(
        &client,
        Config::new()
            .with_tracer_provider(unsampled_provider.clone())
            .with_metrics(false),
    );
    let get = redis::cmd("GET").arg("tw:bench:key").clone();
    let mut pipe = redis::pipe();
    for _ in 0..PIPELINE_LEN {
        pipe.get("tw:bench:key");
    }

    macro_rules! run {
        ($g:expr, $name:literal, $con:expr, $what:expr, $ty:ty) => {
            $g.bench_function($name, |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let mut con = $con;
                    let what = &$what;
                    async move {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let v: $ty = what.query_async(&mut con).await.unwrap();
                            black_box(v);
                        }
                        start.elapsed()
                    }
                })
            });
        };
    }
    let mut g = c.benchmark_group("overhead_get");
    g.throughput(Throughput::Elements(1));
    run!(g, "bare", Instant0, get, String);
    run!(g, "sampled", sampled.wrap(Instant0), get, String);
    run!(g, "unsampled", unsampled.wrap(Instant0), get, String);
    run!(
        g,
        "unsampled_metrics_off",
        unsampled_metrics_off.wrap(Instant0),
        get,
        String
    );
    g.finish();
    let mut g = c.benchmark_group("overhead_pipeline_100");
    g.throughput(Throughput::Elements(PIPELINE_LEN));
    run!(g, "bare", Instant0, pipe, Vec<String>);
    run!(g, "sampled", sampled.wrap(Instant0), pipe, Vec<String>);
    run!(g, "unsampled", unsampled.wrap(Instant0), pipe, Vec<String>);
    g.finish();
    let _ = sampled_provider.shutdown();
    let _ = unsampled_provider.shutdown();
}

criterion_group!(benches, bench, overhead);
criterion_main!(benches);
