//! `url.full` with credentials and signed query values redacted.
//!
//! Following the OpenTelemetry semantic conventions for `url.full`:
//!
//! - userinfo (a username, a password, or both) becomes `REDACTED:REDACTED@`;
//! - the values of the query parameters in a list (by default
//!   [`DEFAULT_REDACTED_QUERY_PARAMS`]) become `REDACTED`; keys are compared after percent-decoding,
//!   exactly and case-sensitively;
//! - all other query text is kept byte for byte (nothing is decoded or re-encoded);
//! - the fragment is dropped (it is never sent to the server).
//!
//! The output is built from slices of the parsed URL into a single allocation.
//!
//! ```
//! use tracewire_shared::sanitize::url::redact;
//!
//! let url = url::Url::parse("https://user:pw@example.com:8443/p?a=1&sig=abc#frag").unwrap();
//! assert_eq!(redact(&url), "https://REDACTED:REDACTED@example.com:8443/p?a=1&sig=REDACTED");
//! ```

use ::url::{Position, Url};

/// Query parameters whose values are redacted by default: the signatures and credentials of
/// pre-signed AWS S3 and Google Cloud Storage URLs and of Azure shared access signatures.
pub const DEFAULT_REDACTED_QUERY_PARAMS: &[&str] = &[
    "AWSAccessKeyId",
    "Signature",
    "sig",
    "X-Goog-Signature",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
];

const REDACTED: &str = "REDACTED";
const REDACTED_USERINFO: &str = "REDACTED:REDACTED@";

/// Redacts `url` for `url.full`, with the values of [`DEFAULT_REDACTED_QUERY_PARAMS`] redacted.
///
/// ```
/// use tracewire_shared::sanitize::url::redact;
///
/// let url = url::Url::parse(
///     "https://s3.amazonaws.com/b/k?X-Amz-Signature=abc&X-Amz-Credential=xyz&versionId=3",
/// )
/// .unwrap();
/// assert_eq!(
///     redact(&url),
///     "https://s3.amazonaws.com/b/k?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&versionId=3",
/// );
/// ```
pub fn redact(url: &Url) -> String {
    redact_with(url, DEFAULT_REDACTED_QUERY_PARAMS)
}

/// Redacts `url` for `url.full`, with the values of `redacted_query_params` redacted.
///
/// A listed parameter that appears more than once has every value redacted; a listed parameter
/// without `=` has no value and is kept as is.
///
/// ```
/// use tracewire_shared::sanitize::url::redact_with;
///
/// let url = url::Url::parse("http://api.local/v1?token=t0k3n&q=rust+otel#top").unwrap();
/// assert_eq!(redact_with(&url, &["token"]), "http://api.local/v1?token=REDACTED&q=rust+otel");
///
/// let none: &[&str] = &[];
/// assert_eq!(redact_with(&url, none), "http://api.local/v1?token=t0k3n&q=rust+otel");
/// ```
pub fn redact_with(url: &Url, redacted_query_params: &[impl AsRef<str>]) -> String {
    let has_userinfo = !url.username().is_empty() || url.password().is_some();
    let query = url.query();

    // Upper bound: the replaced userinfo took at least one byte (plus `@`), and each query
    // segment grows by at most the length of `REDACTED`.
    let segments = query.map_or(0, |q| q.bytes().filter(|&b| b == b'&').count() + 1);
    let capacity = url[..Position::AfterQuery].len()
        + if has_userinfo {
            REDACTED_USERINFO.len()
        } else {
            0
        }
        + segments * REDACTED.len();
    let mut out = String::with_capacity(capacity);

    if has_userinfo {
        out.push_str(&url[..Position::BeforeUsername]);
        out.push_str(REDACTED_USERINFO);
        out.push_str(&url[Position::BeforeHost..Position::AfterPath]);
    } else {
        out.push_str(&url[..Position::AfterPath]);
    }

    if let Some(query) = query {
        out.push('?');
        for (i, segment) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match segment.split_once('=') {
                Some((key, _))
                    if redacted_query_params
                        .iter()
                        .any(|name| decoded_key_eq(key.as_bytes(), name.as_ref().as_bytes())) =>
                {
                    out.push_str(key);
                    out.push('=');
                    out.push_str(REDACTED);
                }
                _ => out.push_str(segment),
            }
        }
    }

    debug_assert!(out.len() <= capacity);
    out
}

/// Whether the form-urlencoded `raw` key decodes (`%XX` and `+`, as
/// [`Url::query_pairs`](::url::Url::query_pairs) does) to exactly `name`, without allocating.
fn decoded_key_eq(raw: &[u8], name: &[u8]) -> bool {
    let mut expected = name.iter();
    let mut i = 0;
    while i < raw.len() {
        let (byte, width) = match raw[i] {
            b'%' => match (raw.get(i + 1).and_then(hex), raw.get(i + 2).and_then(hex)) {
                (Some(high), Some(low)) => (high << 4 | low, 3),
                _ => (b'%', 1),
            },
            b'+' => (b' ', 1),
            other => (other, 1),
        };
        if expected.next() != Some(&byte) {
            return false;
        }
        i += width;
    }
    expected.next().is_none()
}

fn hex(digit: &u8) -> Option<u8> {
    char::from(*digit).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(input: &str) -> String {
        redact(&Url::parse(input).unwrap())
    }

    #[test]
    fn documented_examples() {
        assert_eq!(
            r("https://user:pw@example.com:8443/p?a=1&sig=abc#frag"),
            "https://REDACTED:REDACTED@example.com:8443/p?a=1&sig=REDACTED"
        );
        assert_eq!(
            r("https://s3.amazonaws.com/b/k?X-Amz-Signature=abc&X-Amz-Credential=xyz&versionId=3"),
            "https://s3.amazonaws.com/b/k?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&versionId=3"
        );
        assert_eq!(r("https://example.com/a/b#frag"), "https://example.com/a/b");
        assert_eq!(r("https://example.com/a/b"), "https://example.com/a/b");
    }

    #[test]
    fn userinfo_variants() {
        assert_eq!(
            r("https://user@example.com/"),
            "https://REDACTED:REDACTED@example.com/"
        );
        assert_eq!(
            r("https://:pw@example.com/"),
            "https://REDACTED:REDACTED@example.com/"
        );
        assert_eq!(
            r("postgres://u:p@db.local:5432/app?sslmode=require"),
            "postgres://REDACTED:REDACTED@db.local:5432/app?sslmode=require"
        );
    }

    #[test]
    fn ipv6_host() {
        assert_eq!(
            r("http://u:p@[::1]:8080/x?Signature=s#f"),
            "http://REDACTED:REDACTED@[::1]:8080/x?Signature=REDACTED"
        );
        assert_eq!(r("http://[2001:db8::1]/"), "http://[2001:db8::1]/");
    }

    #[test]
    fn query_text_is_kept_byte_for_byte() {
        assert_eq!(
            r("https://e.com/?a=b%20c&x=y+z"),
            "https://e.com/?a=b%20c&x=y+z"
        );
        assert_eq!(
            r("https://e.com/?a=1&&b&=c&sig"),
            "https://e.com/?a=1&&b&=c&sig"
        );
        assert_eq!(r("https://e.com/?"), "https://e.com/?");
        assert_eq!(r("https://e.com/?#f"), "https://e.com/?");
    }

    #[test]
    fn repeated_and_empty_values() {
        assert_eq!(
            r("https://e.com/?sig=a&x=1&sig=b"),
            "https://e.com/?sig=REDACTED&x=1&sig=REDACTED"
        );
        assert_eq!(r("https://e.com/?sig="), "https://e.com/?sig=REDACTED");
        assert_eq!(r("https://e.com/?sig=a=b"), "https://e.com/?sig=REDACTED");
    }

    #[test]
    fn keys_are_compared_decoded_and_case_sensitive() {
        assert_eq!(
            r("https://e.com/?X%2DAmz%2DSignature=abc&x%2damz%2dsignature=kept"),
            "https://e.com/?X%2DAmz%2DSignature=REDACTED&x%2damz%2dsignature=kept"
        );
        assert_eq!(
            r("https://e.com/?SIG=abc&Sig=abc"),
            "https://e.com/?SIG=abc&Sig=abc"
        );
        assert_eq!(
            r("https://e.com/?%73ig=abc"),
            "https://e.com/?%73ig=REDACTED"
        );
        assert_eq!(
            r("https://e.com/?sig2=abc&si=abc"),
            "https://e.com/?sig2=abc&si=abc"
        );
    }

    #[test]
    fn custom_list() {
        let url = Url::parse("https://e.com/?api key=1&token=2&sig=3").unwrap();
        let list = vec![String::from("api key"), String::from("token")];
        assert_eq!(
            redact_with(&url, &list),
            "https://e.com/?api%20key=REDACTED&token=REDACTED&sig=3"
        );
        let url = Url::parse("https://e.com/?a+b=1").unwrap();
        assert_eq!(redact_with(&url, &["a b"]), "https://e.com/?a+b=REDACTED");
    }

    #[test]
    fn decoded_key_eq_edge_cases() {
        assert!(decoded_key_eq(b"sig", b"sig"));
        assert!(!decoded_key_eq(b"si", b"sig"));
        assert!(!decoded_key_eq(b"sigs", b"sig"));
        assert!(decoded_key_eq(b"%", b"%"));
        assert!(decoded_key_eq(b"%4", b"%4"));
        assert!(decoded_key_eq(b"%zz", b"%zz"));
        assert!(decoded_key_eq(b"%41", b"A"));
        assert!(!decoded_key_eq(b"%ff", b"\xc3\xbf"));
        assert!(decoded_key_eq(b"", b""));
    }

    #[test]
    fn non_special_and_opaque_urls() {
        assert_eq!(
            r("mailto:alice@example.com?subject=hi#x"),
            "mailto:alice@example.com?subject=hi"
        );
        assert_eq!(r("file:///tmp/a?sig=1"), "file:///tmp/a?sig=REDACTED");
    }
}
