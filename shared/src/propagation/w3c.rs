//! W3C Trace Context (`traceparent`, `tracestate`), written and read byte by byte.
//!
//! The SDK's `TraceContextPropagator` formats `traceparent` through `format!` with padded hex
//! `Display` impls and hands it over as a `String`; on an outgoing HTTP request that is most of what
//! an unsampled span costs. [`W3cTraceContext`] produces the same header from a fixed 55-byte buffer,
//! and [`Propagator`](super::Propagator) recognises it by type, so adapters writing HTTP headers skip
//! the `String` and the trip through a `Context` entirely.
//!
//! Extraction follows the W3C Trace Context processing model exactly: lowercase hex only, version
//! `ff` invalid, a version `00` header exactly 55 characters, a higher version's extra fields ignored
//! only after a `-`, and all-zero trace or span ids invalid.

use std::str::FromStr;
use std::sync::OnceLock;

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

pub(crate) const TRACEPARENT: &str = "traceparent";
pub(crate) const TRACESTATE: &str = "tracestate";

/// Length of a version `00` `traceparent`: `00-` + 32 + `-` + 16 + `-` + 2.
pub(crate) const TRACEPARENT_LEN: usize = 55;

/// The W3C Trace Context propagator: `traceparent` and `tracestate`.
///
/// Interchangeable with the SDK's `TraceContextPropagator` (same headers out; in, it follows the
/// specification's stricter parsing), and cheaper: pass it to
/// [`Config::with_propagator`](crate::Config::with_propagator) and adapters write `traceparent`
/// straight into HTTP headers without formatting. An empty `tracestate` is not sent.
///
/// ```
/// use opentelemetry::Context;
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
/// use std::collections::HashMap;
/// use tracewire_shared::propagation::W3cTraceContext;
///
/// let sc = SpanContext::new(
///     TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128),
///     SpanId::from(0xb7ad6b7169203331_u64),
///     TraceFlags::SAMPLED,
///     false,
///     TraceState::default(),
/// );
/// let mut carrier = HashMap::new();
/// W3cTraceContext::new().inject_context(&Context::new().with_remote_span_context(sc), &mut carrier);
/// assert_eq!(carrier["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
///
/// let cx = W3cTraceContext::new().extract(&carrier);
/// assert_eq!(cx.span().span_context().span_id(), SpanId::from(0xb7ad6b7169203331_u64));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct W3cTraceContext {
    _private: (),
}

impl W3cTraceContext {
    /// The propagator.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TextMapPropagator for W3cTraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        inject_span_context(cx.span().span_context(), injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extract(extractor) {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        static FIELDS: OnceLock<[String; 2]> = OnceLock::new();
        FieldIter::new(FIELDS.get_or_init(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()]))
    }
}

/// Writes `sc` into `injector`, when valid.
pub(crate) fn inject_span_context(sc: &SpanContext, injector: &mut dyn Injector) {
    if !sc.is_valid() {
        return;
    }
    // Hex digits and dashes: always valid UTF-8 (the empty fallback is unreachable).
    let value = String::from_utf8(traceparent(sc).to_vec()).unwrap_or_default();
    injector.set(TRACEPARENT, value);
    let state = sc.trace_state().header();
    if !state.is_empty() {
        injector.set(TRACESTATE, state);
    }
}

/// The version `00` `traceparent` of `sc`. The flags carry only the sampled bit, the one flag this
/// version defines.
pub(crate) fn traceparent(sc: &SpanContext) -> [u8; TRACEPARENT_LEN] {
    let mut out = [b'-'; TRACEPARENT_LEN];
    out[..2].copy_from_slice(b"00");
    let trace = u128::from_be_bytes(sc.trace_id().to_bytes());
    let span = u64::from_be_bytes(sc.span_id().to_bytes());
    // Each 32-bit word becomes 8 digits, most significant first.
    for (i, shift) in [96, 64, 32, 0].into_iter().enumerate() {
        let at = 3 + 8 * i;
        out[at..at + 8].copy_from_slice(&hex_digits((trace >> shift) as u32));
    }
    out[36..44].copy_from_slice(&hex_digits((span >> 32) as u32));
    out[44..52].copy_from_slice(&hex_digits(span as u32));
    let flags = (sc.trace_flags() & TraceFlags::SAMPLED).to_u8();
    out[53..].copy_from_slice(&hex_digits(u32::from(flags))[6..]);
    out
}

/// The 8 lowercase hex digits of `word`, computed eight at a time in one `u64` (one digit per byte)
/// instead of looked up one by one: this runs for every outgoing request and message.
fn hex_digits(word: u32) -> [u8; 8] {
    // Spread the nibbles, most significant first, one per byte: 0x1234_5678 → 0x0102_0304_0506_0708.
    let mut x = u64::from(word);
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    // A nibble of 10 or more gets bit 4 set by adding 6 (no byte carries into the next); such digits
    // are letters, `'a' - '0' - 10` = 39 further up.
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * 39).to_be_bytes()
}

/// The remote span context in `extractor`'s `traceparent` (and `tracestate`), if valid.
fn extract(extractor: &dyn Extractor) -> Option<SpanContext> {
    // Only ASCII whitespace: the specification's optional whitespace is spaces and tabs.
    let value = extractor.get(TRACEPARENT)?.trim_ascii().as_bytes();
    if value.len() < TRACEPARENT_LEN || [2, 35, 52].iter().any(|&at| value[at] != b'-') {
        return None;
    }
    let version = hex_u8(&value[..2])?;
    let exact = value.len() == TRACEPARENT_LEN;
    // A future version may append fields, after a `-`; version 00 has exactly four.
    if version == 0xff || (version == 0 && !exact) || (!exact && value[TRACEPARENT_LEN] != b'-') {
        return None;
    }
    let trace_id = TraceId::from_bytes(hex_array::<16>(&value[3..35])?);
    let span_id = SpanId::from_bytes(hex_array::<8>(&value[36..52])?);
    let flags = TraceFlags::new(hex_u8(&value[53..55])?) & TraceFlags::SAMPLED;
    let state = extractor
        .get(TRACESTATE)
        .and_then(|s| TraceState::from_str(s).ok())
        .unwrap_or_default();
    let sc = SpanContext::new(trace_id, span_id, flags, true, state);
    sc.is_valid().then_some(sc)
}

/// The value of each lowercase hex digit; `INVALID` for every other byte (uppercase included, as
/// the specification requires).
const HEX_VALUE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};
const INVALID: u8 = 0xff;

fn hex_u8(pair: &[u8]) -> Option<u8> {
    let (high, low) = (
        HEX_VALUE[usize::from(pair[0])],
        HEX_VALUE[usize::from(pair[1])],
    );
    // One check for both digits: a valid digit never has its high bits set.
    ((high | low) < 16).then_some(high << 4 | low)
}

/// The `N` bytes written as the `2 N` lowercase hex digits of `text`, eight digits at a time.
fn hex_array<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    const { assert!(N.is_multiple_of(4), "whole chunks of eight digits") };
    let mut out = [0; N];
    for chunk in 0..N / 4 {
        let digits = text.get(8 * chunk..8 * chunk + 8)?.try_into().ok()?;
        out[4 * chunk..4 * chunk + 4].copy_from_slice(&hex_chunk(digits)?);
    }
    Some(out)
}

/// Eight lowercase hex digits, first digit first, as four bytes; `None` when any byte is not one.
///
/// Decoded in one `u64`, one digit per byte, instead of looked up digit by digit: every delivery
/// decodes 48 digits. Adding `0x80 - low` to an ASCII byte (below `0x80`) sets its high bit exactly
/// when the byte is at least `low`, without carrying into the next byte. Non-ASCII bytes, which
/// could carry, are rejected outright, so no answer for them is needed.
fn hex_chunk(digits: [u8; 8]) -> Option<[u8; 4]> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const fn each(byte: u8) -> u64 {
        byte as u64 * 0x0101_0101_0101_0101
    }
    let x = u64::from_le_bytes(digits);
    // The high bit of each byte that is at least `low`.
    let at_least = |low: u8| x.wrapping_add(each(0x80 - low)) & HIGH;
    let digit = at_least(b'0') & !at_least(b'9' + 1);
    let letter = at_least(b'a') & !at_least(b'f' + 1);
    if x & HIGH != 0 || digit | letter != HIGH {
        return None;
    }
    // '0'..='9' carry their value in the low nibble; 'a'..='f' carry 1..=6 there, 9 short.
    let nibbles = (x & each(0x0f)) + (letter >> 7) * 9;
    // Little-endian: byte 2k holds digit 2k, the high nibble of output byte k; byte 2k+1 the low.
    let pairs = ((nibbles & 0x00ff_00ff_00ff_00ff) << 4) | ((nibbles >> 8) & 0x00ff_00ff_00ff_00ff);
    Some([
        pairs as u8,
        (pairs >> 16) as u8,
        (pairs >> 32) as u8,
        (pairs >> 48) as u8,
    ])
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use proptest::prelude::*;

    use super::*;

    fn context(trace: u128, span: u64, flags: u8, state: &str) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::new(flags),
            false,
            state.parse().unwrap(),
        ))
    }

    fn injected(p: &dyn TextMapPropagator, cx: &Context) -> HashMap<String, String> {
        let mut carrier = HashMap::new();
        p.inject_context(cx, &mut carrier);
        carrier
    }

    fn extracted(p: &dyn TextMapPropagator, traceparent: &str, state: &str) -> Option<SpanContext> {
        let carrier = HashMap::from([
            (TRACEPARENT.to_owned(), traceparent.to_owned()),
            (TRACESTATE.to_owned(), state.to_owned()),
        ]);
        let sc = p.extract(&carrier).span().span_context().clone();
        sc.is_valid().then_some(sc)
    }

    #[test]
    fn writes_what_the_sdk_writes_except_an_empty_tracestate() {
        let sdk = TraceContextPropagator::new();
        for (trace, span, flags, state) in [
            (1, 2, 1, ""),
            (u128::MAX, u64::MAX, 0xff, "a=1,b=2"),
            (
                0x0af7651916cd43dd8448eb211c80319c,
                0xb7ad6b7169203331,
                0,
                "v=x",
            ),
            (0, 2, 1, ""),
            (1, 0, 1, ""),
        ] {
            let cx = context(trace, span, flags, state);
            let (ours, theirs) = (injected(&W3cTraceContext::new(), &cx), injected(&sdk, &cx));
            assert_eq!(ours.get(TRACEPARENT), theirs.get(TRACEPARENT));
            let expected_state = theirs.get(TRACESTATE).filter(|s| !s.is_empty());
            assert_eq!(ours.get(TRACESTATE), expected_state);
        }
        assert!(injected(&W3cTraceContext::new(), &Context::new()).is_empty());
    }

    #[test]
    fn reads_the_specification_examples() {
        let p = W3cTraceContext::new();
        let sc = extracted(
            &p,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "congo=t61rcWkgMzE",
        )
        .unwrap();
        assert_eq!(
            sc.trace_id(),
            TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736)
        );
        assert_eq!(sc.span_id(), SpanId::from(0x00f067aa0ba902b7));
        assert!(sc.is_sampled() && sc.is_remote());
        assert_eq!(sc.trace_state().get("congo"), Some("t61rcWkgMzE"));
        // Unknown flags are dropped; a future version's extra fields are ignored.
        let future =
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-holds";
        let sc = extracted(&p, future, "not a valid state").unwrap();
        assert_eq!(sc.trace_flags(), TraceFlags::SAMPLED);
        assert_eq!(sc.trace_state().header(), "");
        // Optional whitespace around the value is spaces and tabs.
        let padded = " \t00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\t ";
        assert!(extracted(&p, padded, "").is_some());
    }

    #[test]
    fn rejects_what_the_specification_rejects() {
        let p = W3cTraceContext::new();
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736+00f067aa0ba902b7-01",
            "0+-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
            // Whitespace outside ASCII is not the specification's optional whitespace.
            "\u{a0}00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(extracted(&p, bad, "a=1"), None, "{bad:?}");
        }
    }

    /// Bytes at and around the edges of the digit ranges, and beyond ASCII.
    const INTERESTING_BYTES: [u8; 16] = [
        0x00, b'/', b'0', b'5', b'9', b':', b'@', b'A', b'F', b'`', b'a', b'c', b'f', b'g', 0x7f,
        0x80,
    ];

    /// The reference: each digit looked up on its own.
    fn digit_by_digit(digits: [u8; 8]) -> Option<[u8; 4]> {
        let value = |d: u8| match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            _ => None,
        };
        let mut out = [0; 4];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = value(pair[0])? << 4 | value(pair[1])?;
        }
        Some(out)
    }

    #[test]
    fn hex_chunks_at_the_edges() {
        assert_eq!(hex_chunk(*b"0af76519"), Some([0x0a, 0xf7, 0x65, 0x19]));
        assert_eq!(hex_chunk(*b"ffffffff"), Some([0xff; 4]));
        assert_eq!(hex_chunk(*b"00000000"), Some([0; 4]));
        for bad in [
            *b"0af7651F",
            *b"0af7651g",
            *b"0af7651/",
            *b"0af7651:",
            *b"`af76519",
        ] {
            assert_eq!(hex_chunk(bad), None, "{bad:?}");
        }
        let mut high = *b"0af76519";
        high[3] = 0xb6;
        assert_eq!(hex_chunk(high), None);
    }

    proptest! {
        #[test]
        fn round_trips_any_valid_context(trace in 1u128.., span in 1u64.., flags: u8) {
            let p = W3cTraceContext::new();
            let carrier = injected(&p, &context(trace, span, flags, "k=v"));
            let sc = extracted(&p, &carrier[TRACEPARENT], &carrier[TRACESTATE]).unwrap();
            prop_assert_eq!(sc.trace_id(), TraceId::from(trace));
            prop_assert_eq!(sc.span_id(), SpanId::from(span));
            prop_assert_eq!(sc.is_sampled(), flags & 1 == 1);
        }

        #[test]
        fn agrees_with_the_sdk_on_version_00_headers(value in "00-[0-9a-fA-F]{32}-[0-9a-f]{16}-[0-9a-f]{2}") {
            let ours = extracted(&W3cTraceContext::new(), &value, "");
            let sdk = extracted(&TraceContextPropagator::new(), &value, "");
            prop_assert_eq!(ours, sdk);
        }

        #[test]
        fn traceparent_digits_match_formatting(trace: u128, span: u64, flags: u8) {
            let sc = SpanContext::new(
                TraceId::from(trace),
                SpanId::from(span),
                TraceFlags::new(flags),
                false,
                TraceState::default(),
            );
            let expected = format!("00-{trace:032x}-{span:016x}-{:02x}", flags & 1);
            let written = traceparent(&sc);
            prop_assert_eq!(std::str::from_utf8(&written).unwrap(), expected);
        }

        #[test]
        fn hex_chunks_decode_as_digit_by_digit(
            digits in proptest::array::uniform8(proptest::sample::select(INTERESTING_BYTES.to_vec())),
        ) {
            prop_assert_eq!(hex_chunk(digits), digit_by_digit(digits));
        }

        #[test]
        fn hex_chunks_decode_any_bytes_as_digit_by_digit(digits: [u8; 8]) {
            prop_assert_eq!(hex_chunk(digits), digit_by_digit(digits));
        }

        #[test]
        fn never_panics_on_arbitrary_input(value in "\\PC{0,80}") {
            let _ = extracted(&W3cTraceContext::new(), &value, &value);
        }
    }
}
