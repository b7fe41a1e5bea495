//! The heap allocator of every service, and how it gives memory back.
//!
//! A replica's heap swings with its load: each session in use has an rmcp
//! worker (tens of KiB), dropped once the session is idle
//! (`SESSION_WORKER_IDLE_SECONDS`), among a few long-lived KiB per session
//! (its cached record, its answers kept for `Last-Event-ID`). glibc's malloc
//! and mimalloc both kept the freed workers' memory: after 3,000 sessions
//! went idle, then expired, a calculator replica stayed 70 MB above its
//! start until new load came (mimalloc returns a page only when a thread
//! that owns it allocates again, and an idle replica's threads do not).
//! jemalloc with its background thread purges freed pages on a timer
//! (`dirty_decay_ms`, 10 s by default) whatever the application threads do,
//! and the same replica came back to its start. glibc's malloc was also a
//! tenth of the CPU time of a Redis-backed replica under load
//! (fragmentation), which jemalloc avoids as mimalloc did. Figures:
//! `docs/benchmarks.md`, section "Memory".
//!
//! jemalloc runs with its default options but for the background thread.
//! Larger slabs for the small size classes (`slab_sizes:1-14336:8`) made a
//! session start 10k instructions cheaper (`scripts/callgrind.sh`: a
//! growing heap fetches a new slab every few allocations) but kept more
//! memory once sessions ended, since a slab goes back only when all its
//! objects are free: a release build of the calculator stayed 26% to 32%
//! above its start after 3,000 sessions expired (4-page slabs: 18% to 26%;
//! the default: 11% to 17%; the target is 20%), which is why the default
//! stays (`cargo test --release -p calculator --test memory`; figures in
//! `docs/benchmarks.md`).
//!
//! Operators may tune jemalloc at start-up with the environment variable
//! `_RJEM_MALLOC_CONF` (jemalloc's `MALLOC_CONF` under the prefix of the
//! `tikv-jemallocator` build), e.g. `_RJEM_MALLOC_CONF=dirty_decay_ms:2000`.
//! The feature `mimalloc` swaps jemalloc for mimalloc (for comparisons).

#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Starts jemalloc's background thread, which gives freed memory back to
/// the system on its own schedule (see the module docs); does nothing with
/// another allocator. A failure is logged: the service runs on, keeping
/// freed memory until its threads allocate again.
pub(crate) fn give_memory_back() {
    #[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(%error, "jemalloc's background thread did not start: freed memory returns to the system only under load");
    }
}
