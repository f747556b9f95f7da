//! Span names that live as long as the process, so adapters hand the SDK a borrowed name.
//!
//! The SDK keeps span names as `Cow<'static, str>`. Adapters whose names are built from data — a
//! statement's summary, `publish {destination}` — but drawn from a small set would otherwise copy the
//! name into every span. [`intern`] keeps one copy per distinct name instead, in a table bounded in
//! names and bytes (kept for the life of the process); past the bound, names are copied per span as
//! they would have been.
//!
//! ```
//! use std::borrow::Cow;
//! use tracewire_shared::span_name;
//!
//! let first = span_name::intern("SELECT users");
//! let again = span_name::intern(&String::from("SELECT users"));
//! assert!(matches!((&first, &again), (Cow::Borrowed(a), Cow::Borrowed(b)) if std::ptr::eq(*a, *b)));
//! ```

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Most distinct names kept, and the bytes they may take in all.
const MAX_NAMES: usize = 4096;
const MAX_BYTES: usize = 1 << 20;

/// A `'static` copy of `name`: the one already kept, a new one while the table has room, or else an
/// owned copy.
///
/// Look names up once per statement or destination and keep the result: this takes a lock.
pub fn intern(name: &str) -> Cow<'static, str> {
    static TABLE: OnceLock<Mutex<(HashSet<&'static str>, usize)>> = OnceLock::new();
    let mut guard = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let (names, bytes) = &mut *guard;
    if let Some(existing) = names.get(name) {
        return Cow::Borrowed(existing);
    }
    if names.len() >= MAX_NAMES || *bytes + name.len() > MAX_BYTES {
        return Cow::Owned(name.to_owned());
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    *bytes += leaked.len();
    Cow::Borrowed(leaked)
}
