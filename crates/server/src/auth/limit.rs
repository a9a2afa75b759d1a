//! Failure counting: a client address, a user name or a webhook's caller that failed too often
//! in a window waits until the window ends (429), whatever it sends meanwhile.

use crate::options::FailureLimit;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Above this many tracked keys, windows that ended are swept out.
const SWEEP_ABOVE: usize = 10_000;

/// Failures per key in fixed windows.
#[derive(Debug)]
pub(crate) struct FailureCounter {
    limit: FailureLimit,
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl FailureCounter {
    pub(crate) fn new(limit: FailureLimit) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        // A window is one plain value: a panic elsewhere cannot leave it half-written.
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long `key` must still wait, if it reached the limit in its current window.
    pub(crate) fn blocked(&self, key: &str, now: Instant) -> Option<Duration> {
        let window = *self.windows().get(key)?;
        let left = self
            .limit
            .window
            .checked_sub(now.saturating_duration_since(window.started))?;
        (window.failures >= self.limit.max_failures && !left.is_zero()).then_some(left)
    }

    /// Counts one failure of `key`.
    pub(crate) fn fail(&self, key: &str, now: Instant) {
        let mut windows = self.windows();
        if windows.len() > SWEEP_ABOVE {
            let span = self.limit.window;
            windows.retain(|_, w| now.saturating_duration_since(w.started) < span);
        }
        let window = windows.entry(key.to_owned()).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.saturating_duration_since(window.started) >= self.limit.window {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
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

    #[test]
    fn a_key_waits_once_it_failed_too_often_and_until_its_window_ends() {
        let counter = counter();
        let start = Instant::now();
        for _ in 0..2 {
            counter.fail("ip:10.0.0.1", start);
        }
        assert_eq!(counter.blocked("ip:10.0.0.1", start), None);
        counter.fail("ip:10.0.0.1", start);
        let later = start + Duration::from_secs(20);
        assert_eq!(
            counter.blocked("ip:10.0.0.1", later),
            Some(Duration::from_secs(40))
        );
        assert_eq!(counter.blocked("ip:10.0.0.2", later), None, "others go on");
        let after = start + Duration::from_secs(61);
        assert_eq!(counter.blocked("ip:10.0.0.1", after), None);
        counter.fail("ip:10.0.0.1", after);
        assert_eq!(counter.blocked("ip:10.0.0.1", after), None, "a new window");
    }
}
