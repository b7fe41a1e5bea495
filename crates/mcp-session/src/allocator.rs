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
//! jemalloc runs with its default options but for the background thread,
//! smaller thread caches (8 to 16 objects per small size class instead of
//! 20 to 200) and larger slabs above 4 KiB (below), compiled in by `.cargo/config.toml`
//! (`JEMALLOC_SYS_WITH_MALLOC_CONF`, which `tikv-jemalloc-sys` passes to
//! jemalloc's `--with-malloc-conf`; a crate outside this workspace that
//! uses `mcp-session` sets it in its own). A thread cache keeps freed
//! objects for its thread's next allocations, up to 200 per size class by
//! default, and is trimmed only as its thread allocates again: an idle
//! replica's worker threads do not, so what their caches held at the end
//! of a burst kept slabs that were otherwise free. With thread caches off,
//! a release build came back to within 5% of its start after 3,000
//! sessions expired (against +13% to +22%); with 8 to 16 objects per size
//! class, +6.2% to +6.7%, for 1-3% more instructions on a session start and
//! a stateless call (`scripts/callgrind.sh`: 249k to 252k and 175k to 180k
//! on the memory store) and none on a tool call.
//!
//! Slabs: jemalloc carves the objects of a small size class (up to 14 KiB)
//! from slabs of one to a few pages. Larger slabs for every small class
//! (`slab_sizes:1-14336:8`) made a session start 10k instructions cheaper
//! (`scripts/callgrind.sh`: a growing heap fetches a new slab every few
//! allocations) but kept more memory once sessions ended, since a slab goes
//! back only when all its objects are free and the small classes mix
//! long-lived objects with a session's: a release build of the calculator
//! stayed 26% to 32% above its start after 3,000 sessions expired (4-page
//! slabs: 18% to 26%; the default: 11% to 17%; the target is 20%). The
//! classes above 4 KiB are another matter: an object there is mostly a
//! block of a session worker's channels (tokio allocates 32 slots at a
//! time; rmcp opens six channels per session) or a connection's buffer,
//! and their default slabs hold one to four objects, so nearly every one of
//! them fetched a slab. Those classes get 16-page slabs (compiled in with
//! the thread caches): a session start 295k to 278k instructions on Redis,
//! and the release build came back to +5.7% to +7.6% of its start after
//! expiry (`cargo test --release -p calculator --test memory`; figures in
//! `docs/benchmarks.md`).
//!
//! Operators may tune jemalloc at start-up with the environment variable
//! `_RJEM_MALLOC_CONF` (jemalloc's `MALLOC_CONF` under the prefix of the
//! `tikv-jemallocator` build), e.g. `_RJEM_MALLOC_CONF=dirty_decay_ms:2000`.
//! The feature `mimalloc` swaps jemalloc for mimalloc (for comparisons).
//!
//! Built with the feature `heap-stats`, `GET /metrics` shows jemalloc's own
//! figures as `mcp_heap_bytes` ([`heap`]): what the application holds
//! against what the allocator keeps resident tells fragmentation and pages
//! not yet purged from memory the replica still uses. The statistics cost
//! about 1% more instructions per request (`scripts/callgrind.sh`: a
//! session start 248k to 251k, a tool call 162k to 163k), so the default
//! build leaves them out.

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

/// jemalloc's statistics now (refreshed: `epoch` advanced), or `None`
/// without the feature `heap-stats`, under another allocator, or if
/// jemalloc cannot tell (logged at debug).
pub(crate) fn heap() -> Option<crate::metrics::HeapBytes> {
    #[cfg(all(feature = "heap-stats", not(feature = "mimalloc")))]
    {
        use tikv_jemalloc_ctl::{epoch, stats};
        let read = || -> Result<crate::metrics::HeapBytes, tikv_jemalloc_ctl::Error> {
            epoch::advance()?;
            Ok(crate::metrics::HeapBytes {
                allocated: stats::allocated::read()? as u64,
                active: stats::active::read()? as u64,
                resident: stats::resident::read()? as u64,
                retained: stats::retained::read()? as u64,
            })
        };
        match read() {
            Ok(heap) => Some(heap),
            Err(error) => {
                tracing::debug!(%error, "jemalloc's statistics are unavailable");
                None
            }
        }
    }
    #[cfg(not(all(feature = "heap-stats", not(feature = "mimalloc"))))]
    None
}

#[cfg(all(test, feature = "jemalloc", not(feature = "mimalloc")))]
mod options {
    use tikv_jemalloc_ctl::{Access, AsName};

    /// The thread caches `.cargo/config.toml` compiles in are the ones
    /// jemalloc runs with (when `_RJEM_MALLOC_CONF` does not set others).
    #[test]
    fn jemalloc_runs_with_small_thread_caches() {
        if std::env::var_os("_RJEM_MALLOC_CONF").is_some() {
            return;
        }
        let option =
            |name: &'static [u8]| -> u32 { name.name().read().expect("a jemalloc option") };
        assert_eq!(
            (
                option(b"opt.tcache_nslots_small_min\0"),
                option(b"opt.tcache_nslots_small_max\0"),
            ),
            (8, 16)
        );
    }

    /// The slabs `.cargo/config.toml` compiles in: 16 pages for every small
    /// size class above 4 KiB, jemalloc's default (under 16 pages) below.
    #[test]
    fn jemalloc_runs_with_large_slabs_above_4_kib() {
        if std::env::var_os("_RJEM_MALLOC_CONF").is_some() {
            return;
        }
        const PAGE: usize = 4096;
        let name = |name: String| format!("{name}\0");
        let bins: u32 = name("arenas.nbins".to_owned())
            .as_bytes()
            .name()
            .read()
            .expect("jemalloc's count of size classes");
        let size = |bin: u32, field: &str| -> usize {
            name(format!("arenas.bin.{bin}.{field}"))
                .as_bytes()
                .name()
                .read()
                .expect("a size class's figure")
        };
        let slabs: Vec<(usize, usize)> = (0..bins)
            .map(|bin| (size(bin, "size"), size(bin, "slab_size")))
            .collect();
        assert!(slabs.iter().any(|&(size, _)| size > PAGE), "{slabs:?}");
        for &(size, slab) in &slabs {
            if size > PAGE {
                assert_eq!(slab, 16 * PAGE, "size class {size}: {slabs:?}");
            } else {
                assert!(slab < 16 * PAGE, "size class {size}: {slabs:?}");
            }
        }
    }
}

#[cfg(all(test, feature = "heap-stats", not(feature = "mimalloc")))]
mod tests {
    #[test]
    fn the_heap_figures_follow_an_allocation() {
        const BLOCK: usize = 16 << 20;
        let before = super::heap().expect("jemalloc's statistics");
        let block = std::hint::black_box(vec![1u8; BLOCK]);
        let during = super::heap().expect("jemalloc's statistics");
        // Other tests allocate meanwhile: a margin of 4 MiB.
        assert!(
            during.allocated + (4 << 20) >= before.allocated + BLOCK as u64,
            "{before:?} then {during:?}"
        );
        assert!(during.active >= during.allocated, "{during:?}");
        assert!(during.resident >= during.active, "{during:?}");
        drop(block);
        let after = super::heap().expect("jemalloc's statistics");
        assert!(
            after.allocated + BLOCK as u64 <= during.allocated + (4 << 20),
            "{during:?} then {after:?}"
        );
    }
}
