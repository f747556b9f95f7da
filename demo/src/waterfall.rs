//! A finished trace as a tree in the terminal: one line per span with its place on the timeline,
//! then its key attributes, errors and links.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use opentelemetry::Value;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_semantic_conventions::attribute as semconv;
use tracewire_shared::semconv as tw;

/// Columns of the span name (tree drawing included).
const NAME_WIDTH: usize = 40;
/// Columns of the timeline bar.
const BAR_WIDTH: usize = 30;

/// The attributes shown under a span, in this order, when present.
const KEY_ATTRIBUTES: &[&str] = &[
    semconv::DB_SYSTEM_NAME,
    semconv::DB_NAMESPACE,
    semconv::DB_QUERY_TEXT,
    semconv::DB_OPERATION_BATCH_SIZE,
    semconv::HTTP_ROUTE,
    semconv::URL_FULL,
    semconv::HTTP_RESPONSE_STATUS_CODE,
    semconv::MESSAGING_DESTINATION_NAME,
    tw::TRACEWIRE_MESSAGING_OUTCOME,
    semconv::ERROR_TYPE,
];

/// How to draw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours (for terminals).
    pub color: bool,
}

/// Renders `spans` as one waterfall per trace, traces in order of their first span.
///
/// ```
/// use tracewire_demo::waterfall::{Style, render};
///
/// assert_eq!(render(&[], Style::default()), "no spans were recorded\n");
/// ```
pub fn render(spans: &[SpanData], style: Style) -> String {
    if spans.is_empty() {
        return "no spans were recorded\n".to_owned();
    }
    let mut traces: Vec<(TraceId, Vec<&SpanData>)> = Vec::new();
    for span in spans {
        let id = span.span_context.trace_id();
        match traces.iter_mut().find(|(t, _)| *t == id) {
            Some((_, members)) => members.push(span),
            None => traces.push((id, vec![span])),
        }
    }
    for (_, members) in &mut traces {
        members.sort_by_key(|s| s.start_time);
    }
    traces.sort_by_key(|(_, members)| members[0].start_time);
    let mut out = String::new();
    for (id, members) in traces {
        Trace::new(id, members, style).render(&mut out);
    }
    out
}

struct Trace<'a> {
    id: TraceId,
    spans: Vec<&'a SpanData>,
    children: HashMap<SpanId, Vec<usize>>,
    names: HashMap<SpanId, &'a str>,
    start: SystemTime,
    total: Duration,
    style: Style,
}

impl<'a> Trace<'a> {
    fn new(id: TraceId, spans: Vec<&'a SpanData>, style: Style) -> Self {
        let ids: HashMap<SpanId, &'a str> = spans
            .iter()
            .map(|s| (s.span_context.span_id(), s.name.as_ref()))
            .collect();
        let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
        for (i, span) in spans.iter().enumerate() {
            // Spans whose parent is not here (a remote caller, or none) are roots of this view.
            let parent = if ids.contains_key(&span.parent_span_id) {
                span.parent_span_id
            } else {
                SpanId::INVALID
            };
            children.entry(parent).or_default().push(i);
        }
        let start = spans
            .iter()
            .map(|s| s.start_time)
            .min()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let end = spans.iter().map(|s| s.end_time).max().unwrap_or(start);
        Self {
            id,
            children,
            names: ids,
            start,
            total: end.duration_since(start).unwrap_or_default(),
            spans,
            style,
        }
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "{}",
            self.bold(&format!(
                "trace {}  ·  {} spans  ·  {}",
                self.id,
                self.spans.len(),
                millis(self.total)
            ))
        );
        let _ = writeln!(
            out,
            "{:<NAME_WIDTH$} {:<9}{:<7}{:>10}  timeline",
            "span", "kind", "status", "duration"
        );
        if let Some(roots) = self.children.get(&SpanId::INVALID) {
            for (n, &i) in roots.iter().enumerate() {
                self.node(out, i, "", n + 1 == roots.len(), true);
            }
        }
        out.push('\n');
    }

    fn node(&self, out: &mut String, i: usize, prefix: &str, last: bool, root: bool) {
        let span = self.spans[i];
        let (branch, rest) = match (root, last) {
            (true, _) => ("", ""),
            (false, true) => ("└─ ", "   "),
            (false, false) => ("├─ ", "│  "),
        };
        let label = truncate(&format!("{prefix}{branch}{}", span.name), NAME_WIDTH);
        let duration = span
            .end_time
            .duration_since(span.start_time)
            .unwrap_or_default();
        let status = match &span.status {
            Status::Unset => self.dim("unset"),
            Status::Ok => "ok".to_owned(),
            Status::Error { .. } => self.red("ERROR"),
        };
        let status_pad = " ".repeat(7usize.saturating_sub(visible_len(&status)));
        let _ = writeln!(
            out,
            "{label:<NAME_WIDTH$} {:<9}{status}{status_pad}{:>10}  {}",
            kind(&span.span_kind),
            millis(duration),
            self.bar(span.start_time, duration),
        );
        let child_prefix = format!("{prefix}{rest}");
        let has_children = self
            .children
            .get(&span.span_context.span_id())
            .is_some_and(|c| !c.is_empty());
        let detail_prefix = format!("{child_prefix}{}", if has_children { "│  " } else { "   " });
        for line in self.details(span) {
            let _ = writeln!(out, "{detail_prefix}{}", self.dim(&line));
        }
        if let Some(children) = self.children.get(&span.span_context.span_id()) {
            for (n, &c) in children.iter().enumerate() {
                self.node(out, c, &child_prefix, n + 1 == children.len(), false);
            }
        }
    }

    fn details(&self, span: &SpanData) -> Vec<String> {
        let mut lines = Vec::new();
        for key in KEY_ATTRIBUTES {
            if let Some(kv) = span.attributes.iter().find(|kv| kv.key.as_str() == *key) {
                lines.push(format!("{key} = {}", show(&kv.value)));
            }
        }
        if let Status::Error { description } = &span.status {
            lines.push(format!("status: {description}"));
        }
        for link in span.links.iter() {
            let to = link.span_context.span_id();
            let name = self.names.get(&to).copied().unwrap_or("another trace");
            lines.push(format!("link → {name} ({to})"));
        }
        lines
    }

    fn bar(&self, start: SystemTime, duration: Duration) -> String {
        let total = self.total.as_secs_f64().max(f64::EPSILON);
        let offset = start
            .duration_since(self.start)
            .unwrap_or_default()
            .as_secs_f64();
        let from = ((offset / total) * BAR_WIDTH as f64).floor() as usize;
        let from = from.min(BAR_WIDTH - 1);
        let len = ((duration.as_secs_f64() / total) * BAR_WIDTH as f64).round() as usize;
        let len = len.clamp(1, BAR_WIDTH - from);
        format!(
            "{}{}{}",
            " ".repeat(from),
            "█".repeat(len),
            " ".repeat(BAR_WIDTH - from - len)
        )
        .trim_end()
        .to_owned()
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.style.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    fn red(&self, text: &str) -> String {
        self.paint("31;1", text)
    }

    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
}

fn kind(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Client => "CLIENT",
        SpanKind::Server => "SERVER",
        SpanKind::Producer => "PRODUCER",
        SpanKind::Consumer => "CONSUMER",
        SpanKind::Internal => "INTERNAL",
    }
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.as_str().replace('\n', " ⏎ "),
        other => other.to_string(),
    }
}

fn visible_len(text: &str) -> usize {
    let mut len = 0;
    let mut escape = false;
    for c in text.chars() {
        match (escape, c) {
            (false, '\x1b') => escape = true,
            (true, 'm') => escape = false,
            (true, _) => {}
            (false, _) => len += 1,
        }
    }
    len
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceState, Tracer, TracerProvider};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use crate::SpanCollector;

    fn spans() -> Vec<SpanData> {
        let collector = SpanCollector::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(collector.clone())
            .build();
        let tracer = provider.tracer("test");
        tracer.in_span("checkout", |cx| {
            let producer = tracer
                .span_builder("publish orders")
                .with_kind(SpanKind::Producer)
                .start_with_context(&tracer, &cx);
            let sc: SpanContext = opentelemetry::trace::Span::span_context(&producer).clone();
            drop(producer);
            let _query = tracer
                .span_builder("SELECT orders")
                .with_kind(SpanKind::Client)
                .with_attributes([KeyValue::new(
                    semconv::DB_QUERY_TEXT,
                    "SELECT * FROM orders WHERE id = ?",
                )])
                .start_with_context(&tracer, &cx);
            let unrelated = SpanContext::new(
                TraceId::from(1u128),
                SpanId::from(2u64),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            );
            let _consumer = tracer
                .span_builder("process orders")
                .with_kind(SpanKind::Consumer)
                .with_links(vec![
                    opentelemetry::trace::Link::with_context(sc),
                    opentelemetry::trace::Link::with_context(unrelated),
                ])
                .start_with_context(&tracer, &cx);
        });
        collector.spans()
    }

    #[test]
    fn draws_a_tree_with_kinds_attributes_and_links() {
        let text = render(&spans(), Style::default());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("trace ") && lines[0].contains("4 spans"));
        assert!(lines[2].starts_with("checkout ") && lines[2].contains("INTERNAL"));
        assert!(lines[3].starts_with("├─ publish orders") && lines[3].contains("PRODUCER"));
        let select = lines
            .iter()
            .position(|l| l.starts_with("├─ SELECT orders"))
            .unwrap();
        assert!(lines[select + 1].contains("db.query.text = SELECT * FROM orders WHERE id = ?"));
        let consumer = lines
            .iter()
            .position(|l| l.starts_with("└─ process orders"))
            .unwrap();
        assert!(lines[consumer].contains("CONSUMER"));
        assert!(lines[consumer + 1].contains("link → publish orders"));
        assert!(lines[consumer + 2].contains("link → another trace"));
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn colors_only_when_asked() {
        let text = render(&spans(), Style { color: true });
        assert!(text.contains("\x1b[2m"));
    }

    #[test]
    fn bars_start_at_the_span_offset_and_fit_the_timeline() {
        let text = render(&spans(), Style::default());
        let timeline = NAME_WIDTH + 1 + 9 + 7 + 10 + 2;
        let span_lines: Vec<&str> = text.lines().skip(2).filter(|l| l.contains('█')).collect();
        assert_eq!(span_lines.len(), 4, "one bar per span");
        for line in &span_lines {
            let bar: String = line.chars().skip(timeline).collect();
            assert!(bar.chars().count() <= BAR_WIDTH, "{line}");
            assert!(bar.chars().all(|c| c == ' ' || c == '█'), "{line}");
        }
        // The root starts the timeline.
        assert!(span_lines[0].chars().nth(timeline) == Some('█'));
    }
}
