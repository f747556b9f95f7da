//! Attribute values copied into many spans and metric points.
//!
//! An `opentelemetry::StringValue` made from a `String` owns a `Box<str>`, and cloning it allocates a
//! copy. A value set on every operation (a database name, a server address, a statement's text) is
//! cloned into every span, and the batch exporter frees those copies on its own thread, which makes
//! each of them dearer still: the allocator's per-thread caches stop working for them. [`shared_str`]
//! makes the value reference-counted instead, so a clone is a count.
//!
//! ```
//! use tracewire_shared::value::shared_str;
//!
//! let address = shared_str(String::from("db.internal"));
//! let copy = address.clone();
//! assert!(std::ptr::eq(address.as_str(), copy.as_str()));
//! ```

use std::sync::Arc;

use opentelemetry::StringValue;

/// A string value whose clones share one allocation.
pub fn shared_str(s: impl Into<Arc<str>>) -> StringValue {
    StringValue::from(s.into())
}
