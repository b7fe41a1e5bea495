//! When a table that a burst of sessions grew gives its memory back.
//!
//! Rust's hash maps, sets and `VecDeque`s never shrink by themselves: after
//! thousands of sessions came and went, a replica would keep each table at
//! its largest size (heaptrack, 3,000 sessions: 266 KB in the event
//! buffer's map, 100 KB in the sets of sessions being restored). The tables
//! that hold one entry per session or stream ask [`target`] after they
//! remove entries, and shrink to what it answers.

/// Below this many slots a table is left as it is.
const SMALLEST: usize = 64;

/// The capacity a table of `len` entries in `capacity` slots should shrink
/// to, or `None` to keep it: it shrinks once at most a quarter used, to
/// twice its entries. Halving the unused space each time keeps shrinking
/// amortized: a table shrinks again only after it emptied by another factor
/// of four.
pub(crate) fn target(len: usize, capacity: usize) -> Option<usize> {
    (capacity > SMALLEST && len < capacity / 4).then_some(len * 2)
}

#[cfg(test)]
mod tests {
    use super::target;

    #[test]
    fn a_table_shrinks_once_a_quarter_used_and_small_ones_never() {
        assert_eq!(target(1000, 4096), Some(2000));
        assert_eq!(target(1024, 4096), None);
        assert_eq!(target(0, 64), None);
        assert_eq!(target(0, 128), Some(0));
    }
}
