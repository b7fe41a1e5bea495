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
//! One option differs from jemalloc's defaults, compiled in by the
//! workspace's `.cargo/config.toml` (`JEMALLOC_SYS_WITH_MALLOC_CONF`, which
//! tikv-jemalloc-sys's build passes to jemalloc's `--with-malloc-conf`): every
//! small size class (up to 14 KiB) gets slabs of 8 pages (32 KiB; the
//! smallest classes fewer, as a slab holds at most 512 objects). A
//! session start allocates a few hundred small objects that outlive it (its
//! worker's channels, futures and buffers); with the default slabs (one to
//! a few pages) a growing heap fetched a new slab, an extent of jemalloc's
//! page allocator, every few of them: 21k instructions per session start
//! of about 250k (`scripts/callgrind.sh`; 8-page slabs: 11k fewer, 16-page
//! ones 17k fewer). Larger slabs could keep more memory after sessions
//! end (a slab goes back only when all its objects are free): with 8 pages
//! a replica kept 1.0 KiB per idle session, with 16 pages 2.5 KiB, with
//! the default 1.4 KiB (`scripts/session-memory.sh 2000`,
//! `calculator-idle`); figures in `docs/benchmarks.md`.
//!
//! Operators may tune jemalloc at start-up with the environment variable
//! `_RJEM_MALLOC_CONF` (jemalloc's `MALLOC_CONF` under the prefix of the
//! `tikv-jemallocator` build), e.g. `_RJEM_MALLOC_CONF=dirty_decay_ms:2000`;
//! it is read after the compiled-in options, so it overrides them.
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
