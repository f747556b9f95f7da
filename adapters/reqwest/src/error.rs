//! Low-cardinality `error.type` values and secret-free messages for failed requests.

use std::error::Error as StdError;
use std::fmt::Write as _;

use tracewire_shared::sanitize::url::redact_with;
use tracewire_shared::semconv::ERROR_TYPE_OTHER;
use url::Url;

/// An error that ends a request without a response.
pub(crate) trait TransportError {
    /// `error.type`: `timeout`, `connect`, `request`, `body`, `decode`, `redirect` or `_OTHER`.
    fn error_type(&self) -> &'static str;

    /// The error and its sources, with any URL in it redacted.
    fn message(&self, request_url: Option<&Url>, redacted_params: &[String]) -> String;

    /// `exception.type`.
    fn exception_type(&self) -> &'static str;
}

fn reqwest_error_type(e: &reqwest::Error) -> &'static str {
    // Timeout first: a connect timeout is both, and "timeout" is what an operator looks for.
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_redirect() {
        "redirect"
    } else if e.is_body() {
        "body"
    } else if e.is_decode() {
        "decode"
    } else if e.is_request() {
        "request"
    } else {
        ERROR_TYPE_OTHER
    }
}

/// `top` followed by each source, `: `-separated, with the raw URLs replaced by their redacted form.
fn describe(
    top: String,
    source: Option<&(dyn StdError + 'static)>,
    urls: &[&Url],
    redacted_params: &[String],
) -> String {
    let mut msg = top;
    let mut next = source;
    // Bounded: a cyclic or absurdly deep chain must not loop or grow the message forever.
    for _ in 0..8 {
        let Some(e) = next else { break };
        let _ = write!(msg, ": {e}");
        next = e.source();
    }
    for url in urls {
        let raw = url.as_str();
        if msg.contains(raw) {
            msg = msg.replace(raw, &redact_with(url, redacted_params));
        }
    }
    msg
}

impl TransportError for reqwest::Error {
    fn error_type(&self) -> &'static str {
        reqwest_error_type(self)
    }

    fn message(&self, request_url: Option<&Url>, redacted_params: &[String]) -> String {
        let urls: Vec<&Url> = self.url().into_iter().chain(request_url).collect();
        describe(self.to_string(), self.source(), &urls, redacted_params)
    }

    fn exception_type(&self) -> &'static str {
        "reqwest::Error"
    }
}

impl TransportError for reqwest_middleware::Error {
    fn error_type(&self) -> &'static str {
        match self {
            Self::Reqwest(e) => reqwest_error_type(e),
            Self::Middleware(_) => ERROR_TYPE_OTHER,
        }
    }

    fn message(&self, request_url: Option<&Url>, redacted_params: &[String]) -> String {
        match self {
            Self::Reqwest(e) => e.message(request_url, redacted_params),
            Self::Middleware(e) => {
                let urls: Vec<&Url> = request_url.into_iter().collect();
                let source: &(dyn StdError + 'static) = e.as_ref();
                describe(e.to_string(), source.source(), &urls, redacted_params)
            }
        }
    }

    fn exception_type(&self) -> &'static str {
        match self {
            Self::Reqwest(_) => "reqwest::Error",
            Self::Middleware(_) => "reqwest_middleware::Error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Leaky(String);
    impl std::fmt::Display for Leaky {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "failed on {}", self.0)
        }
    }
    impl StdError for Leaky {}

    #[test]
    fn middleware_messages_are_redacted() {
        let url = Url::parse("http://u:secret@h/p?sig=SECRET_SIG").unwrap();
        let err = reqwest_middleware::Error::middleware(Leaky(url.to_string()));
        let params = vec!["sig".to_string()];
        let msg = err.message(Some(&url), &params);
        assert!(!msg.contains("secret"), "{msg}");
        assert!(!msg.contains("SECRET_SIG"), "{msg}");
        assert!(msg.contains("REDACTED:REDACTED@h/p?sig=REDACTED"), "{msg}");
        assert_eq!(err.error_type(), "_OTHER");
        assert_eq!(err.exception_type(), "reqwest_middleware::Error");
    }
}
