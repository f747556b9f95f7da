//! An in-process HTTP server on 127.0.0.1 for the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use opentelemetry::trace::{SpanId, TraceId};
use tokio::sync::Notify;

#[derive(Default)]
struct Shared {
    /// (path, headers) of every request received, in order.
    received: Mutex<Vec<(String, HeaderMap)>>,
    flaky: Mutex<HashMap<String, u32>>,
    /// Released by the test to let `/stream` send its second chunk.
    stream_gate: Notify,
    /// Signalled when `/slow` has received its request.
    slow_entered: Notify,
}

/// A running test server; stops with the test's runtime.
#[derive(Clone)]
pub struct Server {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Server {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/ok", any(ok))
            .route("/status/{code}", any(status))
            .route("/slow", get(slow))
            .route("/flaky/{key}", get(flaky))
            .route("/stream", get(stream))
            .route("/echo", post(echo))
            .layer(middleware::from_fn_with_state(shared.clone(), record))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> i64 {
        i64::from(self.addr.port())
    }

    /// The headers of every request received for `path`, in order.
    pub fn received(&self, path: &str) -> Vec<HeaderMap> {
        self.shared
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, h)| h.clone())
            .collect()
    }

    pub fn release_stream(&self) {
        self.shared.stream_gate.notify_one();
    }

    pub async fn slow_entered(&self) {
        self.shared.slow_entered.notified().await;
    }
}

/// A port on which nothing listens.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn record(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    shared
        .received
        .lock()
        .unwrap()
        .push((req.uri().path().to_owned(), req.headers().clone()));
    next.run(req).await
}

fn echo_traceparent(headers: &HeaderMap) -> [(&'static str, HeaderValue); 1] {
    [(
        "x-received-traceparent",
        headers
            .get("traceparent")
            .cloned()
            .unwrap_or(HeaderValue::from_static("")),
    )]
}

async fn ok(headers: HeaderMap) -> impl IntoResponse {
    (echo_traceparent(&headers), "ok")
}

async fn status(Path(code): Path<u16>, headers: HeaderMap) -> impl IntoResponse {
    (
        StatusCode::from_u16(code).unwrap(),
        echo_traceparent(&headers),
        format!("status {code}"),
    )
}

async fn slow(State(shared): State<Arc<Shared>>) -> &'static str {
    shared.slow_entered.notify_one();
    tokio::time::sleep(Duration::from_secs(30)).await;
    "late"
}

async fn flaky(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> impl IntoResponse {
    let n = {
        let mut map = shared.flaky.lock().unwrap();
        let n = map.entry(key).or_insert(0);
        *n += 1;
        *n
    };
    if n <= 2 {
        (StatusCode::SERVICE_UNAVAILABLE, "try again")
    } else {
        (StatusCode::OK, "finally")
    }
}

async fn stream(State(shared): State<Arc<Shared>>) -> Response {
    let chunks = futures_util::stream::unfold(0u8, move |step| {
        let shared = shared.clone();
        async move {
            match step {
                0 => Some((Ok::<_, std::io::Error>(Bytes::from_static(b"first;")), 1)),
                1 => {
                    shared.stream_gate.notified().await;
                    Some((Ok(Bytes::from_static(b"second")), 2))
                }
                _ => None,
            }
        }
    });
    Body::from_stream(chunks).into_response()
}

async fn echo(body: Bytes) -> String {
    format!("{} bytes", body.len())
}

/// The trace id and span id of a `traceparent` header value.
pub fn parse_traceparent(value: &str) -> (TraceId, SpanId, String) {
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {value:?}");
    (
        TraceId::from_hex(parts[1]).unwrap(),
        SpanId::from_hex(parts[2]).unwrap(),
        parts[3].to_owned(),
    )
}
