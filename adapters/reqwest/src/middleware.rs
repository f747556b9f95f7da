//! [`OtelMiddleware`]: the reqwest-middleware way in.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::Extensions;
use opentelemetry::context::FutureExt as _;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use tracewire_shared::Config;

use crate::builder::OtelMiddlewareBuilder;
use crate::exchange::{Core, RequestOptions};
use crate::extension::{SpanName, UrlTemplate};

/// OpenTelemetry instrumentation for HTTP requests: one CLIENT span per request (per attempt under
/// reqwest-retry), `traceparent`/`tracestate` injected, `http.client.request.duration` recorded.
///
/// Use it as a [`reqwest_middleware`] middleware, or with plain `reqwest` through
/// [`SendTracedExt`](crate::SendTracedExt). Cheap to clone: clones share their configuration.
///
/// With [reqwest-retry], add it **after** the retry middleware so that it runs once per attempt: each
/// attempt then gets its own span and repeats carry `http.request.resend_count`. Added before, it
/// records one span for the whole retried exchange. Attempts are counted through a marker that a
/// failed attempt (a transport error, or a 4xx or 5xx status: what retry policies retry) leaves in the
/// request's [`Extensions`], which reqwest-retry hands to every attempt. A request that succeeds
/// leaves no marker, so the usual request pays nothing for it; reusing one `Extensions` for several
/// logical requests with `execute_with_extensions` would count a request after a failed one as its
/// resend.
///
/// ```no_run
/// use reqwest_middleware::ClientBuilder;
/// use tracewire_reqwest::OtelMiddleware;
/// use tracewire_shared::Config;
///
/// # async fn run() -> reqwest_middleware::Result<()> {
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(OtelMiddleware::new(Config::new()))
///     .build();
/// let body = client.get("https://example.com/").send().await?.text().await?;
/// # let _ = body;
/// # Ok(())
/// # }
/// ```
///
/// [reqwest-retry]: https://docs.rs/reqwest-retry
#[derive(Clone, Debug)]
pub struct OtelMiddleware {
    pub(crate) core: Arc<Core>,
}

impl Default for OtelMiddleware {
    /// Global providers and propagator, default options.
    fn default() -> Self {
        Self::builder().build()
    }
}

impl OtelMiddleware {
    /// The middleware with `config` and default HTTP options.
    pub fn new(config: Config) -> Self {
        Self::builder().config(config).build()
    }

    /// A builder for the HTTP options (excluded URLs, captured headers, hooks, span names).
    pub fn builder() -> OtelMiddlewareBuilder {
        OtelMiddlewareBuilder::default()
    }

    /// The shared configuration.
    pub fn config(&self) -> &Config {
        self.core.inst.config()
    }
}

/// Counts the attempts of one logical request. reqwest-retry hands the same [`Extensions`] to every
/// attempt, so the marker survives from one attempt to the next.
#[derive(Clone, Copy, Debug)]
struct Attempts(u32);

/// Whether an attempt ended the way retry policies retry: the next attempt, if any, is a resend.
fn may_be_retried(result: &reqwest_middleware::Result<Response>) -> bool {
    match result {
        Ok(response) => response.status().is_client_error() || response.status().is_server_error(),
        Err(_) => true,
    }
}

/// The future [`Middleware::handle`] returns, as `#[async_trait]` would declare it.
type HandleFuture<'a> =
    Pin<Box<dyn Future<Output = reqwest_middleware::Result<Response>> + Send + 'a>>;

// Written out instead of through `#[async_trait]`, to keep the boxed future small. `#[async_trait]`
// rebinds every argument inside the future, and a rebound request or flight that is borrowed before
// the await keeps a slot of its own in the future next to the captured one. Used in place, they do
// not. Each request allocates and moves this future, and the first layout (1 008 bytes) sat just
// under the 1 032 bytes up to which glibc serves allocations from its per-thread cache. As
// with `#[async_trait]`, nothing happens before the first poll, so the span starts in the context the
// caller polls in (an outer middleware's `.with_context(..)` or `.instrument(..)` included).
impl Middleware for OtelMiddleware {
    fn handle<'s, 'e, 'n, 'f>(
        &'s self,
        mut req: Request,
        extensions: &'e mut Extensions,
        next: Next<'n>,
    ) -> HandleFuture<'f>
    where
        's: 'f,
        'e: 'f,
        'n: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let resend_count = extensions.get_mut::<Attempts>().map(|attempts| {
                let resends = attempts.0;
                attempts.0 = attempts.0.saturating_add(1);
                resends
            });
            let options = RequestOptions {
                template: extensions.get::<UrlTemplate>().map(|t| &t.0),
                span_name: extensions.get::<SpanName>().map(|n| &n.0),
                resend_count,
                parent: None,
            };
            let Some(mut flight) = self.core.begin(&mut req, options) else {
                return next.run(req, extensions).await;
            };
            // Inner middlewares see the request's span as current, but only when it records:
            // attaching a context on every poll is not free.
            let result = match flight.context_if_recording() {
                Some(cx) => next.run(req, extensions).with_context(cx).await,
                None => next.run(req, extensions).await,
            };
            flight.finish(&result);
            // The marker is left only by a first attempt that may be retried: inserting it
            // allocates.
            if resend_count.is_none() && may_be_retried(&result) {
                extensions.insert(Attempts(1));
            }
            result
        })
    }
}
