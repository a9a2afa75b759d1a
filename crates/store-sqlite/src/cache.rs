//! The in-memory cache of latest versions (and misses), kept fresh across processes.
//!
//! Freshness: every change of a value bumps the stored `generation`. At most once per
//! `interval`, a `get` reads it (a few microseconds); when it moved, the whole cache is dropped.
//! Own writes drop their entry at once. An `epoch` counts drops: a reader that started a
//! database read before a drop does not put its (possibly stale) answer into the cache.

use crate::sync::{read, write};
use kestrel_store::{Revealed, SecretId};
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) struct Cache {
    capacity: usize,
    interval_ns: u64,
    start: Instant,
    last_check_ns: AtomicU64,
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    map: HashMap<String, Option<Revealed>>,
    seen_generation: i64,
    epoch: u64,
}

/// The answer of a lookup.
pub(crate) enum Lookup {
    /// Cached: the latest readable version, or `None` for a cached miss.
    Hit(Option<Revealed>),
    /// Not cached; pass `epoch` back to [`Cache::insert`].
    Miss { epoch: u64 },
}

fn cache_key(id: &SecretId) -> String {
    // Names never hold NUL, so the joined key is unambiguous.
    let mut k =
        String::with_capacity(id.tenant().len() + id.namespace().len() + id.key().len() + 2);
    for (i, part) in [id.tenant(), id.namespace(), id.key()]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            k.push('\0');
        }
        k.push_str(part);
    }
    k
}

impl Cache {
    /// `capacity` 0 disables caching. `generation` is the stored one at open.
    pub(crate) fn new(capacity: usize, interval: Duration, generation: i64) -> Self {
        Self {
            capacity,
            interval_ns: u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX),
            start: Instant::now(),
            last_check_ns: AtomicU64::new(0),
            state: RwLock::new(State {
                seen_generation: generation,
                ..State::default()
            }),
        }
    }

    /// Whether this caller should read the stored generation now; at most one caller per
    /// interval is told yes.
    pub(crate) fn check_due(&self) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let last = self.last_check_ns.load(Ordering::Relaxed);
        now.saturating_sub(last) >= self.interval_ns
            && self
                .last_check_ns
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// The stored generation read now: drops everything if another process changed a value.
    pub(crate) fn observe_generation(&self, generation: i64) {
        if read(&self.state).seen_generation == generation {
            return;
        }
        let mut state = write(&self.state);
        if state.seen_generation != generation {
            state.map.clear();
            state.epoch += 1;
            state.seen_generation = generation;
        }
    }

    pub(crate) fn lookup(&self, id: &SecretId) -> Lookup {
        if self.capacity == 0 {
            return Lookup::Miss { epoch: 0 };
        }
        let key = cache_key(id);
        let state = read(&self.state);
        match state.map.get(&key) {
            Some(found) => Lookup::Hit(found.clone()),
            None => Lookup::Miss { epoch: state.epoch },
        }
    }

    /// Caches what a database read answered, unless something was dropped since the lookup.
    pub(crate) fn insert(&self, id: &SecretId, epoch: u64, found: Option<&Revealed>) {
        if self.capacity == 0 {
            return;
        }
        let mut state = write(&self.state);
        if state.epoch != epoch {
            return;
        }
        if state.map.len() >= self.capacity {
            // Crude but bounded: a full cache starts over.
            state.map.clear();
        }
        state.map.insert(cache_key(id), found.cloned());
    }

    /// This process changed `id` in a transaction that left the stored generation at
    /// `generation`: drop the entry now, and skip the whole-cache drop that generation would
    /// cause when it is the only change since the last one seen.
    pub(crate) fn changed(&self, id: &SecretId, generation: i64) {
        let mut state = write(&self.state);
        state.epoch += 1;
        state.map.remove(&cache_key(id));
        if state.seen_generation + 1 == generation {
            state.seen_generation = generation;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_secrets::SecretValue;

    fn id(key: &str) -> SecretId {
        SecretId::main("a.b", key).unwrap()
    }

    fn revealed(v: &str) -> Revealed {
        Revealed {
            version: 1,
            value: SecretValue::new(v.into()),
        }
    }

    fn hit(cache: &Cache, key: &str) -> Option<Option<String>> {
        match cache.lookup(&id(key)) {
            Lookup::Hit(found) => Some(found.map(|r| r.value.expose_secret().to_owned())),
            Lookup::Miss { .. } => None,
        }
    }

    fn epoch(cache: &Cache, key: &str) -> u64 {
        match cache.lookup(&id(key)) {
            Lookup::Miss { epoch } => epoch,
            Lookup::Hit(_) => panic!("expected a miss"),
        }
    }

    #[test]
    fn caches_values_and_misses() {
        let cache = Cache::new(10, Duration::from_millis(100), 0);
        let e = epoch(&cache, "K");
        cache.insert(&id("K"), e, Some(&revealed("v")));
        cache.insert(&id("M"), e, None);
        assert_eq!(hit(&cache, "K"), Some(Some("v".into())));
        assert_eq!(hit(&cache, "M"), Some(None));
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_cached() {
        let cache = Cache::new(10, Duration::from_millis(100), 0);
        let e = epoch(&cache, "K");
        cache.changed(&id("K"), 1);
        cache.insert(&id("K"), e, Some(&revealed("stale")));
        assert_eq!(hit(&cache, "K"), None);
    }

    #[test]
    fn another_process_change_drops_everything_own_change_only_its_entry() {
        let cache = Cache::new(10, Duration::from_millis(100), 5);
        let e = epoch(&cache, "K");
        cache.insert(&id("K"), e, Some(&revealed("v")));
        cache.insert(&id("L"), e, Some(&revealed("w")));
        cache.changed(&id("K"), 6);
        cache.observe_generation(6);
        assert_eq!(hit(&cache, "L"), Some(Some("w".into())), "own write kept L");
        cache.observe_generation(7);
        assert_eq!(hit(&cache, "L"), None, "another process's write drops all");
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = Cache::new(0, Duration::ZERO, 0);
        cache.insert(&id("K"), 0, Some(&revealed("v")));
        assert_eq!(hit(&cache, "K"), None);
        assert!(!cache.check_due());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = Cache::new(2, Duration::from_millis(100), 0);
        for k in ["A", "B", "C"] {
            let e = epoch(&cache, k);
            cache.insert(&id(k), e, None);
        }
        assert_eq!(hit(&cache, "A"), None);
        assert_eq!(hit(&cache, "C"), Some(None));
    }

    #[test]
    fn one_check_per_interval() {
        let cache = Cache::new(10, Duration::from_secs(3600), 0);
        assert!(!cache.check_due(), "the generation was read at open");
        let always = Cache::new(10, Duration::ZERO, 0);
        assert!(always.check_due() && always.check_due());
    }
}
