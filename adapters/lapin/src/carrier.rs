//! Trace-context carriers over AMQP header tables.
//!
//! Headers travel as a [`FieldTable`] whose keys are AMQP short strings (at most 255 bytes). The
//! injector writes string values (`AMQPValue::LongString`, what every RabbitMQ client reads as a
//! string) and skips keys that do not fit; the extractor reads long strings, short strings and byte
//! arrays holding UTF-8, and treats any other value as absent.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use tracewire_shared::propagation::Propagator;

/// An [`Injector`] writing string headers into a [`FieldTable`]. Keys longer than an AMQP short
/// string (255 bytes) are skipped instead of panicking.
///
/// ```
/// use lapin::types::{AMQPValue, FieldTable};
/// use opentelemetry::propagation::Injector;
/// use tracewire_lapin::carrier::FieldTableInjector;
///
/// let mut headers = FieldTable::default();
/// FieldTableInjector::new(&mut headers).set("traceparent", "00-…".to_string());
/// FieldTableInjector::new(&mut headers).set(&"k".repeat(300), "skipped".to_string());
/// assert!(matches!(headers.inner().get("traceparent"), Some(AMQPValue::LongString(_))));
/// assert_eq!(headers.inner().len(), 1);
/// ```
#[derive(Debug)]
pub struct FieldTableInjector<'a> {
    table: &'a mut FieldTable,
    written: usize,
}

impl<'a> FieldTableInjector<'a> {
    /// An injector into `table`; existing entries are kept (a key the propagator writes replaces an
    /// entry of the same name).
    pub fn new(table: &'a mut FieldTable) -> Self {
        Self { table, written: 0 }
    }

    /// How many headers were written.
    pub fn written(&self) -> usize {
        self.written
    }
}

impl Injector for FieldTableInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let Ok(key) = ShortString::try_new(key) {
            self.table.insert(key, AMQPValue::LongString(value.into()));
            self.written += 1;
        }
    }
}

/// An [`Extractor`] reading string headers from a [`FieldTable`]: long strings, short strings and
/// byte arrays that are valid UTF-8. Numbers, tables and anything else read as absent.
///
/// ```
/// use lapin::types::{AMQPValue, FieldTable};
/// use opentelemetry::propagation::Extractor;
/// use tracewire_lapin::carrier::FieldTableExtractor;
///
/// let mut headers = FieldTable::default();
/// headers.insert("tracestate".into(), AMQPValue::LongString("a=1".into()));
/// headers.insert("traceparent".into(), AMQPValue::LongLongInt(7));
/// let extractor = FieldTableExtractor(&headers);
/// assert_eq!(extractor.get("tracestate"), Some("a=1"));
/// assert_eq!(extractor.get("traceparent"), None);
/// ```
#[derive(Debug)]
pub struct FieldTableExtractor<'a>(pub &'a FieldTable);

impl Extractor for FieldTableExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.0.inner().get(key)? {
            AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
            AMQPValue::ShortString(s) => Some(s.as_str()),
            AMQPValue::ByteArray(b) => std::str::from_utf8(b.as_slice()).ok(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.inner().keys().map(ShortString::as_str).collect()
    }
}

/// Returns `properties` with what `write` injects added to its headers, keeping every header already
/// set. A message without headers gets a table only when something was written.
pub(crate) fn inject(
    properties: BasicProperties,
    write: impl FnOnce(&mut dyn Injector),
) -> BasicProperties {
    let had_headers = properties.headers().is_some();
    let mut headers = properties.headers().clone().unwrap_or_default();
    let mut injector = FieldTableInjector::new(&mut headers);
    write(&mut injector);
    if injector.written() == 0 && !had_headers {
        return properties;
    }
    properties.with_headers(headers)
}

/// The creation context carried by `properties`; an empty context (no span) when the headers are
/// missing or hold no valid trace context.
pub(crate) fn extract(propagator: &Propagator, properties: &BasicProperties) -> Context {
    match properties.headers() {
        Some(headers) => propagator.extract(&FieldTableExtractor(headers)),
        None => Context::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    fn propagator() -> Propagator {
        Propagator::new(TraceContextPropagator::new())
    }

    fn sent() -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(0xabcu128),
            SpanId::from(0xdefu64),
            TraceFlags::SAMPLED,
            false,
            "vendor=x".parse::<TraceState>().unwrap(),
        ))
    }

    #[test]
    fn injection_keeps_caller_headers_and_round_trips() {
        let mut caller = FieldTable::default();
        caller.insert("tenant".into(), AMQPValue::LongString("acme".into()));
        caller.insert("attempt".into(), AMQPValue::LongInt(3));
        let props = inject(BasicProperties::default().with_headers(caller), |i| {
            propagator().inject(&sent(), i)
        });
        let headers = props.headers().as_ref().unwrap();
        assert_eq!(
            headers.inner().get("tenant"),
            Some(&AMQPValue::LongString("acme".into()))
        );
        assert_eq!(headers.inner().get("attempt"), Some(&AMQPValue::LongInt(3)));
        assert_eq!(
            headers.inner().get("traceparent"),
            Some(&AMQPValue::LongString(
                "00-00000000000000000000000000000abc-0000000000000def-01".into()
            ))
        );
        assert_eq!(
            headers.inner().get("tracestate"),
            Some(&AMQPValue::LongString("vendor=x".into()))
        );
        let cx = extract(&propagator(), &props);
        assert_eq!(cx.span().span_context().span_id(), SpanId::from(0xdefu64));
        assert_eq!(cx.span().span_context().trace_state().header(), "vendor=x");
    }

    #[test]
    fn nothing_to_inject_leaves_properties_untouched() {
        let props = inject(BasicProperties::default(), |i| {
            propagator().inject(&Context::new(), i)
        });
        assert_eq!(props.headers(), &None);
    }

    #[test]
    fn short_string_and_byte_array_values_are_read() {
        let tp = "00-00000000000000000000000000000abc-0000000000000def-01";
        for value in [
            AMQPValue::ShortString(tp.into()),
            AMQPValue::ByteArray(tp.as_bytes().into()),
        ] {
            let mut headers = FieldTable::default();
            headers.insert("traceparent".into(), value);
            let props = BasicProperties::default().with_headers(headers);
            assert_eq!(
                extract(&propagator(), &props)
                    .span()
                    .span_context()
                    .trace_id(),
                TraceId::from(0xabcu128)
            );
        }
    }

    #[test]
    fn bad_headers_give_no_context() {
        let values = [
            AMQPValue::LongLongInt(42),
            AMQPValue::Boolean(true),
            AMQPValue::LongString("garbage".into()),
            AMQPValue::LongString(vec![0xff, 0xfe, 0x00].into()),
            AMQPValue::ByteArray(vec![0xff, 0xfe].into()),
            AMQPValue::LongString("00-00000000000000000000000000000000-0000000000000def-01".into()),
            AMQPValue::LongString("x".repeat(100_000).into()),
            AMQPValue::FieldTable(FieldTable::default()),
            AMQPValue::Void,
        ];
        for value in values {
            let mut headers = FieldTable::default();
            headers.insert("traceparent".into(), value.clone());
            let props = BasicProperties::default().with_headers(headers);
            assert!(
                !extract(&propagator(), &props).has_active_span(),
                "{value:?}"
            );
        }
        assert!(!extract(&propagator(), &BasicProperties::default()).has_active_span());
    }

    #[test]
    fn oversized_keys_and_values_do_not_panic() {
        let mut table = FieldTable::default();
        let mut injector = FieldTableInjector::new(&mut table);
        injector.set(&"k".repeat(256), "v".into());
        injector.set(&"é".repeat(200), "v".into());
        injector.set(&"k".repeat(255), "v".repeat(1 << 20));
        assert_eq!(injector.written(), 1);
        assert_eq!(table.inner().len(), 1);
    }
}
