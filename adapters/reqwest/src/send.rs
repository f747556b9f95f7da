//! The plain-reqwest way in: an extension trait on [`reqwest::RequestBuilder`].

use std::borrow::Cow;
use std::future::Future;

use reqwest::Response;
use tracewire_shared::context;

use crate::OtelMiddleware;
use crate::exchange::RequestOptions;

/// Sends a [`reqwest::RequestBuilder`] with the same span, propagation and metrics as
/// [`OtelMiddleware`], for code that keeps `reqwest::Client`.
///
/// Results and errors are exactly those of [`reqwest::RequestBuilder::send`].
///
/// ```no_run
/// use tracewire_reqwest::{OtelMiddleware, SendTracedExt};
///
/// # async fn run() -> reqwest::Result<()> {
/// let otel = OtelMiddleware::default(); // build once, share
/// let client = reqwest::Client::new();
///
/// let resp = client.get("https://example.com/").send_traced(&otel).await?;
/// let user = client
///     .get("https://api.example.com/users/42")
///     .traced(&otel)
///     .url_template("/users/{id}")
///     .send()
///     .await?;
/// # let _ = (resp, user);
/// # Ok(())
/// # }
/// ```
pub trait SendTracedExt: Sized {
    /// Like [`send`](reqwest::RequestBuilder::send), inside a CLIENT span.
    fn send_traced(
        self,
        otel: &OtelMiddleware,
    ) -> impl Future<Output = reqwest::Result<Response>> + Send + 'static {
        self.traced(otel).send()
    }

    /// A builder for per-request options ([`url_template`](TracedRequestBuilder::url_template),
    /// [`span_name`](TracedRequestBuilder::span_name)) before sending.
    fn traced(self, otel: &OtelMiddleware) -> TracedRequestBuilder;
}

impl SendTracedExt for reqwest::RequestBuilder {
    fn traced(self, otel: &OtelMiddleware) -> TracedRequestBuilder {
        TracedRequestBuilder {
            builder: self,
            otel: otel.clone(),
            template: None,
            span_name: None,
        }
    }
}

/// A [`reqwest::RequestBuilder`] with tracing options, from [`SendTracedExt::traced`].
///
/// ```no_run
/// use tracewire_reqwest::{OtelMiddleware, SendTracedExt};
///
/// # async fn run(otel: OtelMiddleware) -> reqwest::Result<()> {
/// let resp = reqwest::Client::new()
///     .post("https://api.example.com/orders")
///     .body("{}")
///     .traced(&otel)
///     .span_name("create order")
///     .send()
///     .await?;
/// # let _ = resp;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TracedRequestBuilder {
    builder: reqwest::RequestBuilder,
    otel: OtelMiddleware,
    template: Option<Cow<'static, str>>,
    span_name: Option<Cow<'static, str>>,
}

impl TracedRequestBuilder {
    /// Sets the [`UrlTemplate`](crate::UrlTemplate): `url.template`, and the span is named
    /// `{method} {template}`.
    pub fn url_template(mut self, template: impl Into<Cow<'static, str>>) -> Self {
        self.template = Some(template.into());
        self
    }

    /// Sets the [`SpanName`](crate::SpanName).
    pub fn span_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.span_name = Some(name.into());
        self
    }

    /// The wrapped builder, without tracing.
    pub fn into_inner(self) -> reqwest::RequestBuilder {
        self.builder
    }

    /// Sends the request inside a CLIENT span. The parent is the context current when `send` is
    /// called (not when the future is first polled), so spawning the future keeps the parent.
    pub fn send(self) -> impl Future<Output = reqwest::Result<Response>> + Send + 'static {
        let parent = context::parent();
        let (client, mut request) = self.builder.build_split();
        let core = self.otel.core;
        let (template, span_name) = (self.template, self.span_name);
        // The captured request is used in place: a request rebound inside the future and borrowed
        // before the await would keep a second slot of its size in the future.
        async move {
            let flight = match &mut request {
                Ok(request) => core.begin(
                    request,
                    RequestOptions {
                        template: template.as_ref(),
                        span_name: span_name.as_ref(),
                        resend_count: None,
                        parent: Some(&parent),
                    },
                ),
                Err(_) => None,
            };
            let request = request?;
            let result = client.execute(request).await;
            if let Some(mut flight) = flight {
                flight.finish(&result);
            }
            result
        }
    }
}
