//! Spans, propagation and metrics against a real HTTP server on 127.0.0.1.

mod support;

use std::time::Duration;

use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use support::{Server, closed_port, parse_traceparent};
use tracewire_reqwest::{OtelMiddleware, RequestBuilderExt, SendTracedExt, SpanName};
use tracewire_shared::semconv;
use tracewire_shared::testing::{Telemetry, attr, attr_str};

fn client(otel: OtelMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(otel)
        .build()
}

fn int(span: &SpanData, key: &str) -> Option<i64> {
    match attr(span, key) {
        Some(Value::I64(v)) => Some(*v),
        other => panic!("{key} is {other:?}"),
    }
}

fn error_type(span: &SpanData) -> Option<String> {
    attr_str(span, semconv::ERROR_TYPE)
}

/// The attributes a span shares with any other span of the same request, sorted.
fn stable_attributes(span: &SpanData) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = span
        .attributes
        .iter()
        .filter(|kv| kv.key.as_str() != semconv::NETWORK_PEER_PORT)
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn middleware_span_matches_the_propagated_context() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let client = client(OtelMiddleware::new(t.config()));
    let parent = t.parent("root");
    let root_id = parent.span().span_context().span_id();

    let resp = client
        .get(server.url("/ok"))
        .send()
        .with_context(parent.clone())
        .await
        .unwrap();
    let echoed = resp.headers()["x-received-traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(resp.text().await.unwrap(), "ok");
    drop(parent);

    let span = t.span("GET");
    let (trace_id, span_id, flags) = parse_traceparent(&echoed);
    assert_eq!(trace_id, span.span_context.trace_id());
    assert_eq!(span_id, span.span_context.span_id());
    assert_eq!(flags, "01");
    assert_eq!(span.parent_span_id, root_id);
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(span.status, Status::Unset);
    assert_eq!(
        attr_str(&span, semconv::HTTP_REQUEST_METHOD).as_deref(),
        Some("GET")
    );
    assert_eq!(attr_str(&span, semconv::URL_FULL), Some(server.url("/ok")));
    assert_eq!(
        attr_str(&span, semconv::SERVER_ADDRESS).as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(int(&span, semconv::SERVER_PORT), Some(server.port()));
    assert_eq!(int(&span, semconv::HTTP_RESPONSE_STATUS_CODE), Some(200));
    assert_eq!(
        attr_str(&span, semconv::NETWORK_PROTOCOL_VERSION).as_deref(),
        Some("1.1")
    );
    assert_eq!(
        attr_str(&span, semconv::NETWORK_PEER_ADDRESS).as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(error_type(&span), None);
    assert!(attr(&span, semconv::HTTP_REQUEST_RESEND_COUNT).is_none());
    assert_eq!(span.instrumentation_scope.name(), "tracewire-reqwest");

    let points = t.metric(semconv::metric::HTTP_CLIENT_REQUEST_DURATION);
    assert_eq!(points.len(), 1, "{points:?}");
    let p = &points[0];
    assert_eq!(p.count, 1);
    assert_eq!(p.unit, "s");
    assert_eq!(p.bounds.first(), Some(&0.005));
    assert_eq!(
        p.attr(semconv::HTTP_REQUEST_METHOD),
        Some(&Value::from("GET"))
    );
    assert_eq!(
        p.attr(semconv::HTTP_RESPONSE_STATUS_CODE),
        Some(&Value::I64(200))
    );
    assert_eq!(
        p.attr(semconv::SERVER_PORT),
        Some(&Value::I64(server.port()))
    );
    assert_eq!(
        p.attr(semconv::SERVER_ADDRESS),
        Some(&Value::from("127.0.0.1"))
    );
    assert_eq!(
        p.attr(semconv::NETWORK_PROTOCOL_VERSION),
        Some(&Value::from("1.1"))
    );
    assert!(p.attr(semconv::URL_FULL).is_none());
    assert!(p.attr(semconv::ERROR_TYPE).is_none());
}

#[tokio::test]
async fn send_traced_produces_the_same_span() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let otel = OtelMiddleware::new(t.config());
    let parent = t.parent("root");

    let via_middleware = client(otel.clone())
        .get(server.url("/ok?a=1"))
        .send()
        .with_context(parent.clone())
        .await
        .unwrap();
    let plain = reqwest::Client::new();
    // The parent is taken when `send_traced` is called, not when the future is polled.
    let pending = {
        let _guard = parent.clone().attach();
        plain.get(server.url("/ok?a=1")).send_traced(&otel)
    };
    let via_plain = tokio::spawn(pending).await.unwrap().unwrap();
    let root_id = parent.span().span_context().span_id();
    drop(parent);

    let spans: Vec<SpanData> = t
        .finished()
        .into_iter()
        .filter(|s| s.name == "GET")
        .collect();
    assert_eq!(spans.len(), 2);
    assert_eq!(stable_attributes(&spans[0]), stable_attributes(&spans[1]));
    for (span, resp) in spans.iter().zip([via_middleware, via_plain]) {
        assert_eq!(span.parent_span_id, root_id);
        let (_, span_id, _) =
            parse_traceparent(resp.headers()["x-received-traceparent"].to_str().unwrap());
        assert_eq!(span_id, span.span_context.span_id());
    }
    let points = t.metric(semconv::metric::HTTP_CLIENT_REQUEST_DURATION);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].count, 2);
}

#[tokio::test]
async fn status_codes_set_error_type_from_4xx() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let client = client(OtelMiddleware::new(t.config()));
    for (code, span_name) in [(204, "POST"), (404, "GET"), (503, "DELETE")] {
        let url = server.url(&format!("/status/{code}"));
        let builder = match span_name {
            "POST" => client.post(url),
            "GET" => client.get(url),
            _ => client.delete(url),
        };
        let resp = builder.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), code);
        let span = t.span(span_name);
        assert_eq!(
            int(&span, semconv::HTTP_RESPONSE_STATUS_CODE),
            Some(i64::from(code))
        );
        if code >= 400 {
            assert_eq!(error_type(&span), Some(code.to_string()));
            assert!(
                matches!(span.status, Status::Error { .. }),
                "{:?}",
                span.status
            );
        } else {
            assert_eq!(error_type(&span), None);
            assert_eq!(span.status, Status::Unset);
        }
    }
    let points = t.metric(semconv::metric::HTTP_CLIENT_REQUEST_DURATION);
    assert_eq!(points.len(), 3);
    let not_found = points
        .iter()
        .find(|p| p.attr(semconv::HTTP_RESPONSE_STATUS_CODE) == Some(&Value::I64(404)))
        .unwrap();
    assert_eq!(
        not_found.attr(semconv::ERROR_TYPE),
        Some(&Value::from("404"))
    );
    let no_content = points
        .iter()
        .find(|p| p.attr(semconv::HTTP_RESPONSE_STATUS_CODE) == Some(&Value::I64(204)))
        .unwrap();
    assert_eq!(no_content.attr(semconv::ERROR_TYPE), None);
}

#[tokio::test]
async fn timeout_and_connection_refused() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let client = client(OtelMiddleware::new(t.config()));

    let err = client
        .get(server.url("/slow"))
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    let span = t.span("GET");
    assert_eq!(error_type(&span).as_deref(), Some("timeout"));
    assert!(matches!(span.status, Status::Error { .. }));
    assert!(attr(&span, semconv::HTTP_RESPONSE_STATUS_CODE).is_none());
    let exception = span
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("an exception event");
    assert!(
        exception
            .attributes
            .contains(&KeyValue::new(semconv::EXCEPTION_TYPE, "reqwest::Error"))
    );

    let port = closed_port();
    let err = client
        .post(format!("http://127.0.0.1:{port}/nothing"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect());
    let span = t.span("POST");
    assert_eq!(error_type(&span).as_deref(), Some("connect"));
    assert_eq!(int(&span, semconv::SERVER_PORT), Some(i64::from(port)));
    assert!(matches!(span.status, Status::Error { .. }));

    let points = t.metric(semconv::metric::HTTP_CLIENT_REQUEST_DURATION);
    let mut kinds: Vec<String> = points
        .iter()
        .map(|p| p.attr(semconv::ERROR_TYPE).unwrap().to_string())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["connect", "timeout"]);
}

#[tokio::test]
async fn each_retry_attempt_is_its_own_span() {
    use reqwest_retry::{RetryTransientMiddleware, policies::ExponentialBackoff};

    let server = Server::start().await;
    let t = Telemetry::new();
    let policy = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), Duration::from_millis(5))
        .build_with_max_retries(3);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryTransientMiddleware::new_with_policy(policy))
        .with(OtelMiddleware::new(t.config()))
        .build();
    let parent = t.parent("root");
    let root_id = parent.span().span_context().span_id();
    let resp = client
        .get(server.url("/flaky/retry-test"))
        .url_template("/flaky/{key}")
        .send()
        .with_context(parent.clone())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    drop(parent);

    let mut spans: Vec<SpanData> = t.spans_of_kind(SpanKind::Client);
    spans.sort_by_key(|s| s.start_time);
    assert_eq!(spans.len(), 3);
    let resends: Vec<Option<i64>> = spans
        .iter()
        .map(|s| {
            attr(s, semconv::HTTP_REQUEST_RESEND_COUNT).map(|v| match v {
                Value::I64(n) => *n,
                other => panic!("{other:?}"),
            })
        })
        .collect();
    assert_eq!(resends, [None, Some(1), Some(2)]);
    let statuses: Vec<Option<i64>> = spans
        .iter()
        .map(|s| int(s, semconv::HTTP_RESPONSE_STATUS_CODE))
        .collect();
    assert_eq!(statuses, [Some(503), Some(503), Some(200)]);
    for span in &spans {
        assert_eq!(span.name, "GET /flaky/{key}");
        assert_eq!(span.parent_span_id, root_id);
    }
    // Each attempt carried its own span's context to the server.
    let received: Vec<_> = server
        .received("/flaky/retry-test")
        .iter()
        .map(|h| parse_traceparent(h["traceparent"].to_str().unwrap()).1)
        .collect();
    let span_ids: Vec<_> = spans.iter().map(|s| s.span_context.span_id()).collect();
    assert_eq!(received, span_ids);
}

#[tokio::test]
async fn only_a_failed_attempt_makes_the_next_one_a_resend() {
    // The attempt marker lives in the request's extensions; reusing them shows when it is left.
    let server = Server::start().await;
    let t = Telemetry::new();
    let client = client(OtelMiddleware::new(t.config()));
    let mut extensions = http::Extensions::new();
    let mut send = async |path: &str| {
        let request = client.get(server.url(path)).build().unwrap();
        client
            .execute_with_extensions(request, &mut extensions)
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(send("/status/200").await, 200);
    assert_eq!(send("/status/204").await, 204);
    assert_eq!(send("/status/503").await, 503);
    assert_eq!(send("/status/200").await, 200);

    let mut spans: Vec<SpanData> = t.spans_of_kind(SpanKind::Client);
    spans.sort_by_key(|s| s.start_time);
    let seen: Vec<(Option<i64>, Option<i64>)> = spans
        .iter()
        .map(|s| {
            let resends = attr(s, semconv::HTTP_REQUEST_RESEND_COUNT)
                .map(|_| int(s, semconv::HTTP_REQUEST_RESEND_COUNT).unwrap());
            (int(s, semconv::HTTP_RESPONSE_STATUS_CODE), resends)
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Some(200), None),
            (Some(204), None),
            (Some(503), None),
            (Some(200), Some(1)),
        ],
        "successes leave no marker; the request after a failure counts as its resend"
    );
}

#[tokio::test]
async fn http2_prior_knowledge() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let inner = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let client = ClientBuilder::new(inner)
        .with(OtelMiddleware::new(t.config()))
        .build();
    let resp = client.get(server.url("/ok")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let span = t.span("GET");
    assert_eq!(
        attr_str(&span, semconv::NETWORK_PROTOCOL_VERSION).as_deref(),
        Some("2")
    );
    let points = t.metric(semconv::metric::HTTP_CLIENT_REQUEST_DURATION);
    assert_eq!(
        points[0].attr(semconv::NETWORK_PROTOCOL_VERSION),
        Some(&Value::from("2"))
    );
}

fn assert_no_secret(spans: &[SpanData]) {
    for span in spans {
        let mut texts: Vec<String> = span
            .attributes
            .iter()
            .map(|kv| kv.value.to_string())
            .collect();
        texts.extend(
            span.events
                .iter()
                .flat_map(|e| e.attributes.iter().map(|kv| kv.value.to_string())),
        );
        if let Status::Error { description } = &span.status {
            texts.push(description.to_string());
        }
        texts.push(span.name.to_string());
        for text in texts {
            assert!(!text.contains("PLANTED"), "secret leaked in {text:?}");
        }
    }
}

#[tokio::test]
async fn userinfo_and_signed_query_values_are_redacted() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let client = client(OtelMiddleware::new(t.config()));
    let url = format!(
        "http://alice:PLANTEDpw@{}/ok?sig=PLANTEDsig&X-Amz-Signature=PLANTEDamz&keep=1#PLANTEDfrag",
        server.addr
    );
    // reqwest's builder moves userinfo into an Authorization header; a hand-built request keeps it in
    // the URL, so both shapes are checked.
    client.get(&url).send().await.unwrap();
    let request = reqwest::Request::new(reqwest::Method::OPTIONS, url.parse().unwrap());
    client.execute(request).await.unwrap();
    let query = "ok?sig=REDACTED&X-Amz-Signature=REDACTED&keep=1";
    let span = t.span("GET");
    assert_eq!(
        attr_str(&span, semconv::URL_FULL),
        Some(format!("http://{}/{query}", server.addr))
    );
    let span = t.span("OPTIONS");
    assert_eq!(
        attr_str(&span, semconv::URL_FULL),
        Some(format!("http://REDACTED:REDACTED@{}/{query}", server.addr))
    );

    // Failures too: reqwest's error message names the URL.
    let port = closed_port();
    let url = format!("http://bob:PLANTEDpw@127.0.0.1:{port}/x?Signature=PLANTEDsig");
    let request = reqwest::Request::new(reqwest::Method::PUT, url.parse().unwrap());
    let err = client.execute(request).await.unwrap_err();
    assert!(
        err.to_string().contains("PLANTED"),
        "the caller's error is unchanged"
    );
    let span = t.span("PUT");
    assert_eq!(error_type(&span).as_deref(), Some("connect"));
    let message = span.events[0]
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == semconv::EXCEPTION_MESSAGE)
        .unwrap()
        .value
        .to_string();
    assert!(
        message.contains(&format!(
            "REDACTED:REDACTED@127.0.0.1:{port}/x?Signature=REDACTED"
        )),
        "{message}"
    );
    assert_no_secret(&t.finished());
}

#[tokio::test]
async fn unsampled_requests_still_propagate_the_decision() {
    let server = Server::start().await;
    let t = Telemetry::unsampled();
    let client = client(OtelMiddleware::new(t.config()));
    let resp = client.get(server.url("/ok")).send().await.unwrap();
    let (trace_id, _, flags) =
        parse_traceparent(resp.headers()["x-received-traceparent"].to_str().unwrap());
    assert_ne!(trace_id, opentelemetry::trace::TraceId::INVALID);
    assert_eq!(flags, "00");
    assert!(t.finished().is_empty());
    // Metrics do not depend on sampling.
    let points = t.metric(semconv::metric::HTTP_CLIENT_REQUEST_DURATION);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].count, 1);
}

#[tokio::test]
async fn excluded_urls_get_nothing() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let otel = OtelMiddleware::builder()
        .config(t.config())
        .exclude_path_prefix("/status/2")
        .exclude(|req| req.url().query() == Some("skip"))
        .build();
    let client = client(otel.clone());
    client.get(server.url("/status/200")).send().await.unwrap();
    client.get(server.url("/ok?skip")).send().await.unwrap();
    reqwest::Client::new()
        .get(server.url("/ok?skip"))
        .send_traced(&otel)
        .await
        .unwrap();
    assert!(t.finished().is_empty());
    assert!(
        server
            .received("/status/200")
            .iter()
            .chain(&server.received("/ok"))
            .all(|h| !h.contains_key("traceparent"))
    );
    assert!(
        t.metric(semconv::metric::HTTP_CLIENT_REQUEST_DURATION)
            .is_empty()
    );

    client.get(server.url("/status/404")).send().await.unwrap();
    assert_eq!(t.finished().len(), 1);
}

#[tokio::test]
async fn url_template_and_span_names() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let otel = OtelMiddleware::builder()
        .config(t.config())
        .span_name(|req| (req.url().path() == "/ok").then(|| "health probe".to_owned()))
        .build();
    let client = client(otel.clone());
    client
        .get(server.url("/status/201"))
        .url_template("/status/{code}")
        .send()
        .await
        .unwrap();
    let span = t.span("GET /status/{code}");
    assert_eq!(
        attr_str(&span, semconv::URL_TEMPLATE).as_deref(),
        Some("/status/{code}")
    );
    let points = t.metric(semconv::metric::HTTP_CLIENT_REQUEST_DURATION);
    assert_eq!(
        points[0].attr(semconv::URL_TEMPLATE),
        Some(&Value::from("/status/{code}"))
    );

    client.get(server.url("/ok")).send().await.unwrap();
    t.span("health probe");
    client
        .get(server.url("/ok"))
        .with_extension(SpanName::new("explicit"))
        .send()
        .await
        .unwrap();
    t.span("explicit");
    reqwest::Client::new()
        .get(server.url("/status/202"))
        .traced(&otel)
        .url_template("/status/{code}")
        .span_name("plain explicit")
        .send()
        .await
        .unwrap();
    let span = t.span("plain explicit");
    assert_eq!(
        attr_str(&span, semconv::URL_TEMPLATE).as_deref(),
        Some("/status/{code}")
    );
}

#[tokio::test]
async fn unknown_methods_are_other() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let client = client(OtelMiddleware::new(t.config()));
    let purge = reqwest::Method::from_bytes(b"PURGE").unwrap();
    client
        .request(purge, server.url("/ok"))
        .url_template("/ok")
        .send()
        .await
        .unwrap();
    let span = t.span("HTTP /ok");
    assert_eq!(
        attr_str(&span, semconv::HTTP_REQUEST_METHOD).as_deref(),
        Some("_OTHER")
    );
    assert_eq!(
        attr_str(&span, semconv::HTTP_REQUEST_METHOD_ORIGINAL).as_deref(),
        Some("PURGE")
    );
    let points = t.metric(semconv::metric::HTTP_CLIENT_REQUEST_DURATION);
    assert_eq!(
        points[0].attr(semconv::HTTP_REQUEST_METHOD),
        Some(&Value::from("_OTHER"))
    );
}

#[tokio::test]
async fn headers_user_agent_and_hooks() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let otel = OtelMiddleware::builder()
        .config(t.config().with_opt_in(semconv::USER_AGENT_ORIGINAL))
        .capture_request_headers(["X-Request-Id"])
        .capture_response_headers(["Content-Type", "x-absent"])
        .on_request(|req, span| {
            span.set_attribute(KeyValue::new("app.path", req.url().path().to_owned()))
        })
        .on_response(|resp, span| {
            span.set_attribute(KeyValue::new("app.ok", resp.status().is_success()))
        })
        .build();
    client(otel)
        .get(server.url("/ok"))
        .header("x-request-id", "r1")
        .header("X-Request-Id", "r2")
        .header("user-agent", "tests/1.0")
        .send()
        .await
        .unwrap();
    let span = t.span("GET");
    assert_eq!(
        attr(&span, "http.request.header.x-request-id"),
        Some(&Value::Array(Array::String(vec!["r1".into(), "r2".into()])))
    );
    assert_eq!(
        attr(&span, "http.response.header.content-type"),
        Some(&Value::Array(Array::String(vec![
            "text/plain; charset=utf-8".into()
        ])))
    );
    assert!(attr(&span, "http.response.header.x-absent").is_none());
    assert_eq!(
        attr_str(&span, semconv::USER_AGENT_ORIGINAL).as_deref(),
        Some("tests/1.0")
    );
    assert_eq!(attr_str(&span, "app.path").as_deref(), Some("/ok"));
    assert_eq!(attr(&span, "app.ok"), Some(&Value::Bool(true)));
}

#[tokio::test]
async fn start_hook_veto_keeps_the_request() {
    use tracewire_shared::record::Decision;

    let server = Server::start().await;
    let t = Telemetry::new();
    let config = t.config().with_on_start(|span| {
        if span.name() == "DELETE" {
            Decision::Skip
        } else {
            Decision::Record
        }
    });
    let client = client(OtelMiddleware::new(config));
    let resp = client
        .delete(server.url("/status/200"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    client.get(server.url("/status/200")).send().await.unwrap();
    let names: Vec<String> = t.finished().iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["GET"]);
}

#[tokio::test]
async fn active_requests_is_opt_in() {
    let server = Server::start().await;
    let t = Telemetry::new();
    client(OtelMiddleware::new(t.config()))
        .get(server.url("/ok"))
        .send()
        .await
        .unwrap();
    assert!(
        t.metric(semconv::metric::HTTP_CLIENT_ACTIVE_REQUESTS)
            .is_empty()
    );

    let otel = OtelMiddleware::builder()
        .config(t.config())
        .active_requests(true)
        .build();
    let client = client(otel);
    let slow = client.get(server.url("/slow")).send();
    let handle = tokio::spawn(slow);
    server.slow_entered().await;
    let points = t.metric(semconv::metric::HTTP_CLIENT_ACTIVE_REQUESTS);
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].value, 1.0);
    assert_eq!(
        points[0].attr(semconv::HTTP_REQUEST_METHOD),
        Some(&Value::from("GET"))
    );
    assert_eq!(
        points[0].attr(semconv::SERVER_PORT),
        Some(&Value::I64(server.port()))
    );
    handle.abort();
    let _ = handle.await;
    let points = t.metric(semconv::metric::HTTP_CLIENT_ACTIVE_REQUESTS);
    assert_eq!(points[0].value, 0.0);

    // The dropped request's span ended as cancelled, not as an error, with no duration recorded.
    let slow_span = t
        .finished()
        .into_iter()
        .find(|s| attr_str(s, semconv::URL_FULL) == Some(server.url("/slow")))
        .unwrap();
    assert_eq!(
        attr(&slow_span, semconv::TRACEWIRE_CANCELLED),
        Some(&Value::Bool(true))
    );
    assert_eq!(error_type(&slow_span), None);
    let durations = t.metric(semconv::metric::HTTP_CLIENT_REQUEST_DURATION);
    assert_eq!(durations.iter().map(|p| p.count).sum::<u64>(), 1);
}

/// The span starts when its future is first polled, as an `async fn` middleware's would: an outer
/// middleware that runs the rest of the chain inside a context parents the span to it.
#[tokio::test]
async fn an_outer_middleware_s_context_parents_the_span() {
    use reqwest_middleware::{Middleware, Next};

    struct Within(opentelemetry::Context);
    #[async_trait::async_trait]
    impl Middleware for Within {
        async fn handle(
            &self,
            req: reqwest::Request,
            extensions: &mut http::Extensions,
            next: Next<'_>,
        ) -> reqwest_middleware::Result<reqwest::Response> {
            next.run(req, extensions).with_context(self.0.clone()).await
        }
    }

    let server = Server::start().await;
    let t = Telemetry::new();
    let outer = t.parent("outer");
    let outer_span = outer.span().span_context().clone();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(Within(outer))
        .with(OtelMiddleware::new(t.config()))
        .build();
    let resp = client.get(server.url("/ok")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    let span = t.span("GET");
    assert_eq!(span.parent_span_id, outer_span.span_id());
    assert_eq!(span.span_context.trace_id(), outer_span.trace_id());
    let received = server.received("/ok");
    let (trace_id, _, _) = parse_traceparent(received[0]["traceparent"].to_str().unwrap());
    assert_eq!(trace_id, outer_span.trace_id());
}

#[tokio::test]
async fn middleware_errors_are_other() {
    use reqwest_middleware::{Middleware, Next};

    struct Refuse;
    #[async_trait::async_trait]
    impl Middleware for Refuse {
        async fn handle(
            &self,
            req: reqwest::Request,
            _: &mut http::Extensions,
            _: Next<'_>,
        ) -> reqwest_middleware::Result<reqwest::Response> {
            Err(reqwest_middleware::Error::Middleware(anyhow::anyhow!(
                "refused {}",
                req.url()
            )))
        }
    }

    let t = Telemetry::new();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(OtelMiddleware::new(t.config()))
        .with(Refuse)
        .build();
    let err = client
        .get("http://u:PLANTEDpw@127.0.0.1:9/?sig=PLANTED")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_middleware());
    let span = t.span("GET");
    assert_eq!(error_type(&span).as_deref(), Some("_OTHER"));
    assert_no_secret(&t.finished());
}

#[tokio::test]
async fn invalid_header_values_from_the_propagator_are_dropped() {
    use opentelemetry::propagation::{
        Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter,
    };

    #[derive(Debug)]
    struct Broken;
    impl TextMapPropagator for Broken {
        fn inject_context(&self, _: &opentelemetry::Context, injector: &mut dyn Injector) {
            injector.set("x-broken", "line\nbreak".to_owned());
            injector.set("bad name", "v".to_owned());
            injector.set("x-fine", "yes".to_owned());
        }
        fn extract_with_context(
            &self,
            cx: &opentelemetry::Context,
            _: &dyn Extractor,
        ) -> opentelemetry::Context {
            cx.clone()
        }
        fn fields(&self) -> FieldIter<'_> {
            FieldIter::new(&[])
        }
    }

    let server = Server::start().await;
    let t = Telemetry::new();
    let client = client(OtelMiddleware::new(t.config().with_propagator(Broken)));
    let resp = client.get(server.url("/ok")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let received = server.received("/ok");
    assert!(!received[0].contains_key("x-broken"));
    assert_eq!(received[0]["x-fine"], "yes");
    t.span("GET");
}

#[tokio::test]
async fn http_dup_stability_mode_adds_legacy_names() {
    use tracewire_shared::config::SemconvStability;

    let server = Server::start().await;
    let t = Telemetry::new();
    let config = t
        .config()
        .with_semconv_stability(SemconvStability::parse("http/dup"));
    client(OtelMiddleware::new(config))
        .get(server.url("/status/404"))
        .send()
        .await
        .unwrap();
    let span = t.span("GET");
    assert_eq!(attr_str(&span, "http.method").as_deref(), Some("GET"));
    assert_eq!(int(&span, "http.status_code"), Some(404));
    assert_eq!(attr_str(&span, "http.url"), Some(server.url("/status/404")));
    assert_eq!(int(&span, "net.peer.port"), Some(server.port()));
    // The stable names stay.
    assert_eq!(int(&span, semconv::HTTP_RESPONSE_STATUS_CODE), Some(404));
    assert_eq!(error_type(&span).as_deref(), Some("404"));

    // Stable mode: no legacy names.
    let t = Telemetry::new();
    let config = t
        .config()
        .with_semconv_stability(SemconvStability::parse("http"));
    client(OtelMiddleware::new(config))
        .get(server.url("/ok"))
        .send()
        .await
        .unwrap();
    assert!(attr(&t.span("GET"), "http.method").is_none());
}

/// The duration point and the span read the clock together: the recorded duration is the span's own,
/// exactly, for a response, an error status and a transport failure.
#[tokio::test]
async fn the_duration_point_is_the_span_duration() {
    let server = Server::start().await;
    let port = closed_port();
    for (url, name) in [
        (server.url("/status/200"), "GET"),
        (server.url("/status/503"), "GET"),
        (format!("http://127.0.0.1:{port}/nothing"), "GET"),
    ] {
        let t = Telemetry::new();
        let client = client(OtelMiddleware::new(t.config()));
        let _ = client.get(&url).send().await;
        let span = t.span(name);
        let took = span.end_time.duration_since(span.start_time).unwrap();
        let points = t.metric(semconv::metric::HTTP_CLIENT_REQUEST_DURATION);
        assert_eq!(points.len(), 1, "{url}");
        assert_eq!(points[0].count, 1, "{url}");
        assert_eq!(points[0].value, took.as_secs_f64(), "{url}");
        assert!(took > Duration::ZERO, "{url}");
    }
}
