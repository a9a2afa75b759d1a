//! The read-through cache in front of every external manager.
//!
//! - Answers of `get` for the current version, hits and misses alike (a namespace walk asks
//!   each level, and most levels hold nothing), are kept for the TTL; a TTL of 0 keeps nothing.
//! - Single flight: callers asking for one key while its fetch runs wait for that fetch, so
//!   1,000 executions starting together make one call.
//! - Stale on error: when a fetch fails, an answer expired less than `stale_for` ago is
//!   handed out instead, with a warning, and the manager's state turns to degraded.
//! - At most `maximum_size` answers; expired ones go first when it is full.
//!
//! Freshness across processes is [`crate::External`]'s job: it drops entries this process
//! changed at once and everything when another process changed something.

use crate::{Revealed, SecretId, SecretManager, StoreError};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// How the cache behaves (`secret.cache`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// How long an answer is used without asking again; zero disables the cache.
    pub ttl: Duration,
    /// Most answers kept.
    pub maximum_size: usize,
    /// How long past its TTL an answer may still be handed out while the manager fails.
    pub stale_for: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(60),
            maximum_size: 10_000,
            stale_for: Duration::from_secs(300),
        }
    }
}

/// Whether the manager answered its last fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagerState {
    /// The last fetch succeeded (or none was made yet).
    Up,
    /// The last fetch failed; the message names the manager, never a value.
    Failing(String),
}

/// An answer shared by every caller of one flight.
type Answer = Result<Option<Revealed>, Arc<StoreError>>;

struct Entry {
    answer: Option<Revealed>,
    fetched: Instant,
}

/// What one `get` found in the map.
enum Lookup {
    Fresh(Option<Revealed>),
    Fetch {
        flight: Arc<OnceCell<Answer>>,
        stale: Option<Option<Revealed>>,
    },
}

#[derive(Default)]
struct State {
    entries: HashMap<SecretId, Entry>,
    flights: HashMap<SecretId, Arc<OnceCell<Answer>>>,
    manager: Option<String>,
    /// Counts forgets: a fetch that started before one does not cache its (maybe old) answer.
    epoch: u64,
}

/// A manager behind the cache.
pub struct Cached {
    manager: Arc<dyn SecretManager>,
    settings: CacheSettings,
    warn: Arc<dyn Fn(&str) + Send + Sync>,
    state: Mutex<State>,
    /// How many reads this cache asked the manager for.
    fetches: AtomicUsize,
}

impl fmt::Debug for Cached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("manager", &self.manager.name())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Cached {
    /// `manager` behind a cache with `settings`; `warn` receives the warnings of stale answers.
    pub fn new(
        manager: Arc<dyn SecretManager>,
        settings: CacheSettings,
        warn: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Self {
        Self {
            manager,
            settings,
            warn,
            state: Mutex::new(State::default()),
            fetches: AtomicUsize::new(0),
        }
    }

    /// The manager behind the cache.
    pub fn manager(&self) -> &Arc<dyn SecretManager> {
        &self.manager
    }

    /// How many reads of values this cache asked the manager for, since it was made.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Whether the manager answered its last fetch.
    pub fn state(&self) -> ManagerState {
        match &self.lock().manager {
            None => ManagerState::Up,
            Some(failure) => ManagerState::Failing(failure.clone()),
        }
    }

    /// The current version of `id` (or `None`), from the cache when fresh.
    pub async fn get(&self, id: &SecretId) -> Result<Option<Revealed>, StoreError> {
        let (flight, stale) = match self.lookup(id) {
            Lookup::Fresh(answer) => return Ok(answer),
            Lookup::Fetch { flight, stale } => (flight, stale),
        };
        let answer = flight.get_or_init(|| self.fetch(id)).await.clone();
        self.land(id, &flight);
        match (answer, stale) {
            (Ok(found), _) => Ok(found),
            (Err(error), Some(stale)) => {
                (self.warn)(&format!(
                    "{error}; using the answer cached for secret '{}' of namespace '{}' until \
                     the {} backend answers again",
                    id.key(),
                    id.namespace(),
                    self.manager.name()
                ));
                Ok(stale)
            }
            (Err(error), None) => Err(StoreError::Shared(error)),
        }
    }

    /// Forgets what is cached for `id` (this process changed it).
    pub fn forget(&self, id: &SecretId) {
        let mut state = self.lock();
        state.entries.remove(id);
        state.epoch += 1;
    }

    /// Forgets everything (another process changed something).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.entries.clear();
        state.epoch += 1;
    }

    fn lookup(&self, id: &SecretId) -> Lookup {
        let mut state = self.lock();
        let now = Instant::now();
        let mut stale = None;
        if let Some(entry) = state.entries.get(id) {
            let age = now.duration_since(entry.fetched);
            if age < self.settings.ttl {
                return Lookup::Fresh(entry.answer.clone());
            }
            if age < self.settings.ttl + self.settings.stale_for {
                stale = Some(entry.answer.clone());
            }
        }
        let flight = Arc::clone(state.flights.entry(id.clone()).or_default());
        Lookup::Fetch { flight, stale }
    }

    async fn fetch(&self, id: &SecretId) -> Answer {
        let epoch = self.lock().epoch;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let answer = self.manager.get(id, None).await.map_err(Arc::new);
        let mut state = self.lock();
        match &answer {
            Ok(found) => {
                state.manager = None;
                if !self.settings.ttl.is_zero() && state.epoch == epoch {
                    self.insert(&mut state, id, found.clone());
                }
            }
            Err(error) => state.manager = Some(error.to_string()),
        }
        answer
    }

    /// The flight is over: the next caller after its answer starts a new one.
    fn land(&self, id: &SecretId, flight: &Arc<OnceCell<Answer>>) {
        let mut state = self.lock();
        if state
            .flights
            .get(id)
            .is_some_and(|current| Arc::ptr_eq(current, flight))
        {
            state.flights.remove(id);
        }
    }

    fn insert(&self, state: &mut State, id: &SecretId, answer: Option<Revealed>) {
        if state.entries.len() >= self.settings.maximum_size && !state.entries.contains_key(id) {
            self.evict(state);
        }
        if state.entries.len() < self.settings.maximum_size {
            let fetched = Instant::now();
            state.entries.insert(id.clone(), Entry { answer, fetched });
        }
    }

    /// Makes room: the expired answers go; if none had expired, the oldest.
    fn evict(&self, state: &mut State) {
        let keep_for = self.settings.ttl + self.settings.stale_for;
        state
            .entries
            .retain(|_, entry| entry.fetched.elapsed() < keep_for);
        if state.entries.len() >= self.settings.maximum_size {
            let oldest = state
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.fetched)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                state.entries.remove(&oldest);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the maps whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Counting;
    use std::sync::atomic::Ordering;

    fn cached(manager: &Arc<Counting>, ttl: Duration) -> Cached {
        let settings = CacheSettings {
            ttl,
            maximum_size: 100,
            stale_for: Duration::from_secs(3600),
        };
        let manager: Arc<dyn SecretManager> = manager.clone();
        Cached::new(manager, settings, Arc::new(|_: &str| {}))
    }

    fn id(key: &str) -> SecretId {
        SecretId::main("a", key).unwrap()
    }

    fn run<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn value(found: Option<Revealed>) -> Option<String> {
        found.map(|r| r.value.expose_secret().to_owned())
    }

    #[test]
    fn hits_and_misses_are_kept_for_the_ttl() {
        let manager = Arc::new(Counting::default());
        let cache = cached(&manager, Duration::from_secs(3600));
        run(async {
            for _ in 0..5 {
                assert_eq!(
                    value(cache.get(&id("K")).await.unwrap()).as_deref(),
                    Some("v1")
                );
                assert_eq!(value(cache.get(&id("NONE")).await.unwrap()), None);
            }
        });
        assert_eq!(manager.reads.load(Ordering::SeqCst), 2, "one read per key");
    }

    #[test]
    fn a_ttl_of_zero_asks_every_time_and_a_forgotten_key_is_asked_again() {
        let manager = Arc::new(Counting::default());
        let uncached = cached(&manager, Duration::ZERO);
        run(async {
            for _ in 0..3 {
                uncached.get(&id("K")).await.unwrap();
            }
        });
        assert_eq!(manager.reads.load(Ordering::SeqCst), 3);
        let cache = cached(&manager, Duration::from_secs(3600));
        run(async {
            cache.get(&id("K")).await.unwrap();
            cache.forget(&id("K"));
            cache.get(&id("K")).await.unwrap();
            cache.clear();
            cache.get(&id("K")).await.unwrap();
        });
        assert_eq!(manager.reads.load(Ordering::SeqCst), 3 + 3);
    }

    #[test]
    fn a_thousand_callers_of_one_key_make_one_call() {
        let manager = Arc::new(Counting {
            gate: Some(tokio::sync::Semaphore::new(0)),
            ..Counting::default()
        });
        let cache = cached(&manager, Duration::ZERO);
        let key = id("K");
        let answers = run(async {
            let callers = (0..1000).map(|_| cache.get(&key));
            let callers = futures_util::future::join_all(callers);
            // Polled after every caller has asked once: only then may the one read finish.
            let open = async {
                if let Some(gate) = &manager.gate {
                    gate.add_permits(1);
                }
            };
            futures_util::future::join(callers, open).await.0
        });
        assert!(answers.iter().all(|a| a.as_ref().unwrap().is_some()));
        assert_eq!(manager.reads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failing_manager_is_answered_from_a_stale_entry_with_a_warning() {
        let manager = Arc::new(Counting::default());
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&warnings);
        let settings = CacheSettings {
            ttl: Duration::from_millis(1),
            maximum_size: 100,
            stale_for: Duration::from_secs(3600),
        };
        let dyn_manager: Arc<dyn SecretManager> = manager.clone();
        let warn = Arc::new(move |w: &str| seen.lock().unwrap().push(w.to_owned()));
        let cache = Cached::new(dyn_manager, settings, warn);
        run(async {
            cache.get(&id("K")).await.unwrap();
            std::thread::sleep(Duration::from_millis(5));
            manager.failing.store(true, Ordering::SeqCst);
            let stale = cache.get(&id("K")).await.unwrap();
            assert_eq!(value(stale).as_deref(), Some("v1"));
            let error = cache.get(&id("NEVER_READ")).await.unwrap_err();
            assert_eq!(error.to_string(), "counting: reading: connection refused");
        });
        assert!(matches!(cache.state(), ManagerState::Failing(_)));
        let warnings = warnings.lock().unwrap();
        assert!(
            warnings[0].contains("using the answer cached for secret 'K'"),
            "{warnings:?}"
        );
        assert!(!warnings[0].contains("v1"));
    }

    #[test]
    fn the_cache_holds_at_most_its_maximum() {
        let manager = Arc::new(Counting::default());
        let settings = CacheSettings {
            maximum_size: 3,
            ..CacheSettings::default()
        };
        let dyn_manager: Arc<dyn SecretManager> = manager.clone();
        let cache = Cached::new(dyn_manager, settings, Arc::new(|_: &str| {}));
        run(async {
            for i in 0..10 {
                cache.get(&id(&format!("K{i}"))).await.unwrap();
            }
        });
        assert_eq!(cache.lock().entries.len(), 3);
    }
}
