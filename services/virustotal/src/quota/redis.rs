//! The budget counted in Redis, shared by every replica: one atomic Lua
//! script per request (`acquire.lua`, run with `EVALSHA`, loaded on first
//! use and after a Redis restart), another for the back-off
//! (`back_off.lua`).
//!
//! Keys, per API key (named by its [`key_id`](crate::config::key_id), never
//! the key itself); the `{…}` hash tag keeps the three in one Redis Cluster
//! slot, as a script's keys must be:
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `mcp_vt_quota:{<key_id>}:minute` | sorted set | one member per request of the last 60 s, scored by its time (ms) | 60 s after the last request |
//! | `mcp_vt_quota:{<key_id>}:day` | hash | `day` (days since the epoch, UTC), `count` | 1 min after midnight UTC |
//! | `mcp_vt_quota:{<key_id>}:backoff` | string | `429` | when the back-off ends |

use std::time::Duration;

use fred::{clients::Pool, prelude::*, types::scripts::Script};

use super::{Denial, QuotaError, Window};
use crate::config::RateLimits;

/// The acquire script (see the file for its contract).
const ACQUIRE_LUA: &str = include_str!("acquire.lua");
/// The back-off script.
const BACK_OFF_LUA: &str = include_str!("back_off.lua");

/// The three keys of one API key's budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaKeys {
    /// The sorted set of the last minute's requests.
    pub minute: String,
    /// The hash counting the UTC day's requests.
    pub day: String,
    /// The back-off marker.
    pub backoff: String,
}

impl QuotaKeys {
    /// The keys of the key named `key_id`.
    pub fn new(key_id: &str) -> Self {
        Self {
            minute: format!("mcp_vt_quota:{{{key_id}}}:minute"),
            day: format!("mcp_vt_quota:{{{key_id}}}:day"),
            backoff: format!("mcp_vt_quota:{{{key_id}}}:backoff"),
        }
    }
}

/// The shared budget of one API key.
#[derive(Clone)]
pub struct RedisQuota {
    pool: Pool,
    keys: QuotaKeys,
    limits: RateLimits,
    acquire: Script,
    back_off: Script,
}

fn unavailable(error: &fred::error::Error) -> QuotaError {
    QuotaError::Unavailable(format!("redis: {}", error.details()))
}

impl RedisQuota {
    /// The budget of the key named `key_id`, enforcing `limits`, in the
    /// Redis behind `pool`.
    pub fn new(pool: Pool, key_id: &str, limits: RateLimits) -> Self {
        Self {
            pool,
            keys: QuotaKeys::new(key_id),
            limits,
            acquire: Script::from_lua(ACQUIRE_LUA),
            back_off: Script::from_lua(BACK_OFF_LUA),
        }
    }

    /// The Redis keys used.
    pub fn keys(&self) -> &QuotaKeys {
        &self.keys
    }

    /// The limits enforced.
    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// Takes one slot, atomically for the whole fleet.
    ///
    /// # Errors
    /// [`QuotaError::Exhausted`] with the exact wait, or
    /// [`QuotaError::Unavailable`] when Redis does not answer within
    /// `REDIS_COMMAND_TIMEOUT_MS`.
    pub async fn acquire(&self) -> Result<(), QuotaError> {
        let member = uuid::Uuid::new_v4().simple().to_string();
        let reply: Vec<Value> = self
            .acquire
            .evalsha_with_reload(
                self.pool.next(),
                vec![
                    self.keys.minute.clone(),
                    self.keys.day.clone(),
                    self.keys.backoff.clone(),
                ],
                vec![
                    self.limits.per_minute.unwrap_or(0).to_string(),
                    self.limits.per_day.unwrap_or(0).to_string(),
                    member,
                ],
            )
            .await
            .map_err(|error| unavailable(&error))?;
        parse_reply(&reply)
    }

    /// Pauses every replica's requests for `wait` (a longer running pause
    /// is kept).
    ///
    /// # Errors
    /// [`QuotaError::Unavailable`] when Redis does not answer.
    pub async fn back_off(&self, wait: Duration) -> Result<(), QuotaError> {
        let _: i64 = self
            .back_off
            .evalsha_with_reload(
                self.pool.next(),
                vec![self.keys.backoff.clone()],
                vec![(wait.as_millis() as u64).max(1).to_string()],
            )
            .await
            .map_err(|error| unavailable(&error))?;
        Ok(())
    }
}

/// Reads `{granted, window, wait_ms}`.
fn parse_reply(reply: &[Value]) -> Result<(), QuotaError> {
    let malformed = || QuotaError::Unavailable(format!("redis: unexpected quota reply {reply:?}"));
    let [granted, window, wait] = reply else {
        return Err(malformed());
    };
    if granted.as_i64() == Some(1) {
        return Ok(());
    }
    let window = match window.as_str().as_deref() {
        Some("minute") => Window::Minute,
        Some("day") => Window::Day,
        Some("backoff") => Window::Backoff,
        _ => return Err(malformed()),
    };
    let wait = wait.as_i64().ok_or_else(malformed)?.max(1) as u64;
    Err(QuotaError::Exhausted(Denial {
        window,
        retry_after: Duration::from_millis(wait),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_cluster_slot_and_hide_the_key() {
        let keys = QuotaKeys::new("0a1b2c3d4e5f");
        assert_eq!(keys.minute, "mcp_vt_quota:{0a1b2c3d4e5f}:minute");
        assert_eq!(keys.day, "mcp_vt_quota:{0a1b2c3d4e5f}:day");
        assert_eq!(keys.backoff, "mcp_vt_quota:{0a1b2c3d4e5f}:backoff");
    }

    #[test]
    fn replies_are_read() {
        assert_eq!(
            parse_reply(&[Value::Integer(1), Value::from("ok"), Value::Integer(0)]),
            Ok(())
        );
        assert_eq!(
            parse_reply(&[
                Value::Integer(0),
                Value::from("minute"),
                Value::Integer(15_250)
            ]),
            Err(QuotaError::Exhausted(Denial {
                window: Window::Minute,
                retry_after: Duration::from_millis(15_250),
            }))
        );
        assert!(matches!(
            parse_reply(&[Value::Integer(0)]),
            Err(QuotaError::Unavailable(_))
        ));
    }
}
