//! Rendered list pages, reused while the database's change counter (the
//! `change_counter` table, bumped by triggers on every write that can change
//! a product's rendering, from any process) has not moved. A hit costs one
//! single-row query instead of the page query; a miss renders and stores.
//!
//! The counter is read *before* the page is rendered, so a stored page is
//! never older than the generation it is filed under: a write landing in
//! between only makes the entry look stale (one extra miss), never fresh.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

/// Most pages kept; past it the cache starts over (bounds memory against
/// clients that vary the query string).
const MAX_ENTRIES: usize = 512;

/// Bodies keyed by origin + path + query, each with its generation.
#[derive(Debug, Default)]
pub struct PageCache {
    // A `std::sync::Mutex`, not a Tokio one: no `.await` while it is held.
    pages: Mutex<HashMap<String, (i64, Bytes)>>,
}

impl PageCache {
    /// The body stored for `key` if it was rendered at `generation`.
    pub fn get(&self, key: &str, generation: i64) -> Option<Bytes> {
        let pages = self.pages.lock().ok()?;
        match pages.get(key) {
            Some((g, body)) if *g == generation => Some(body.clone()),
            _ => None,
        }
    }

    /// Stores `body` for `key` as rendered at `generation`.
    pub fn put(&self, key: String, generation: i64, body: Bytes) {
        if let Ok(mut pages) = self.pages.lock() {
            if pages.len() >= MAX_ENTRIES && !pages.contains_key(&key) {
                pages.clear();
            }
            pages.insert(key, (generation, body));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_only_at_the_same_generation() {
        let cache = PageCache::default();
        cache.put("a".into(), 3, Bytes::from_static(b"x"));
        assert_eq!(cache.get("a", 3).as_deref(), Some(&b"x"[..]));
        assert!(cache.get("a", 4).is_none());
        assert!(cache.get("b", 3).is_none());
        for i in 0..MAX_ENTRIES + 1 {
            cache.put(i.to_string(), 1, Bytes::new());
        }
        assert!(cache.pages.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
