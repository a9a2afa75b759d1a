//! This node's in-memory cache of latest versions (and misses), kept fresh across nodes.
//!
//! Freshness: every change of a secret, on any node, NOTIFYs `kestrel_secrets`, and the
//! listener counts the notifications it receives ([`crate::Inner::secret_changes`]); when the
//! count moved since the cache last looked, the whole cache is dropped before the lookup. So a
//! change is seen by every node's next read as soon as its notification arrives, whatever the
//! entry's age. As a backstop for notifications lost while the listener was reconnecting, at
//! most once per interval a read compares the stored generation with the one last seen.
//! This node's own changes drop their entry at once. An `epoch` counts drops: a reader that
//! started a database read before a drop does not put its (possibly stale) answer in.

use kestrel_store::{Revealed, SecretId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
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
    /// `None` until the generation was first read.
    seen_generation: Option<i64>,
    seen_notifications: u64,
    epoch: u64,
}

impl State {
    fn drop_all(&mut self) {
        self.map.clear();
        self.epoch += 1;
    }
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
    [id.tenant(), id.namespace(), id.key()].join("\0")
}

impl Cache {
    /// `capacity` 0 disables caching; `interval` is the backstop's period.
    pub(crate) fn new(capacity: usize, interval: Duration) -> Self {
        Self {
            capacity,
            interval_ns: u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX),
            start: Instant::now(),
            last_check_ns: AtomicU64::new(0),
            state: RwLock::new(State::default()),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this caller should read the stored generation now: the first caller, then at
    /// most one caller per interval.
    pub(crate) fn check_due(&self) -> bool {
        if self.capacity == 0 {
            return false;
        }
        // Offset by one interval, so that the first call is due.
        let now = u64::try_from(self.start.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(self.interval_ns);
        let last = self.last_check_ns.load(Ordering::Relaxed);
        now.saturating_sub(last) >= self.interval_ns
            && self
                .last_check_ns
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// The stored generation read now: drops everything if it moved since last seen.
    pub(crate) fn observe_generation(&self, generation: i64) {
        if self.read().seen_generation == Some(generation) {
            return;
        }
        let mut state = self.write();
        if state.seen_generation != Some(generation) {
            state.drop_all();
            state.seen_generation = Some(generation);
        }
    }

    /// The notification count now: drops everything if it moved since last seen.
    fn observe_notifications(&self, notified: u64) {
        if self.read().seen_notifications == notified {
            return;
        }
        let mut state = self.write();
        if state.seen_notifications != notified {
            state.drop_all();
            state.seen_notifications = notified;
        }
    }

    /// Looks `id` up, after dropping everything if notifications arrived (`notified` is the
    /// count now).
    pub(crate) fn lookup(&self, id: &SecretId, notified: u64) -> Lookup {
        if self.capacity == 0 {
            return Lookup::Miss { epoch: 0 };
        }
        self.observe_notifications(notified);
        let state = self.read();
        match state.map.get(&cache_key(id)) {
            Some(found) => Lookup::Hit(found.clone()),
            None => Lookup::Miss { epoch: state.epoch },
        }
    }

    /// Caches what a database read answered, unless something was dropped (or a notification
    /// arrived: `notified` is the count now) since the lookup.
    pub(crate) fn insert(
        &self,
        id: &SecretId,
        epoch: u64,
        notified: u64,
        found: Option<&Revealed>,
    ) {
        if self.capacity == 0 {
            return;
        }
        self.observe_notifications(notified);
        let mut state = self.write();
        if state.epoch != epoch {
            return;
        }
        if state.map.len() >= self.capacity {
            // Crude but bounded: a full cache starts over.
            state.map.clear();
        }
        state.map.insert(cache_key(id), found.cloned());
    }

    /// This node changed `id` in a transaction that left the stored generation at
    /// `generation`: drop the entry now (its notification comes later), and skip the
    /// backstop's whole-cache drop that generation would cause when it is the only change
    /// since the last one seen.
    pub(crate) fn changed(&self, id: &SecretId, generation: i64) {
        let mut state = self.write();
        state.epoch += 1;
        state.map.remove(&cache_key(id));
        if state.seen_generation.map(|g| g + 1) == Some(generation) {
            state.seen_generation = Some(generation);
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

    fn hit(cache: &Cache, key: &str, notified: u64) -> Option<Option<String>> {
        match cache.lookup(&id(key), notified) {
            Lookup::Hit(found) => Some(found.map(|r| r.value.expose_secret().to_owned())),
            Lookup::Miss { .. } => None,
        }
    }

    fn put(cache: &Cache, key: &str, value: Option<&str>) {
        let Lookup::Miss { epoch } = cache.lookup(&id(key), 0) else {
            panic!("expected a miss");
        };
        cache.insert(&id(key), epoch, 0, value.map(revealed).as_ref());
    }

    #[test]
    fn caches_values_and_misses() {
        let cache = Cache::new(10, Duration::from_secs(1));
        put(&cache, "K", Some("v"));
        put(&cache, "M", None);
        assert_eq!(hit(&cache, "K", 0), Some(Some("v".into())));
        assert_eq!(hit(&cache, "M", 0), Some(None));
    }

    #[test]
    fn a_notification_drops_everything() {
        let cache = Cache::new(10, Duration::from_secs(1));
        put(&cache, "K", Some("v"));
        assert_eq!(hit(&cache, "K", 1), None);
    }

    #[test]
    fn a_read_that_raced_a_change_or_a_notification_is_not_cached() {
        let cache = Cache::new(10, Duration::from_secs(1));
        let Lookup::Miss { epoch } = cache.lookup(&id("K"), 0) else {
            panic!("expected a miss");
        };
        cache.changed(&id("K"), 1);
        cache.insert(&id("K"), epoch, 0, Some(&revealed("stale")));
        assert_eq!(hit(&cache, "K", 0), None);
        let Lookup::Miss { epoch } = cache.lookup(&id("K"), 0) else {
            panic!("expected a miss");
        };
        cache.insert(&id("K"), epoch, 1, Some(&revealed("stale")));
        assert_eq!(hit(&cache, "K", 1), None);
    }

    #[test]
    fn another_node_change_drops_everything_own_change_only_its_entry() {
        let cache = Cache::new(10, Duration::from_secs(1));
        cache.observe_generation(5);
        put(&cache, "K", Some("v"));
        put(&cache, "L", Some("w"));
        cache.changed(&id("K"), 6);
        cache.observe_generation(6);
        assert_eq!(
            hit(&cache, "L", 0),
            Some(Some("w".into())),
            "own write kept L"
        );
        cache.observe_generation(7);
        assert_eq!(hit(&cache, "L", 0), None, "another node's write drops all");
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = Cache::new(0, Duration::ZERO);
        cache.insert(&id("K"), 0, 0, Some(&revealed("v")));
        assert_eq!(hit(&cache, "K", 0), None);
        assert!(!cache.check_due());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = Cache::new(2, Duration::from_secs(1));
        for k in ["A", "B", "C"] {
            put(&cache, k, None);
        }
        assert_eq!(hit(&cache, "A", 0), None);
        assert_eq!(hit(&cache, "C", 0), Some(None));
    }

    #[test]
    fn the_first_check_then_one_per_interval() {
        let cache = Cache::new(10, Duration::from_secs(3600));
        assert!(cache.check_due(), "the generation was never read");
        assert!(!cache.check_due());
        let always = Cache::new(10, Duration::ZERO);
        assert!(always.check_due() && always.check_due());
    }
}
