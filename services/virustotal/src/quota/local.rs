//! The budget counted in process, for one replica without Redis: the rules
//! of [`crate::quota`], on this process's clock.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{DAY_MS, Denial, MINUTE_MS, QuotaError, Window, until_next_utc_day};
use crate::config::RateLimits;
use parking_lot::Mutex;

/// The state the rules need: request times of the last minute, the day's
/// count, and the back-off's end.
#[derive(Debug, Default)]
pub struct Windows {
    /// Grant times (Unix ms) within the last minute, oldest first.
    minute: VecDeque<u64>,
    /// The UTC day (days since the epoch) `day_count` counts.
    day: u64,
    /// Requests granted on `day`.
    day_count: u64,
    /// Unix ms until which nothing is granted.
    backoff_until: u64,
}

impl Windows {
    /// Applies the rules at `now_ms` (Unix ms): grants a slot (and counts
    /// it) or returns the refusal with its exact wait.
    ///
    /// # Errors
    /// The [`Denial`]: back-off first, then the day, then the minute.
    pub fn try_acquire(&mut self, now_ms: u64, limits: RateLimits) -> Result<(), Denial> {
        if self.backoff_until > now_ms {
            return Err(Denial {
                window: Window::Backoff,
                retry_after: Duration::from_millis(self.backoff_until - now_ms),
            });
        }
        let today = now_ms / DAY_MS;
        if self.day != today {
            self.day = today;
            self.day_count = 0;
        }
        if let Some(per_day) = limits.per_day
            && self.day_count >= u64::from(per_day)
        {
            return Err(Denial {
                window: Window::Day,
                retry_after: Duration::from_millis(until_next_utc_day(now_ms)),
            });
        }
        if let Some(per_minute) = limits.per_minute {
            // Requests exactly 60 s old no longer count.
            while self
                .minute
                .front()
                .is_some_and(|&granted| granted + MINUTE_MS <= now_ms)
            {
                self.minute.pop_front();
            }
            let per_minute = per_minute as usize;
            if self.minute.len() >= per_minute {
                // The slot frees when the request that keeps the window
                // full turns 60 s old.
                let blocking = self.minute[self.minute.len() - per_minute];
                return Err(Denial {
                    window: Window::Minute,
                    retry_after: Duration::from_millis(blocking + MINUTE_MS - now_ms),
                });
            }
            self.minute.push_back(now_ms);
        }
        self.day_count += 1;
        Ok(())
    }

    /// Refuses every request until `now_ms + wait` (keeps a longer back-off).
    pub fn back_off(&mut self, now_ms: u64, wait: Duration) {
        let until = now_ms + wait.as_millis() as u64;
        self.backoff_until = self.backoff_until.max(until);
    }
}

/// The in-process budget; clones share it.
#[derive(Clone)]
pub struct LocalQuota {
    limits: RateLimits,
    windows: Arc<Mutex<Windows>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

impl LocalQuota {
    /// A budget enforcing `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            windows: Arc::default(),
        }
    }

    fn windows(&self) -> parking_lot::MutexGuard<'_, Windows> {
        self.windows.lock()
    }

    /// Takes one slot now.
    ///
    /// # Errors
    /// [`QuotaError::Exhausted`] with the wait.
    pub fn acquire(&self) -> Result<(), QuotaError> {
        self.windows()
            .try_acquire(now_ms(), self.limits)
            .map_err(QuotaError::Exhausted)
    }

    /// Refuses every request for `wait` from now.
    pub fn back_off(&self, wait: Duration) {
        self.windows().back_off(now_ms(), wait);
    }

    /// The limits enforced.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: RateLimits = RateLimits {
        per_minute: Some(4),
        per_day: Some(500),
    };
    /// 2024-05-01T00:00:10Z.
    const T0: u64 = 1_714_521_610_000;

    fn wait(result: Result<(), Denial>) -> (Window, u64) {
        let denial = result.expect_err("a denial");
        (denial.window, denial.retry_after.as_millis() as u64)
    }

    #[test]
    fn four_a_minute_then_the_exact_wait() {
        let mut windows = Windows::default();
        for offset in [0, 1_000, 2_000, 30_000] {
            windows.try_acquire(T0 + offset, PUBLIC).unwrap();
        }
        // At +45 s the oldest (at +0) frees its slot at +60 s.
        assert_eq!(
            wait(windows.try_acquire(T0 + 45_000, PUBLIC)),
            (Window::Minute, 15_000)
        );
        // One millisecond early is still refused; on the dot it passes.
        assert_eq!(
            wait(windows.try_acquire(T0 + 59_999, PUBLIC)),
            (Window::Minute, 1)
        );
        windows.try_acquire(T0 + 60_000, PUBLIC).unwrap();
        // Now the one at +1 s blocks until +61 s.
        assert_eq!(
            wait(windows.try_acquire(T0 + 60_500, PUBLIC)),
            (Window::Minute, 500)
        );
    }

    #[test]
    fn no_burst_across_a_minute_boundary() {
        let mut windows = Windows::default();
        let boundary = T0 - T0 % MINUTE_MS + MINUTE_MS;
        for offset in 0..4 {
            windows
                .try_acquire(boundary - 100 + offset, PUBLIC)
                .unwrap();
        }
        let (window, ms) = wait(windows.try_acquire(boundary + 100, PUBLIC));
        assert_eq!(window, Window::Minute);
        assert_eq!(ms, MINUTE_MS - 200);
    }

    #[test]
    fn the_day_limit_holds_until_midnight_utc() {
        let limits = RateLimits {
            per_minute: None,
            per_day: Some(3),
        };
        let mut windows = Windows::default();
        for offset in 0..3 {
            windows.try_acquire(T0 + offset, limits).unwrap();
        }
        let (window, ms) = wait(windows.try_acquire(T0 + 5_000, limits));
        assert_eq!(window, Window::Day);
        assert_eq!(ms, DAY_MS - 15_000);
        // The next UTC day starts afresh.
        let tomorrow = T0 - T0 % DAY_MS + DAY_MS;
        windows.try_acquire(tomorrow, limits).unwrap();
    }

    #[test]
    fn the_day_wins_over_the_minute_and_refusals_cost_nothing() {
        let limits = RateLimits {
            per_minute: Some(2),
            per_day: Some(2),
        };
        let mut windows = Windows::default();
        windows.try_acquire(T0, limits).unwrap();
        windows.try_acquire(T0 + 1, limits).unwrap();
        for _ in 0..10 {
            assert_eq!(wait(windows.try_acquire(T0 + 2, limits)).0, Window::Day);
        }
        assert_eq!(windows.day_count, 2);
        assert_eq!(windows.minute.len(), 2);
    }

    #[test]
    fn back_off_refuses_everything_and_keeps_the_longer_wait() {
        let mut windows = Windows::default();
        windows.back_off(T0, Duration::from_secs(60));
        windows.back_off(T0, Duration::from_secs(5));
        assert_eq!(
            wait(windows.try_acquire(T0 + 10_000, PUBLIC)),
            (Window::Backoff, 50_000)
        );
        windows.try_acquire(T0 + 60_000, PUBLIC).unwrap();
    }

    #[test]
    fn no_limits_grant_everything() {
        let mut windows = Windows::default();
        let none = RateLimits {
            per_minute: None,
            per_day: None,
        };
        for offset in 0..10_000 {
            windows.try_acquire(T0 + offset, none).unwrap();
        }
        assert!(windows.minute.is_empty());
    }

    #[test]
    fn a_lowered_limit_waits_for_enough_slots_to_free() {
        let mut windows = Windows::default();
        let wide = RateLimits {
            per_minute: Some(4),
            per_day: None,
        };
        for offset in [0, 10_000, 20_000, 30_000] {
            windows.try_acquire(T0 + offset, wide).unwrap();
        }
        let narrow = RateLimits {
            per_minute: Some(2),
            per_day: None,
        };
        // Three of the four must age out for one to pass: the third (+20 s)
        // turns 60 s old at +80 s.
        assert_eq!(
            wait(windows.try_acquire(T0 + 40_000, narrow)),
            (Window::Minute, 40_000)
        );
        windows.try_acquire(T0 + 80_000, narrow).unwrap();
    }
}
