//! Rendered JSON (list pages, single products), reused while the database's
//! change counter (the `change_counter` table, bumped by triggers on every
//! write that can change a product's rendering, from any process) has not
//! moved. A hit costs no rendering query; a miss renders and stores. The
//! counter itself comes from [`crate::generation`], which on SQLite skips
//! even that query while no transaction has committed.
//!
//! The counter is read *before* the JSON is rendered, so a stored entry is
//! never older than the generation it is filed under: a write landing in
//! between only makes the entry look stale (one extra miss), never fresh.
//!
//! Memory is bounded in bytes, not entries: one page of 100 large products is
//! hundreds of kilobytes, so a bound in pages let 511 requests take a
//! replica from 46 MB to 380 MB. A key is what selects the rows (host,
//! page, page size, filters; or a product id and the media base), never the
//! raw query string, so parameters the API does not know cannot mint new
//! entries; the links around a page's results are added per request (see
//! `Page::wrap_json`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use bytes::Bytes;

use crate::db::products::ProductFilter;
use crate::pagination::{Page, PageRequest};

/// Most bytes of JSON (plus [`ENTRY_OVERHEAD`] per entry) kept per cache;
/// past it the cache starts over. 16 MiB holds thousands of ordinary pages.
const MAX_BYTES: usize = 16 << 20;

/// What an entry costs beyond its JSON: key, metadata, map slot.
const ENTRY_OVERHEAD: usize = 256;

/// A cache key's size in memory beyond [`ENTRY_OVERHEAD`] (its strings).
pub(crate) trait Weigh {
    fn weight(&self) -> usize;
}

/// What selects a list page's rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ListKey {
    /// `http://host`: media URLs in the results are absolute.
    pub(crate) host: String,
    pub(crate) page: PageRequest,
    pub(crate) page_size: u64,
    pub(crate) filter: ProductFilter,
}

impl Weigh for ListKey {
    fn weight(&self) -> usize {
        let filter = &self.filter;
        let text = [&filter.title, &filter.tags]
            .iter()
            .map(|t| t.as_ref().map_or(0, String::len))
            .sum::<usize>();
        self.host.len() + text + filter.search.iter().map(String::len).sum::<usize>()
    }
}

/// One product as `GET products/{id}/` renders it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ProductKey {
    pub(crate) id: i64,
    /// The media URLs' base (`http://host/media/`).
    pub(crate) media: String,
}

impl Weigh for ProductKey {
    fn weight(&self) -> usize {
        self.media.len()
    }
}

/// List pages: the page's numbers beside the results array's inside
/// (`{…},{…}`).
pub(crate) type PageCache = RenderCache<ListKey, Page>;

/// Single products, whole bodies.
pub(crate) type ProductCache = RenderCache<ProductKey, ()>;

struct Entry<M> {
    generation: i64,
    meta: M,
    json: Bytes,
}

struct Entries<K, M> {
    map: HashMap<K, Entry<M>>,
    bytes: usize,
}

/// JSON keyed by `K`, each with its generation and a small `M` beside it.
pub(crate) struct RenderCache<K, M> {
    // A `std::sync::Mutex`, not a Tokio one: no `.await` while it is held.
    entries: Mutex<Entries<K, M>>,
}

impl<K, M> Default for RenderCache<K, M> {
    fn default() -> Self {
        RenderCache {
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                bytes: 0,
            }),
        }
    }
}

impl<K, M> std::fmt::Debug for RenderCache<K, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = self.entries.lock().map_or(0, |e| e.bytes);
        f.debug_struct("RenderCache")
            .field("bytes", &bytes)
            .finish_non_exhaustive()
    }
}

impl<K: Weigh + Hash + Eq, M: Copy> RenderCache<K, M> {
    /// What is stored for `key` if rendered at `generation`.
    pub(crate) fn get(&self, key: &K, generation: i64) -> Option<(M, Bytes)> {
        let entries = self.entries.lock().ok()?;
        match entries.map.get(key) {
            Some(e) if e.generation == generation => Some((e.meta, e.json.clone())),
            _ => None,
        }
    }

    /// Stores `json` for `key` as rendered at `generation`. An entry bigger
    /// than a quarter of the budget is not kept (it would flush the rest).
    pub(crate) fn put(&self, key: K, generation: i64, meta: M, json: Bytes) {
        let weight = ENTRY_OVERHEAD + key.weight() + json.len();
        if weight > MAX_BYTES / 4 {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if let Some(old) = entries.map.remove(&key) {
            entries.bytes -= ENTRY_OVERHEAD + key.weight() + old.json.len();
        }
        if entries.bytes + weight > MAX_BYTES {
            entries.map.clear();
            entries.bytes = 0;
        }
        entries.bytes += weight;
        let entry = Entry {
            generation,
            meta,
            json,
        };
        entries.map.insert(key, entry);
    }

    /// Bytes accounted to the stored entries.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pagination::PageParams;
    use crate::request::QueryParams;

    fn key(query: &str) -> ListKey {
        let params = PageParams::from_query(&QueryParams::parse(Some(query))).unwrap();
        ListKey {
            host: "http://h".into(),
            page: params.request(),
            page_size: params.page_size,
            filter: ProductFilter::default(),
        }
    }

    fn page() -> Page {
        PageParams::from_query(&QueryParams::default())
            .unwrap()
            .resolve(1)
            .unwrap()
    }

    #[test]
    fn hit_only_at_the_same_generation() {
        let cache = PageCache::default();
        cache.put(key("page=1"), 3, page(), Bytes::from_static(b"x"));
        assert_eq!(cache.get(&key(""), 3).unwrap().1.as_ref(), b"x");
        assert!(cache.get(&key(""), 4).is_none());
        assert!(cache.get(&key("page=2"), 3).is_none());
    }

    #[test]
    fn bounded_in_bytes() {
        let cache = PageCache::default();
        let big = Bytes::from(vec![b'x'; 300_000]);
        for n in 1..=500 {
            cache.put(key(&format!("page={n}")), 1, page(), big.clone());
            assert!(cache.bytes() <= MAX_BYTES, "after {n}: {}", cache.bytes());
        }
        // Replacing an entry does not count it twice.
        let cache = PageCache::default();
        for _ in 0..100 {
            cache.put(key("page=1"), 1, page(), big.clone());
        }
        assert_eq!(
            cache.bytes(),
            ENTRY_OVERHEAD + key("page=1").weight() + big.len()
        );
        // Too big for the budget: served, not kept.
        cache.put(key("page=2"), 1, page(), Bytes::from(vec![0; MAX_BYTES]));
        assert!(cache.get(&key("page=2"), 1).is_none());
    }
}
