//! The API key's request budget, shared by every replica.
//!
//! VirusTotal counts requests per key, whichever replica sends them, so the
//! budget is counted where all replicas see it: in Redis ([`redis`]), by one
//! atomic Lua script. Without `REDIS_URL` there is one replica, and the same
//! rules run in process ([`local`]).
//!
//! The rules, for every API request (retries included):
//!
//! 1. while a fleet-wide **back-off** is set (the API answered `429`), no
//!    request goes out; the wait is what remains of it;
//! 2. **per day**: at most `VIRUSTOTAL_RATE_LIMIT_PER_DAY` requests per UTC
//!    day (VirusTotal resets daily quotas at 00:00 UTC); the wait is the
//!    time to the next midnight UTC;
//! 3. **per minute**: at most `VIRUSTOTAL_RATE_LIMIT_PER_MINUTE` requests in
//!    any 60 s (a sliding log of request times, so no burst straddles a
//!    minute boundary); the wait is the time until the oldest request in
//!    the window is 60 s old, which frees a slot.
//!
//! A request is counted when it is granted, before it is sent: a slot once
//! taken is spent, whatever the answer (VirusTotal counts failed requests
//! too). Times come from one clock for the whole fleet (Redis `TIME`), so
//! replicas with skewed clocks agree.

pub mod local;
pub mod redis;

use std::time::Duration;

use crate::config::RateLimits;

pub use local::LocalQuota;
pub use redis::RedisQuota;

/// One minute, the sliding window, in milliseconds.
pub const MINUTE_MS: u64 = 60_000;
/// One day, in milliseconds.
pub const DAY_MS: u64 = 86_400_000;

/// Which rule refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The per-minute limit.
    Minute,
    /// The per-day limit.
    Day,
    /// The fleet-wide back-off after a `429` from the API.
    Backoff,
}

impl Window {
    /// `minute`, `day` or `backoff`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Day => "day",
            Self::Backoff => "backoff",
        }
    }
}

/// A refused request: which rule, and how long until a request can pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    /// The rule that refused it.
    pub window: Window,
    /// Time until that rule lets a request through (exact to the
    /// millisecond, for the fleet's clock).
    pub retry_after: Duration,
}

impl Denial {
    /// [`retry_after`](Self::retry_after) in whole seconds, rounded up, at
    /// least 1: what a caller should wait.
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after.as_millis().div_ceil(1000).max(1) as u64
    }
}

/// Why a request may not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// The budget is spent for now.
    #[error("the {} budget is spent; retry in {} s", .0.window.as_str(), .0.retry_after_seconds())]
    Exhausted(Denial),
    /// The shared budget cannot be checked (Redis is unreachable); no
    /// request is sent, so the key's quota is never overrun.
    #[error("the shared quota cannot be checked: {0}")]
    Unavailable(String),
}

/// The budget of one API key: in process, or shared through Redis.
#[derive(Clone)]
pub enum Quota {
    /// One replica: counted in this process.
    Local(LocalQuota),
    /// Every replica: counted in Redis.
    Redis(RedisQuota),
}

impl Quota {
    /// Takes one request slot, or says why not.
    ///
    /// # Errors
    /// [`QuotaError::Exhausted`] with the wait, or
    /// [`QuotaError::Unavailable`] when Redis does not answer.
    pub async fn acquire(&self) -> Result<(), QuotaError> {
        match self {
            Self::Local(quota) => quota.acquire(),
            Self::Redis(quota) => quota.acquire().await,
        }
    }

    /// Stops every replica from sending requests for `wait` (after a `429`).
    ///
    /// # Errors
    /// [`QuotaError::Unavailable`] when Redis does not answer.
    pub async fn back_off(&self, wait: Duration) -> Result<(), QuotaError> {
        match self {
            Self::Local(quota) => {
                quota.back_off(wait);
                Ok(())
            }
            Self::Redis(quota) => quota.back_off(wait).await,
        }
    }

    /// `memory` or `redis`, for logs and docs.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Local(_) => "memory",
            Self::Redis(_) => "redis",
        }
    }

    /// The limits enforced.
    pub fn limits(&self) -> RateLimits {
        match self {
            Self::Local(quota) => quota.limits(),
            Self::Redis(quota) => quota.limits(),
        }
    }
}

/// Milliseconds until the next 00:00 UTC after `now_ms` (Unix time in ms).
pub fn until_next_utc_day(now_ms: u64) -> u64 {
    DAY_MS - now_ms % DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_round_up_to_whole_seconds() {
        let denial = |ms| Denial {
            window: Window::Minute,
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(denial(0).retry_after_seconds(), 1);
        assert_eq!(denial(1).retry_after_seconds(), 1);
        assert_eq!(denial(1000).retry_after_seconds(), 1);
        assert_eq!(denial(1001).retry_after_seconds(), 2);
        assert_eq!(denial(59_999).retry_after_seconds(), 60);
    }

    #[test]
    fn the_day_ends_at_midnight_utc() {
        // 2024-05-01T23:59:59.500Z
        let now = 1_714_607_999_500;
        assert_eq!(until_next_utc_day(now), 500);
        assert_eq!(until_next_utc_day(1_714_521_600_000), DAY_MS);
    }
}
