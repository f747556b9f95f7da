//! The attributes of `http.client.request.duration` points, remembered per thread.
//!
//! A client repeats itself: the same method to the same host, answered with the same status over the
//! same protocol version. Building a point's attribute set for every request (a `Vec`, up to seven
//! values and their reference counts, then the drop) was about 500 of the 3 950 instructions an
//! unsampled request added. So each thread keeps the sets it recorded last and records a response
//! with the set that matches it; a response that matches none gets its set built and remembered in
//! place of the oldest.

use std::borrow::Cow;
use std::cell::RefCell;

use http::{StatusCode, Version};
use opentelemetry::metrics::Histogram;
use opentelemetry::{KeyValue, StringValue};
use tracewire_shared::semconv;

use crate::attributes::{MethodName, protocol_version};

/// What a request's duration point depends on, known when the request starts.
#[derive(Clone, Debug)]
pub(crate) struct PointBase {
    pub(crate) port: Option<i64>,
    pub(crate) method: MethodName,
    pub(crate) address: Option<StringValue>,
    pub(crate) template: Option<Cow<'static, str>>,
}

impl PointBase {
    /// The attributes known at the start: those of `http.client.active_requests`, and the first ones
    /// of a duration point.
    pub(crate) fn attributes(&self) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(8);
        attrs.push(KeyValue::new(
            semconv::HTTP_REQUEST_METHOD,
            self.method.value(),
        ));
        if let Some(address) = &self.address {
            attrs.push(KeyValue::new(semconv::SERVER_ADDRESS, address.clone()));
        }
        if let Some(port) = self.port {
            attrs.push(KeyValue::new(semconv::SERVER_PORT, port));
        }
        attrs
    }

    /// Whether `other` gives the same attributes. Texts are compared by address first: a remembered
    /// base is a clone, whose method name, cached address and static template share their text.
    fn same_as(&self, other: &Self) -> bool {
        let method = match (&self.method, &other.method) {
            (MethodName::Known(a), MethodName::Known(b)) => same_text(a, b),
            (MethodName::Other(a), MethodName::Other(b)) => a == b,
            _ => false,
        };
        let address = match (&self.address, &other.address) {
            (Some(a), Some(b)) => same_text(a.as_str(), b.as_str()),
            (a, b) => a.is_none() && b.is_none(),
        };
        let template = match (&self.template, &other.template) {
            (Some(a), Some(b)) => same_text(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        self.port == other.port && method && address && template
    }

    /// The attributes of a duration point without the outcome, `url.template` included.
    pub(crate) fn point_attributes(&self) -> Vec<KeyValue> {
        let mut attrs = self.attributes();
        if let Some(template) = &self.template {
            attrs.push(KeyValue::new(semconv::URL_TEMPLATE, template.clone()));
        }
        attrs
    }
}

fn same_text(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// A duration point's attribute set: the request's base, the response's status and version.
#[derive(Debug)]
struct PointKey {
    status: StatusCode,
    version: Version,
    base: PointBase,
}

impl PointKey {
    fn attributes(&self) -> Vec<KeyValue> {
        let mut attrs = self.base.point_attributes();
        attrs.push(KeyValue::new(
            semconv::HTTP_RESPONSE_STATUS_CODE,
            i64::from(self.status.as_u16()),
        ));
        if let Some(version) = protocol_version(self.version) {
            attrs.push(KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, version));
        }
        if self.status.as_u16() >= 400 {
            attrs.push(KeyValue::new(
                semconv::ERROR_TYPE,
                StringValue::from(self.status.as_str().to_owned()),
            ));
        }
        attrs
    }
}

/// How many attribute sets each thread remembers: a handful of hosts and outcomes covers the usual
/// client, and a miss only costs building the set, as before.
const REMEMBERED: usize = 4;

#[derive(Default)]
struct Recent {
    sets: Vec<(PointKey, Vec<KeyValue>)>,
    /// Where the next set goes once all places are taken.
    next: usize,
}

impl Recent {
    fn find(&self, base: &PointBase, status: StatusCode, version: Version) -> Option<&[KeyValue]> {
        self.sets
            .iter()
            .find(|(known, _)| {
                known.status == status && known.version == version && known.base.same_as(base)
            })
            .map(|(_, attrs)| attrs.as_slice())
    }

    fn remember(&mut self, key: PointKey, attrs: Vec<KeyValue>) -> &[KeyValue] {
        let at = if self.sets.len() < REMEMBERED {
            self.sets.push((key, attrs));
            self.sets.len() - 1
        } else {
            let at = self.next;
            self.next = (at + 1) % REMEMBERED;
            self.sets[at] = (key, attrs);
            at
        };
        &self.sets[at].1
    }
}

thread_local! {
    static RECENT: RefCell<Recent> = RefCell::new(Recent::default());
}

/// Records `seconds` into `histogram` for a response with `status` and `version` to the request
/// `base` describes.
pub(crate) fn record_response(
    histogram: &Histogram<f64>,
    seconds: f64,
    base: &PointBase,
    status: StatusCode,
    version: Version,
) {
    let key = || PointKey {
        status,
        version,
        base: base.clone(),
    };
    // Unavailable while this thread is already recording (a meter whose recording sends a request
    // through this client) or while the thread shuts down: the set is then built for this point only.
    let recorded = RECENT
        .try_with(|recent| {
            let Ok(mut recent) = recent.try_borrow_mut() else {
                return false;
            };
            match recent.find(base, status, version) {
                Some(attrs) => histogram.record(seconds, attrs),
                None => {
                    let key = key();
                    let attrs = key.attributes();
                    histogram.record(seconds, recent.remember(key, attrs));
                }
            }
            true
        })
        .unwrap_or(false);
    if !recorded {
        histogram.record(seconds, &key().attributes());
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use opentelemetry::Value;
    use opentelemetry::metrics::MeterProvider as _;
    use tracewire_shared::testing::Telemetry;

    use super::*;

    fn base(host: &str, template: Option<&'static str>) -> PointBase {
        PointBase {
            port: Some(443),
            method: MethodName::Known(Cow::Borrowed("GET")),
            address: Some(StringValue::from(host.to_owned())),
            template: template.map(Cow::Borrowed),
        }
    }

    /// An attribute set as comparable text, independent of order.
    fn text(attrs: &[KeyValue]) -> String {
        let mut pairs: Vec<String> = attrs
            .iter()
            .map(|kv| format!("{}={:?}", kv.key, kv.value))
            .collect();
        pairs.sort();
        pairs.join(" ")
    }

    /// Each response is recorded once, with the set built for its own point, whatever the thread
    /// recorded before: more distinct points than places, repeats, and each field changing alone.
    #[test]
    fn every_response_is_recorded_with_its_own_set() {
        let t = Telemetry::new();
        let histogram = t.meter_provider.meter("t").f64_histogram("d").build();
        let points = [
            (base("a.example", None), StatusCode::OK, Version::HTTP_11),
            (base("b.example", None), StatusCode::OK, Version::HTTP_11),
            (
                base("a.example", Some("/u/{id}")),
                StatusCode::OK,
                Version::HTTP_11,
            ),
            (
                base("a.example", None),
                StatusCode::NOT_FOUND,
                Version::HTTP_11,
            ),
            (base("a.example", None), StatusCode::OK, Version::HTTP_2),
            (
                PointBase {
                    port: Some(8443),
                    ..base("a.example", None)
                },
                StatusCode::OK,
                Version::HTTP_11,
            ),
            (
                PointBase {
                    method: MethodName::Known(Cow::Borrowed("POST")),
                    ..base("a.example", None)
                },
                StatusCode::OK,
                Version::HTTP_11,
            ),
            (
                PointBase {
                    method: MethodName::Other("PURGE".into()),
                    ..base("a.example", None)
                },
                StatusCode::SERVICE_UNAVAILABLE,
                Version::HTTP_11,
            ),
        ];
        // Twice round (every place taken, then evictions), then hits and misses back and forth.
        let order = [
            0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 3, 3, 0, 6, 0, 7, 6,
        ];
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for &i in &order {
            let (base, status, version) = points[i].clone();
            let key = PointKey {
                status,
                version,
                base: base.clone(),
            };
            *expected.entry(text(&key.attributes())).or_default() += 1;
            record_response(&histogram, 0.5, &base, status, version);
        }
        assert!(RECENT.with(|recent| recent.borrow().sets.len()) <= REMEMBERED);

        let recorded: BTreeMap<String, u64> = t
            .metric("d")
            .iter()
            .map(|p| (text(&p.attributes), p.count))
            .collect();
        assert_eq!(recorded, expected);
        assert_eq!(recorded.len(), points.len());
    }

    /// A point recorded while the thread's memory is in use (a meter whose recording sends a request
    /// through the same client) is recorded with its own set, built for it, and nothing panics.
    #[test]
    fn a_point_recorded_while_the_memory_is_busy_gets_its_own_set() {
        let t = Telemetry::new();
        let histogram = t.meter_provider.meter("t").f64_histogram("d").build();
        let point = base("busy.example", Some("/b"));
        RECENT.with(|recent| {
            let _busy = recent.borrow_mut();
            record_response(&histogram, 0.5, &point, StatusCode::OK, Version::HTTP_11);
        });
        let expected = PointKey {
            status: StatusCode::OK,
            version: Version::HTTP_11,
            base: point.clone(),
        }
        .attributes();
        let points = t.metric("d");
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].count, 1);
        assert_eq!(text(&points[0].attributes), text(&expected));
        // Built for that one point only: the memory did not learn it.
        assert!(RECENT.with(|recent| {
            recent
                .borrow()
                .find(&point, StatusCode::OK, Version::HTTP_11)
                .is_none()
        }));
    }

    #[test]
    fn error_statuses_carry_error_type() {
        let key = PointKey {
            status: StatusCode::BAD_GATEWAY,
            version: Version::HTTP_2,
            base: base("a.example", Some("/x")),
        };
        let attrs = key.attributes();
        let value = |k: &str| {
            attrs
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.clone())
        };
        assert_eq!(value(semconv::ERROR_TYPE), Some(Value::from("502")));
        assert_eq!(
            value(semconv::HTTP_RESPONSE_STATUS_CODE),
            Some(Value::I64(502))
        );
        assert_eq!(
            value(semconv::NETWORK_PROTOCOL_VERSION),
            Some(Value::from("2"))
        );
        assert_eq!(value(semconv::URL_TEMPLATE), Some(Value::from("/x")));
        assert_eq!(
            value(semconv::SERVER_ADDRESS),
            Some(Value::from("a.example"))
        );
        assert_eq!(attrs.len(), 7);
    }
}
