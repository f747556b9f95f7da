//! A per-thread memory of the statements each thread used last, in front of the shared cache.
//!
//! Most statements an application runs are string literals (`sqlx::query("…")`, `query!`, a const in
//! a Redis script helper), so the same text arrives again and again at the same address. A hit here
//! costs a pointer comparison and one `memcmp`, against a seeded hash, a mutex and a probe for the
//! shared cache. The text is always compared in full, so an address reused by another string can
//! never return the wrong entry; the address (with the length and the cache's id) only picks the
//! slot.

use std::any::Any;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots per thread. Small on purpose: it holds the hot few statements, the shared cache the rest.
const SLOTS: usize = 16;

/// Tells caches apart without relying on addresses, which a dropped cache's successor may reuse.
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

pub(super) fn next_cache_id() -> u64 {
    NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed)
}

struct Slot {
    cache: u64,
    key: Arc<str>,
    value: Arc<dyn Any + Send + Sync>,
}

thread_local! {
    static RECENT: RefCell<[Option<Slot>; SLOTS]> = const { RefCell::new([const { None }; SLOTS]) };
}

fn slot_of(cache: u64, query: &str) -> usize {
    let addr = query.as_ptr() as usize;
    // Literals are at least byte-aligned and usually far apart: mix in the length so neighbours and
    // equal-length strings spread over the slots. The cache too: two caches looked up with the same
    // text from the same buffer (lapin's publish and process destinations of one queue, written into
    // one per-thread string) would otherwise take turns evicting each other from one slot. Ids are
    // consecutive and 7 is odd, so any 16 consecutive caches get 16 different offsets.
    ((addr >> 3) ^ (addr >> 9) ^ query.len() ^ (cache as usize).wrapping_mul(7)) % SLOTS
}

/// Runs `f` on the slot of `query`, if this thread's memory holds `query` of cache `cache` there.
fn in_slot<R>(cache: u64, query: &str, f: impl FnOnce(&Slot) -> Option<R>) -> Option<R> {
    RECENT
        .try_with(|recent| {
            let recent = recent.try_borrow().ok()?;
            let slot = recent[slot_of(cache, query)].as_ref()?;
            if slot.cache != cache || *slot.key != *query {
                return None;
            }
            f(slot)
        })
        .ok()
        .flatten()
}

/// The value this thread last stored for `query` in cache `cache`, if still in its slot.
pub(super) fn get<V: Send + Sync + 'static>(cache: u64, query: &str) -> Option<Arc<V>> {
    in_slot(cache, query, |slot| slot.value.clone().downcast::<V>().ok())
}

/// Runs `f` on the value remembered for `query` in `cache`, in place (no reference count touched);
/// `None`, without running `f`, when this thread remembers no such value.
pub(super) fn with<V, R>(cache: u64, query: &str, f: &mut impl FnMut(&V) -> R) -> Option<R>
where
    V: Send + Sync + 'static,
{
    in_slot(cache, query, |slot| slot.value.downcast_ref::<V>().map(f))
}

/// Remembers `value` for `query` (whose text `key` holds) on this thread, replacing whatever shared
/// its slot.
pub(super) fn put<V: Send + Sync + 'static>(cache: u64, query: &str, key: Arc<str>, value: Arc<V>) {
    let _ = RECENT.try_with(|recent| {
        if let Ok(mut recent) = recent.try_borrow_mut() {
            let slot = slot_of(cache, query);
            // The previous occupant is dropped after the borrow ends: its drop may run arbitrary code
            // (a value's destructor), which must not find the cell borrowed.
            let previous = recent[slot].replace(Slot { cache, key, value });
            drop(recent);
            drop(previous);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_need_same_cache_and_same_text() {
        let key: Arc<str> = Arc::from("SELECT 1");
        put(7, &key, key.clone(), Arc::new(1_u32));
        assert_eq!(get::<u32>(7, &key).as_deref(), Some(&1));
        assert!(get::<u32>(8, &key).is_none(), "another cache");
        assert!(get::<u64>(7, &key).is_none(), "another value type");
        let copy = String::from("SELECT 1");
        // A different address may pick another slot; when it picks the same, the text still matches.
        assert!(get::<u32>(7, &copy).is_none_or(|v| *v == 1));
    }

    #[test]
    fn with_runs_in_place_only_on_a_hit() {
        let key: Arc<str> = Arc::from("GET");
        let value = Arc::new(5_u32);
        put(11, &key, key.clone(), value.clone());
        assert_eq!(with(11, &key, &mut |v: &u32| *v + 1), Some(6));
        assert_eq!(Arc::strong_count(&value), 2, "no count taken by a hit");
        assert_eq!(with(12, &key, &mut |v: &u32| *v), None, "another cache");
        assert_eq!(
            with(11, &key, &mut |v: &u64| *v),
            None,
            "another value type"
        );
    }

    #[test]
    fn caches_sharing_a_buffer_keep_their_own_slots() {
        // One buffer, one text, two caches: both entries must survive, whatever the buffer's address.
        let buf = String::from("orders");
        let key: Arc<str> = Arc::from(buf.as_str());
        put(21, &buf, key.clone(), Arc::new(1_u32));
        put(22, &buf, key, Arc::new(2_u32));
        assert_eq!(get::<u32>(21, &buf).as_deref(), Some(&1));
        assert_eq!(get::<u32>(22, &buf).as_deref(), Some(&2));
    }

    #[test]
    fn text_is_compared_not_just_the_address() {
        let mut buf = String::from("SELECT a");
        let key: Arc<str> = Arc::from(buf.as_str());
        put(9, &buf, key, Arc::new("a"));
        assert_eq!(get::<&str>(9, &buf).as_deref(), Some(&"a"));
        buf.replace_range(7..8, "b");
        assert!(get::<&str>(9, &buf).is_none());
    }
}
