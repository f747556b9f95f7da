//! Providers are resolved at first use, not at construction (DESIGN §2.6). This file runs in its own
//! process, so installing global providers here disturbs no other test.

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracewire_shared::config::Domain;
use tracewire_shared::record::SpanRequest;
use tracewire_shared::{Config, Instrumentation};

#[test]
fn global_provider_installed_after_construction_is_used() {
    // Built before the application installs its provider, as clients usually are.
    let inst = Instrumentation::new(Config::new(), "tracewire-test", "0", Domain::Database);

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_tracer_provider(provider);

    inst.start(SpanRequest::client("late"), |a| {
        a.push(KeyValue::new("k", 1))
    })
    .end_ok();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "late");
}
