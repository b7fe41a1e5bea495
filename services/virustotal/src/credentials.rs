//! Whether the API accepts the key, as this replica last heard: a `401`
//! (`WrongCredentialsError`, `UserNotActiveError`,
//! `AuthenticationRequiredError`) is a configuration problem, shown on
//! `/readyz` (check `virustotal_api_key`) so that an operator sees it.
//!
//! The check fails from a `401` until the API accepts a request again, or
//! for at most [`REJECTION_HOLD`]: a replica out of the load balancer gets
//! no calls that could clear it, so after the hold it is ready again and the
//! next call tests the key anew. Probes never call the API, so they cost no
//! quota.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Longest time a `401` keeps `/readyz` failing without a new answer.
pub const REJECTION_HOLD: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
struct Rejection {
    code: String,
    message: String,
    at: Instant,
}

/// The key's last known standing.
#[derive(Debug, Default)]
pub struct Credentials {
    rejection: Mutex<Option<Rejection>>,
}

impl Credentials {
    fn state(&self) -> parking_lot::MutexGuard<'_, Option<Rejection>> {
        self.rejection.lock()
    }

    /// The API refused the key with `code` and `message`.
    pub fn rejected(&self, code: &str, message: &str) {
        *self.state() = Some(Rejection {
            code: code.to_owned(),
            message: message.chars().take(200).collect(),
            at: Instant::now(),
        });
    }

    /// The API accepted a request (any answer but a `401`).
    pub fn accepted(&self) {
        *self.state() = None;
    }

    /// The readiness check.
    ///
    /// # Errors
    /// The operator's message while a `401` holds.
    pub fn check(&self) -> Result<(), String> {
        let mut state = self.state();
        match state.as_ref() {
            Some(rejection) if rejection.at.elapsed() < REJECTION_HOLD => Err(format!(
                "VirusTotal rejected VIRUSTOTAL_API_KEY {} s ago with 401 {}: {}. Set a valid, \
                 activated key (Secret virustotal-secrets) and restart the pods",
                rejection.at.elapsed().as_secs(),
                rejection.code,
                rejection.message
            )),
            Some(_) => {
                *state = None;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_fails_the_check_until_accepted() {
        let credentials = Credentials::default();
        assert!(credentials.check().is_ok());
        credentials.rejected("WrongCredentialsError", "Wrong API key");
        let message = credentials.check().unwrap_err();
        assert!(message.contains("WrongCredentialsError"), "{message}");
        assert!(message.contains("VIRUSTOTAL_API_KEY"), "{message}");
        credentials.accepted();
        assert!(credentials.check().is_ok());
    }
}
