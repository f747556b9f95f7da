//! OpenTelemetry instrumentation for [`reqwest`] and [`reqwest_middleware`].
//!
//! Every request becomes one CLIENT span following the stable HTTP semantic conventions, its trace
//! context is injected as `traceparent`/`tracestate`, and `http.client.request.duration` is recorded.
//! Two ways in, same span:
//!
//! - [`OtelMiddleware`] for [`reqwest_middleware::ClientBuilder::with`];
//! - [`SendTracedExt::send_traced`] for code that keeps a plain [`reqwest::Client`].
//!
//! ```no_run
//! use reqwest_middleware::ClientBuilder;
//! use tracewire_reqwest::{OtelMiddleware, RequestBuilderExt, SendTracedExt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let otel = OtelMiddleware::default(); // global providers; or OtelMiddleware::new(config)
//!
//! // reqwest-middleware
//! let client = ClientBuilder::new(reqwest::Client::new()).with(otel.clone()).build();
//! client.get("https://api.example.com/users/42").url_template("/users/{id}").send().await?;
//!
//! // plain reqwest
//! reqwest::Client::new().get("https://example.com/").send_traced(&otel).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Spans
//!
//! Name `{method}` or `{method} {url.template}` (`HTTP` stands for unknown methods), kind CLIENT,
//! attributes `http.request.method` (`_OTHER` plus `http.request.method_original` for unknown methods),
//! `url.full` (userinfo and signed query values redacted), `server.address`, `server.port` (always,
//! the scheme's default included, as the HTTP conventions require), `url.template`,
//! `http.response.status_code`, `network.protocol.version`, `network.peer.address`/`.port`,
//! `http.request.resend_count` on retries, opt-in `user_agent.original` and captured headers.
//! Status codes ≥ 400 set status Error and `error.type` to the code; transport failures set
//! `error.type` to `timeout`, `connect`, `request`, `body`, `decode`, `redirect` or `_OTHER`.
//!
//! The span ends when the response headers arrive; bodies are never touched, so streaming requests
//! and responses still stream. A request future dropped before its response ends its span marked
//! `tracewire.cancelled` and records no duration.
//!
//! # Retries
//!
//! With reqwest-retry, add [`OtelMiddleware`] **after** `RetryTransientMiddleware`:
//!
//! ```
//! use reqwest_middleware::ClientBuilder;
//! use reqwest_retry::{RetryTransientMiddleware, policies::ExponentialBackoff};
//! use tracewire_reqwest::OtelMiddleware;
//!
//! let policy = ExponentialBackoff::builder().build_with_max_retries(3);
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(RetryTransientMiddleware::new_with_policy(policy))
//!     .with(OtelMiddleware::default()) // after: one span per attempt
//!     .build();
//! # let _ = client;
//! ```

mod attributes;
mod builder;
mod error;
mod exchange;
mod extension;
mod middleware;
mod point;
mod send;

pub use builder::OtelMiddlewareBuilder;
pub use extension::{RequestBuilderExt, SpanName, UrlTemplate};
pub use middleware::OtelMiddleware;
pub use send::{SendTracedExt, TracedRequestBuilder};
