//! Rendered list pages, reused while the database's change counter (the
//! `change_counter` table, bumped by triggers on every write that can change
//! a product's rendering, from any process) has not moved. A hit costs one
//! single-row query instead of the page query; a miss renders and stores.
//!
//! The counter is read *before* the page is rendered, so a stored page is
//! never older than the generation it is filed under: a write landing in
//! between only makes the entry look stale (one extra miss), never fresh.
//!
//! Memory is bounded in bytes, not pages: one page of 100 large products is
//! hundreds of kilobytes, so a bound in pages let 511 requests take a
//! replica from 46 MB to 380 MB. The key is what selects the rows (host,
//! page, page size, filters), never the raw query string, so parameters the
//! API does not know cannot mint new entries; the links around the results
//! are added per request (see `Page::wrap_json`).

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use crate::db::products::ProductFilter;
use crate::pagination::{Page, PageRequest};

/// Most bytes of results (plus [`ENTRY_OVERHEAD`] per entry) kept; past it
/// the cache starts over. 16 MiB holds thousands of ordinary pages.
const MAX_BYTES: usize = 16 << 20;

/// What an entry costs beyond its results: key, page, map slot.
const ENTRY_OVERHEAD: usize = 256;

/// What selects a list page's rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ListKey {
    /// `http://host`: media URLs in the results are absolute.
    pub(crate) host: String,
    pub(crate) page: PageRequest,
    pub(crate) page_size: u64,
    pub(crate) filter: ProductFilter,
}

impl ListKey {
    fn weight(&self) -> usize {
        let filter = &self.filter;
        let text = [&filter.title, &filter.tags]
            .iter()
            .map(|t| t.as_ref().map_or(0, String::len))
            .sum::<usize>();
        ENTRY_OVERHEAD
            + self.host.len()
            + text
            + filter.search.iter().map(String::len).sum::<usize>()
    }
}

struct Entry {
    generation: i64,
    page: Page,
    /// The results array's inside: `{…},{…}`.
    items: Bytes,
}

#[derive(Default)]
struct Pages {
    map: HashMap<ListKey, Entry>,
    bytes: usize,
}

/// Results keyed by [`ListKey`], each with its generation.
#[derive(Default)]
pub(crate) struct PageCache {
    // A `std::sync::Mutex`, not a Tokio one: no `.await` while it is held.
    pages: Mutex<Pages>,
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCache")
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

impl PageCache {
    /// The page and results stored for `key` if rendered at `generation`.
    pub(crate) fn get(&self, key: &ListKey, generation: i64) -> Option<(Page, Bytes)> {
        let pages = self.pages.lock().ok()?;
        match pages.map.get(key) {
            Some(e) if e.generation == generation => Some((e.page, e.items.clone())),
            _ => None,
        }
    }

    /// Stores `items` for `key` as rendered at `generation`. An entry bigger
    /// than a quarter of the budget is not kept (it would flush the rest).
    pub(crate) fn put(&self, key: ListKey, generation: i64, page: Page, items: Bytes) {
        let weight = key.weight() + items.len();
        if weight > MAX_BYTES / 4 {
            return;
        }
        let Ok(mut pages) = self.pages.lock() else {
            return;
        };
        if let Some(old) = pages.map.remove(&key) {
            pages.bytes -= key.weight() + old.items.len();
        }
        if pages.bytes + weight > MAX_BYTES {
            pages.map.clear();
            pages.bytes = 0;
        }
        pages.bytes += weight;
        let entry = Entry {
            generation,
            page,
            items,
        };
        pages.map.insert(key, entry);
    }

    /// Bytes accounted to the stored entries.
    pub(crate) fn bytes(&self) -> usize {
        self.pages.lock().map_or(0, |p| p.bytes)
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
        assert_eq!(cache.bytes(), key("page=1").weight() + big.len());
        // Too big for the budget: served, not kept.
        cache.put(key("page=2"), 1, page(), Bytes::from(vec![0; MAX_BYTES]));
        assert!(cache.get(&key("page=2"), 1).is_none());
    }
}
