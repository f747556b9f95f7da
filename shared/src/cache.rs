//! A bounded, thread-safe cache in front of [`analyze`](crate::sanitize::sql::analyze).
//!
//! Applications run the same few hundred statements over and over; analysing each once and handing out
//! `Arc`s afterwards makes sanitized text nearly free. The cache is sharded (concurrent tasks rarely
//! contend), keyed by a fast seeded hash, and bounded both in entries (oldest evicted first) and in the
//! size of the statements it keeps (longer ones are analysed every time rather than pinned in memory).
//! In front of it, each thread remembers the few statements it used last by their address, so the
//! usual string literal is found without hashing or locking.
//!
//! ```
//! use std::sync::Arc;
//! use tracewire_shared::cache::AnalysisCache;
//! use tracewire_shared::sanitize::sql::Dialect;
//!
//! let cache = AnalysisCache::new(Dialect::Postgres, 32 * 1024);
//! let first = cache.analyze("SELECT * FROM users WHERE id = $1");
//! let again = cache.analyze("SELECT * FROM users WHERE id = $1");
//! assert!(Arc::ptr_eq(&first, &again));
//! assert_eq!(again.summary.as_deref(), Some("SELECT users"));
//! ```

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use foldhash::fast::RandomState;

use crate::sanitize::sql::{Analysis, Dialect, analyze_with_limit};

mod recent;

const SHARDS: usize = 8;

/// Default number of statements kept.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Statements longer than this (bytes) are not cached.
pub const DEFAULT_MAX_CACHED_LEN: usize = 8 * 1024;

/// A bounded, sharded map from statement text to a value derived from it, shared by the caches of
/// analyses and of the per-statement span data adapters keep.
///
/// ```
/// use tracewire_shared::cache::StatementCache;
///
/// let cache = StatementCache::new(16);
/// let len = cache.get_or_insert_with("SELECT 1", |q| q.len());
/// assert_eq!(*len, 8);
/// ```
#[derive(Debug)]
pub struct StatementCache<V> {
    id: u64,
    max_cached_len: usize,
    per_shard: usize,
    hasher: RandomState,
    shards: [Mutex<Shard<V>>; SHARDS],
}

#[derive(Debug)]
struct Shard<V> {
    map: HashMap<Arc<str>, Arc<V>, RandomState>,
    order: VecDeque<Arc<str>>,
}

impl<V: Send + Sync + 'static> StatementCache<V> {
    /// A cache keeping at most `capacity` statements (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        let hasher = RandomState::default();
        Self {
            id: recent::next_cache_id(),
            max_cached_len: DEFAULT_MAX_CACHED_LEN,
            per_shard: capacity.div_ceil(SHARDS),
            shards: std::array::from_fn(|_| {
                Mutex::new(Shard {
                    map: HashMap::with_hasher(hasher.clone()),
                    order: VecDeque::new(),
                })
            }),
            hasher,
        }
    }

    /// Runs `f` on the value for `query` (computed by `make` on a miss). When this thread used `query`
    /// last, `f` runs on the remembered value in place, without touching its reference count: the
    /// cheapest way to read a cached value on a hot path.
    ///
    /// ```
    /// use tracewire_shared::cache::StatementCache;
    ///
    /// let cache = StatementCache::new(16);
    /// assert_eq!(cache.with_or_insert("SELECT 1", |q| q.len(), |len| len * 2), 16);
    /// assert_eq!(cache.with_or_insert("SELECT 1", |_| 0, |len| len * 2), 16);
    /// ```
    #[inline]
    pub fn with_or_insert<R>(
        &self,
        query: &str,
        make: impl FnOnce(&str) -> V,
        mut f: impl FnMut(&V) -> R,
    ) -> R {
        match recent::with(self.id, query, &mut f) {
            Some(r) => r,
            None => f(&self.get_or_insert_with(query, make)),
        }
    }

    /// The value for `query`, computed by `make` on a miss. Statements longer than
    /// [`DEFAULT_MAX_CACHED_LEN`] are computed every time and not kept.
    pub fn get_or_insert_with(&self, query: &str, make: impl FnOnce(&str) -> V) -> Arc<V> {
        if self.per_shard == 0 || query.len() > self.max_cached_len {
            return Arc::new(make(query));
        }
        if let Some(hit) = recent::get(self.id, query) {
            return hit;
        }
        let shard = &self.shards[(self.hasher.hash_one(query) as usize) % SHARDS];
        let hit = shard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .get_key_value(query)
            .map(|(key, value)| (key.clone(), value.clone()));
        if let Some((key, value)) = hit {
            recent::put(self.id, query, key, value.clone());
            return value;
        }
        // Compute outside the lock; a concurrent miss on the same statement just does the work twice.
        let value = Arc::new(make(query));
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = shard.map.get(query) {
            return existing.clone();
        }
        while shard.order.len() >= self.per_shard {
            match shard.order.pop_front() {
                Some(oldest) => {
                    shard.map.remove(&oldest);
                }
                None => break,
            }
        }
        let key: Arc<str> = Arc::from(query);
        shard.order.push_back(key.clone());
        shard.map.insert(key.clone(), value.clone());
        drop(shard);
        recent::put(self.id, query, key, value.clone());
        value
    }

    /// How many statements are cached.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len())
            .sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Caches [`Analysis`] results for one dialect and text limit.
#[derive(Debug)]
pub struct AnalysisCache {
    dialect: Dialect,
    max_text_len: usize,
    cache: StatementCache<Analysis>,
}

impl AnalysisCache {
    /// A cache of [`DEFAULT_CAPACITY`] statements in `dialect`, with text capped at `max_text_len`.
    pub fn new(dialect: Dialect, max_text_len: usize) -> Self {
        Self::with_capacity(dialect, max_text_len, DEFAULT_CAPACITY)
    }

    /// A cache keeping at most `capacity` statements (0 disables caching).
    pub fn with_capacity(dialect: Dialect, max_text_len: usize, capacity: usize) -> Self {
        Self {
            dialect,
            max_text_len,
            cache: StatementCache::new(capacity),
        }
    }

    /// The dialect statements are analysed in.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The analysis of `query`, from the cache when present.
    pub fn analyze(&self, query: &str) -> Arc<Analysis> {
        self.cache.get_or_insert_with(query, |q| {
            analyze_with_limit(q, self.dialect, self.max_text_len)
        })
    }

    /// How many statements are cached.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_evicts_oldest() {
        let cache = AnalysisCache::with_capacity(Dialect::Other, 1024, 16);
        for i in 0..1000 {
            cache.analyze(&format!("SELECT * FROM t{i}"));
        }
        assert!(cache.len() <= 16, "{}", cache.len());
        let a = cache.analyze("SELECT * FROM t999");
        assert!(Arc::ptr_eq(&a, &cache.analyze("SELECT * FROM t999")));
    }

    #[test]
    fn long_statements_are_not_kept() {
        let cache = AnalysisCache::new(Dialect::Other, 1024);
        let long = format!("SELECT '{}'", "x".repeat(DEFAULT_MAX_CACHED_LEN));
        assert_eq!(cache.analyze(&long).text, "SELECT ?");
        assert!(cache.is_empty());
    }

    #[test]
    fn zero_capacity_disables() {
        let cache = AnalysisCache::with_capacity(Dialect::Other, 1024, 0);
        assert_eq!(cache.analyze("SELECT 1").text, "SELECT ?");
        assert!(cache.is_empty());
    }

    #[test]
    fn concurrent_use() {
        let cache = Arc::new(AnalysisCache::with_capacity(Dialect::MySql, 1024, 64));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let q = format!("SELECT {t} FROM t{}", i % 40);
                        assert_eq!(
                            cache.analyze(&q).summary.as_deref(),
                            Some(&*format!("SELECT t{}", i % 40))
                        );
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(cache.len() <= 64);
    }
}
