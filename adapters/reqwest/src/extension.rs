//! Per-request options carried in the request's extensions: the URL template and a span name.

use std::borrow::Cow;

/// The route template of a request (`/users/{id}`): recorded as `url.template` on the span and the
/// duration metric, and the span is named `{method} {template}`.
///
/// Attach it with [`RequestBuilderExt::url_template`] (reqwest-middleware) or
/// [`TracedRequestBuilder::url_template`](crate::TracedRequestBuilder::url_template) (plain reqwest).
/// Use a template, never the concrete path: the span name and the metric must stay low-cardinality.
///
/// ```
/// use tracewire_reqwest::UrlTemplate;
///
/// let t = UrlTemplate::new("/users/{id}");
/// assert_eq!(t.as_str(), "/users/{id}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UrlTemplate(pub Cow<'static, str>);

impl UrlTemplate {
    /// A template; `&'static str` templates are stored without allocating.
    pub fn new(template: impl Into<Cow<'static, str>>) -> Self {
        Self(template.into())
    }

    /// The template.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A span name for one request, overriding the default (`{method}` or `{method} {url.template}`) and
/// the builder's [`span_name`](crate::OtelMiddlewareBuilder::span_name) closure.
///
/// ```
/// use tracewire_reqwest::SpanName;
///
/// let n = SpanName::new("fetch avatar");
/// assert_eq!(n.as_str(), "fetch avatar");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpanName(pub Cow<'static, str>);

impl SpanName {
    /// A span name; keep it low-cardinality.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self(name.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Per-request options on [`reqwest_middleware::RequestBuilder`], read by
/// [`OtelMiddleware`](crate::OtelMiddleware).
///
/// ```no_run
/// use tracewire_reqwest::{OtelMiddleware, RequestBuilderExt};
///
/// # async fn run() -> reqwest_middleware::Result<()> {
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(OtelMiddleware::default())
///     .build();
/// let user = client
///     .get("https://api.example.com/users/42")
///     .url_template("/users/{id}") // span "GET /users/{id}"
///     .send()
///     .await?;
/// # let _ = user;
/// # Ok(())
/// # }
/// ```
pub trait RequestBuilderExt: Sized {
    /// Sets the request's [`UrlTemplate`].
    fn url_template(self, template: impl Into<Cow<'static, str>>) -> Self;

    /// Sets the request's [`SpanName`].
    fn span_name(self, name: impl Into<Cow<'static, str>>) -> Self;
}

impl RequestBuilderExt for reqwest_middleware::RequestBuilder {
    fn url_template(self, template: impl Into<Cow<'static, str>>) -> Self {
        self.with_extension(UrlTemplate::new(template))
    }

    fn span_name(self, name: impl Into<Cow<'static, str>>) -> Self {
        self.with_extension(SpanName::new(name))
    }
}
