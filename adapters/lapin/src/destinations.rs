//! Destinations already seen: a destination's `messaging.destination.name` value, span name and
//! metric attributes are built the first time a message goes to (or comes from) it, and shared by every
//! later one, so a message costs a cache lookup instead of three strings and two attribute lists.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use opentelemetry::{KeyValue, StringValue};
use tracewire_shared::cache::StatementCache;
use tracewire_shared::semconv;
use tracewire_shared::span_name;
use tracewire_shared::value::shared_str;

use crate::telemetry::Shared;

/// Distinct destinations kept per operation; past that, the oldest are built again when they recur.
const CAPACITY: usize = 512;

/// One destination of one operation (`publish` or `process`).
#[derive(Debug)]
pub(crate) struct Destination {
    name: StringValue,
    span_name: Cow<'static, str>,
    /// The attributes of every successful metric point for this destination.
    metric_attributes: Box<[KeyValue]>,
}

impl Destination {
    /// `messaging.destination.name`.
    pub(crate) fn name(&self) -> &StringValue {
        &self.name
    }

    /// `{operation} {destination}`.
    pub(crate) fn span_name(&self) -> Cow<'static, str> {
        self.span_name.clone()
    }

    /// The attributes of a metric point: the prebuilt ones, plus `error.type` on failure.
    pub(crate) fn metric_attributes(&self, error_type: Option<&str>) -> Cow<'_, [KeyValue]> {
        match error_type {
            None => Cow::Borrowed(&self.metric_attributes),
            Some(error_type) => {
                let mut attrs = self.metric_attributes.to_vec();
                attrs.push(KeyValue::new(semconv::ERROR_TYPE, error_type.to_owned()));
                Cow::Owned(attrs)
            }
        }
    }
}

/// The destinations of one operation, by name.
#[derive(Debug)]
pub(crate) struct Destinations {
    operation_type: &'static str,
    operation_name: &'static str,
    cache: StatementCache<Destination>,
}

impl Destinations {
    pub(crate) fn new(operation_type: &'static str, operation_name: &'static str) -> Self {
        Self {
            operation_type,
            operation_name,
            cache: StatementCache::new(CAPACITY),
        }
    }

    /// The destination whose name `write` appends to an empty string.
    pub(crate) fn get(&self, shared: &Shared, write: impl Fn(&mut String)) -> Arc<Destination> {
        thread_local! {
            // The name is written here to be looked up, so a known destination allocates nothing.
            static NAME: RefCell<String> = const { RefCell::new(String::new()) };
        }
        let build = |name: &str| {
            let value = shared_str(name);
            Destination {
                span_name: span_name::intern(&format!("{} {name}", self.operation_name)),
                metric_attributes: shared
                    .metric_attributes(
                        Some(self.operation_type),
                        self.operation_name,
                        Some(&value),
                        None,
                    )
                    .into_boxed_slice(),
                name: value,
            }
        };
        let lookup = |name: &mut String| {
            name.clear();
            write(name);
            self.cache.get_or_insert_with(name, &build)
        };
        // The thread's buffer, unless it is busy or already destroyed (a delivery dropped in a
        // thread-local destructor): then a fresh string, never a panic.
        NAME.try_with(|cell| cell.try_borrow_mut().ok().map(|mut name| lookup(&mut name)))
            .ok()
            .flatten()
            .unwrap_or_else(|| lookup(&mut String::new()))
    }
}
