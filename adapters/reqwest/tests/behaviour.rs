//! The instrumented clients behave exactly like the bare one: same responses, same errors, bodies
//! still streaming.

mod support;

use std::time::Duration;

use reqwest::{Method, Response};
use reqwest_middleware::ClientBuilder;
use support::{Server, closed_port};
use tracewire_reqwest::{OtelMiddleware, SendTracedExt};
use tracewire_shared::semconv;
use tracewire_shared::testing::{Telemetry, attr};

/// What the caller can observe of a response, minus the headers tracing is expected to change.
async fn observe(resp: Response) -> (u16, reqwest::Version, Vec<(String, String)>, String) {
    let status = resp.status().as_u16();
    let version = resp.version();
    let mut headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| *k != "date" && *k != "x-received-traceparent")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    (status, version, headers, resp.text().await.unwrap())
}

#[tokio::test]
async fn responses_and_errors_match_the_bare_client() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let otel = OtelMiddleware::new(t.config());
    let bare = reqwest::Client::new();
    let with_mw = ClientBuilder::new(bare.clone()).with(otel.clone()).build();
    let refused = format!("http://127.0.0.1:{}/x", closed_port());

    let cases: Vec<(Method, String, Option<&'static str>)> = vec![
        (Method::GET, server.url("/ok"), None),
        (Method::HEAD, server.url("/ok"), None),
        (Method::GET, server.url("/status/404"), None),
        (Method::PUT, server.url("/status/500"), None),
        (Method::POST, server.url("/echo"), Some("hello body")),
    ];
    for (method, url, body) in cases {
        let build = |b: reqwest::RequestBuilder| match body {
            Some(body) => b.body(body),
            None => b,
        };
        let expected = observe(
            build(bare.request(method.clone(), &url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let mut mw = with_mw.request(method.clone(), &url);
        if let Some(body) = body {
            mw = mw.body(body);
        }
        let got_mw = observe(mw.send().await.unwrap()).await;
        let got_plain = observe(
            build(bare.request(method.clone(), &url))
                .send_traced(&otel)
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(got_mw, expected, "{method} {url} via middleware");
        assert_eq!(got_plain, expected, "{method} {url} via send_traced");
    }

    // Errors: same kind and same message.
    let timeout = |b: reqwest::RequestBuilder| b.timeout(Duration::from_millis(100));
    let expected = timeout(bare.get(server.url("/slow")))
        .send()
        .await
        .unwrap_err();
    let got_plain = timeout(bare.get(server.url("/slow")))
        .send_traced(&otel)
        .await
        .unwrap_err();
    let got_mw = with_mw
        .get(server.url("/slow"))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(got_plain.is_timeout() && got_mw.is_timeout() && expected.is_timeout());
    assert_eq!(got_plain.to_string(), expected.to_string());
    match got_mw {
        reqwest_middleware::Error::Reqwest(e) => assert_eq!(e.to_string(), expected.to_string()),
        other => panic!("variant changed: {other:?}"),
    }

    let expected = bare.get(&refused).send().await.unwrap_err();
    let got_plain = bare.get(&refused).send_traced(&otel).await.unwrap_err();
    let got_mw = with_mw.get(&refused).send().await.unwrap_err();
    assert!(expected.is_connect() && got_plain.is_connect() && got_mw.is_connect());
    assert_eq!(got_plain.to_string(), expected.to_string());
    assert_eq!(got_mw.to_string(), expected.to_string());
    assert_eq!(
        format!(
            "{:?}",
            std::error::Error::source(&got_plain).map(|s| s.to_string())
        ),
        format!(
            "{:?}",
            std::error::Error::source(&expected).map(|s| s.to_string())
        )
    );

    // A request that cannot be built fails the same way, before any span starts.
    let expected = bare.get("not a url").send().await.unwrap_err();
    let got_plain = bare.get("not a url").send_traced(&otel).await.unwrap_err();
    assert!(expected.is_builder() && got_plain.is_builder());
    assert_eq!(got_plain.to_string(), expected.to_string());

    // 5 cases via two instrumented paths, the two timeouts and the two refusals.
    assert_eq!(t.finished().len(), 14);
}

#[tokio::test]
async fn response_bodies_still_stream() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(OtelMiddleware::new(t.config()))
        .build();
    let mut resp = client.get(server.url("/stream")).send().await.unwrap();
    let first = resp.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"first;");
    // The server holds the rest back until released: had anything buffered the body, we would never
    // have got here. The span ended with the headers.
    let span = t.span("GET");
    assert_eq!(
        attr(&span, semconv::HTTP_RESPONSE_STATUS_CODE),
        Some(&opentelemetry::Value::I64(200))
    );
    server.release_stream();
    let mut rest = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"second");
}

#[tokio::test]
async fn request_bodies_still_stream() {
    let server = Server::start().await;
    let t = Telemetry::new();
    let otel = OtelMiddleware::new(t.config());
    let chunks =
        futures_util::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1024])));
    let resp = reqwest::Client::new()
        .post(server.url("/echo"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send_traced(&otel)
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "65536 bytes");
    let received = server.received("/echo");
    // A streamed body goes out chunked, without a length.
    assert_eq!(received[0]["transfer-encoding"], "chunked");
    assert!(received[0].contains_key("traceparent"));
    t.span("POST");
}
