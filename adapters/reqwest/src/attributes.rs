//! Turning requests and responses into attribute values.

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, Method, Version};
use opentelemetry::{Array, Key, KeyValue, StringValue, Value};
use tracewire_shared::cache::StatementCache;
use tracewire_shared::value::shared_str;
use url::{Host, Url};

/// The methods the semantic conventions know (RFC 9110, PATCH, QUERY).
const DEFAULT_KNOWN_METHODS: &[&str] = &[
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY",
];

/// `http.request.method` as the conventions want it: a known method, or `_OTHER` with the original.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MethodName {
    /// A known method, as a static string when it is one of the standard ones.
    Known(Cow<'static, str>),
    /// Anything else: `_OTHER`, and the original kept for `http.request.method_original`.
    Other(String),
}

impl MethodName {
    /// The value of `http.request.method`.
    pub(crate) fn value(&self) -> StringValue {
        match self {
            Self::Known(m) => StringValue::from(m.clone()),
            Self::Other(_) => StringValue::from(tracewire_shared::semconv::ERROR_TYPE_OTHER),
        }
    }

    /// The `{method}` part of the span name: `HTTP` for unknown methods, as the conventions ask.
    pub(crate) fn span_name(&self) -> Cow<'static, str> {
        match self {
            Self::Known(m) => m.clone(),
            Self::Other(_) => Cow::Borrowed("HTTP"),
        }
    }
}

/// Which methods count as known (`OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` semantics).
#[derive(Clone, Debug, Default)]
pub(crate) struct KnownMethods(Option<Arc<[String]>>);

impl KnownMethods {
    pub(crate) fn new(methods: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        Self(Some(
            methods.into_iter().map(|m| m.as_ref().to_owned()).collect(),
        ))
    }

    pub(crate) fn classify(&self, method: &Method) -> MethodName {
        // The default list holds every standard method: those are known without comparing strings.
        if self.0.is_none()
            && let Some(name) = standard_name(method)
        {
            return MethodName::Known(Cow::Borrowed(name));
        }
        let name = method.as_str();
        let known = match &self.0 {
            None => DEFAULT_KNOWN_METHODS.contains(&name),
            Some(list) => list.iter().any(|m| m == name),
        };
        if !known {
            return MethodName::Other(name.to_owned());
        }
        // The standard methods come without an allocation.
        MethodName::Known(match standard_name(method) {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(name.to_owned()),
        })
    }
}

/// The name of one of the methods `http::Method` has a constant for, without a string comparison.
fn standard_name(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => return None,
    })
}

/// `server.address` values by URL host, so the hosts a client keeps calling are neither formatted
/// (IP addresses) nor copied (domains) again on every request.
#[derive(Debug)]
pub(crate) struct ServerAddresses(StatementCache<StringValue>);

impl ServerAddresses {
    /// Distinct hosts kept; a client calling more falls back to building the value per request.
    const CAPACITY: usize = 256;

    pub(crate) fn new() -> Self {
        Self(StatementCache::new(Self::CAPACITY))
    }

    /// The `server.address` of `url`.
    pub(crate) fn of(&self, url: &Url) -> Option<StringValue> {
        let host = url.host_str()?;
        // Read in place: only the address's own count is taken, not the cache entry's.
        Some(self.0.with_or_insert(
            host,
            |_| server_address(url).unwrap_or_else(|| host.to_owned().into()),
            StringValue::clone,
        ))
    }
}

/// `server.address`: the host without IPv6 brackets.
pub(crate) fn server_address(url: &Url) -> Option<StringValue> {
    Some(match url.host()? {
        Host::Domain(d) => shared_str(d),
        Host::Ipv4(ip) => shared_str(ip.to_string()),
        Host::Ipv6(ip) => shared_str(ip.to_string()),
    })
}

/// `server.port`: the explicit port, else the scheme's default. HTTP client conventions require the
/// port whenever the address is known, default or not (unlike the database conventions).
pub(crate) fn server_port(url: &Url) -> Option<i64> {
    url.port_or_known_default().map(i64::from)
}

/// `network.protocol.version` of a response.
pub(crate) fn protocol_version(version: Version) -> Option<&'static str> {
    Some(match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => return None,
    })
}

/// A header recorded as `http.{request,response}.header.<name>`, its key built once.
#[derive(Clone, Debug)]
pub(crate) struct CapturedHeader {
    name: HeaderName,
    key: Key,
}

impl CapturedHeader {
    /// `None` when `name` is not a valid header name.
    pub(crate) fn new(prefix: &str, name: &str) -> Option<Self> {
        let name = HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes()).ok()?;
        let key = Key::from(format!("{prefix}{}", name.as_str()));
        Some(Self { name, key })
    }

    /// The header's values as a string array, when present. Non-UTF-8 bytes are replaced.
    pub(crate) fn capture(&self, headers: &HeaderMap) -> Option<KeyValue> {
        let values: Vec<StringValue> = headers
            .get_all(&self.name)
            .iter()
            .map(|v| StringValue::from(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        (!values.is_empty())
            .then(|| KeyValue::new(self.key.clone(), Value::Array(Array::String(values))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        let known = KnownMethods::default();
        assert_eq!(
            known.classify(&Method::GET),
            MethodName::Known("GET".into())
        );
        assert_eq!(
            known.classify(&Method::from_bytes(b"QUERY").unwrap()),
            MethodName::Known("QUERY".into())
        );
        let purge = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(known.classify(&purge), MethodName::Other("PURGE".into()));
        assert_eq!(known.classify(&purge).value().as_str(), "_OTHER");
        assert_eq!(known.classify(&purge).span_name(), "HTTP");
        // Methods are case-sensitive: `get` is not GET.
        let lower = Method::from_bytes(b"get").unwrap();
        assert_eq!(known.classify(&lower), MethodName::Other("get".into()));

        let custom = KnownMethods::new(["GET", "PURGE"]);
        assert_eq!(custom.classify(&purge), MethodName::Known("PURGE".into()));
        assert_eq!(
            custom.classify(&Method::POST),
            MethodName::Other("POST".into())
        );
    }

    #[test]
    fn addresses_and_ports() {
        let u = Url::parse("https://user:pw@[::1]/x").unwrap();
        assert_eq!(server_address(&u).unwrap().as_str(), "::1");
        assert_eq!(server_port(&u), Some(443));
        let u = Url::parse("http://example.com:8080/").unwrap();
        assert_eq!(server_address(&u).unwrap().as_str(), "example.com");
        assert_eq!(server_port(&u), Some(8080));
        let u = Url::parse("http://127.0.0.1/").unwrap();
        assert_eq!(server_address(&u).unwrap().as_str(), "127.0.0.1");
        assert_eq!(server_port(&u), Some(80));
    }

    #[test]
    fn versions() {
        assert_eq!(protocol_version(Version::HTTP_11), Some("1.1"));
        assert_eq!(protocol_version(Version::HTTP_2), Some("2"));
        assert_eq!(protocol_version(Version::HTTP_10), Some("1.0"));
    }

    #[test]
    fn header_capture() {
        let h = CapturedHeader::new("http.request.header.", " X-Request-ID ").unwrap();
        let mut headers = HeaderMap::new();
        assert!(h.capture(&headers).is_none());
        headers.append("x-request-id", "a".parse().unwrap());
        headers.append("x-request-id", "b".parse().unwrap());
        let kv = h.capture(&headers).unwrap();
        assert_eq!(kv.key.as_str(), "http.request.header.x-request-id");
        assert_eq!(
            kv.value,
            Value::Array(Array::String(vec!["a".into(), "b".into()]))
        );
        assert!(CapturedHeader::new("p.", "bad header").is_none());
    }
}
