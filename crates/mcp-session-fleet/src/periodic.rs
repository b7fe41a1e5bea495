//! Housekeeping on a timer, for as long as what it keeps lives.
//!
//! Several parts of a replica hold entries that expire (the session cache,
//! the event buffer) and must drop them even when no request comes to do it,
//! or an idle replica would keep what it served long ago. Each runs its
//! clean-up through [`while_alive`], which holds only a weak reference: the
//! task ends with the last owner of what it cleans.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

/// Calls `work` with the value behind `owner` every `period` (a missed tick
/// waits for the next one, no burst), until the value is dropped.
///
/// # Panics
/// If `period` is zero (as `tokio::time::interval`).
pub(crate) async fn while_alive<T>(
    owner: Weak<T>,
    period: Duration,
    mut work: impl FnMut(&Arc<T>),
) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(owner) = owner.upgrade() else {
            return;
        };
        work(&owner);
    }
}
