//! Failure counting with backoff: a key (a client and the user it tries, a webhook's caller)
//! that failed `max_failures` times is told to wait, for `window` after its last failure, and
//! twice as long with each further failure (at most [`MAX_BACKOFF`] windows). A success
//! forgets the key; a key quiet for a window past its wait starts again.

use crate::options::FailureLimit;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Above this many tracked keys, keys that are done waiting are swept out.
const SWEEP_ABOVE: usize = 10_000;

/// The longest wait, in windows.
const MAX_BACKOFF: u32 = 16;

/// Failures per key, with the time of the last one.
#[derive(Debug)]
pub(crate) struct FailureCounter {
    limit: FailureLimit,
    keys: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    last: Instant,
    count: u32,
}

impl FailureCounter {
    pub(crate) fn new(limit: FailureLimit) -> Self {
        Self {
            limit,
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        // An entry is one plain value: a panic elsewhere cannot leave it half-written.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long a key that failed `count` times waits after its last failure.
    fn wait_after(&self, count: u32) -> Duration {
        let Some(excess) = count.checked_sub(self.limit.max_failures) else {
            return Duration::ZERO;
        };
        let factor = 1u32
            .checked_shl(excess)
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF);
        self.limit.window.saturating_mul(factor)
    }

    /// Whether `failures` are forgotten by `now`: a window of quiet after their wait.
    fn forgotten(&self, failures: Failures, now: Instant) -> bool {
        let quiet = self.wait_after(failures.count) + self.limit.window;
        now.saturating_duration_since(failures.last) >= quiet
    }

    /// How long `key` must still wait, if it failed too often.
    pub(crate) fn blocked(&self, key: &str, now: Instant) -> Option<Duration> {
        let failures = *self.keys().get(key)?;
        self.wait_after(failures.count)
            .checked_sub(now.saturating_duration_since(failures.last))
            .filter(|left| !left.is_zero())
    }

    /// Counts one failure of `key`.
    pub(crate) fn fail(&self, key: &str, now: Instant) {
        let mut keys = self.keys();
        if keys.len() > SWEEP_ABOVE {
            keys.retain(|_, failures| !self.forgotten(*failures, now));
        }
        let failures = keys.entry(key.to_owned()).or_insert(Failures {
            last: now,
            count: 0,
        });
        if self.forgotten(*failures, now) {
            failures.count = 0;
        }
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
    }

    /// `key` succeeded: its failures are forgotten.
    pub(crate) fn succeed(&self, key: &str) {
        self.keys().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> FailureCounter {
        FailureCounter::new(FailureLimit {
            max_failures: 3,
            window: Duration::from_secs(60),
        })
    }

    /// `counter` with `times` failures of `key` at `at`.
    fn failed(counter: &FailureCounter, key: &str, times: u32, at: Instant) {
        for _ in 0..times {
            counter.fail(key, at);
        }
    }

    #[test]
    fn a_key_waits_once_it_failed_too_often_and_longer_each_time() {
        let counter = counter();
        let start = Instant::now();
        let key = "10.0.0.1 ada";
        failed(&counter, key, 2, start);
        assert_eq!(counter.blocked(key, start), None);
        counter.fail(key, start);
        let later = start + Duration::from_secs(20);
        assert_eq!(counter.blocked(key, later), Some(Duration::from_secs(40)));
        assert_eq!(counter.blocked("10.0.0.2 ada", later), None, "others go on");
        counter.fail(key, later);
        assert_eq!(
            counter.blocked(key, later),
            Some(Duration::from_secs(120)),
            "twice as long"
        );
        let done = later + Duration::from_secs(121);
        assert_eq!(counter.blocked(key, done), None, "the wait ends");
        counter.fail(key, done);
        assert_eq!(counter.blocked(key, done), Some(Duration::from_secs(240)));
    }

    #[test]
    fn a_success_or_a_quiet_window_forgets_the_failures() {
        let counter = counter();
        let start = Instant::now();
        failed(&counter, "k", 3, start);
        counter.succeed("k");
        assert_eq!(counter.blocked("k", start), None);
        failed(&counter, "k", 3, start);
        let quiet = start + Duration::from_secs(121);
        counter.fail("k", quiet);
        assert_eq!(counter.blocked("k", quiet), None, "counting starts again");
    }

    #[test]
    fn the_wait_is_bounded() {
        let counter = counter();
        let start = Instant::now();
        failed(&counter, "k", 100, start);
        assert_eq!(
            counter.blocked("k", start),
            Some(Duration::from_secs(60 * 16))
        );
    }
}
