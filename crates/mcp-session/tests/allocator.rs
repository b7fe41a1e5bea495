//! The services' allocator runs with the workspace's compiled-in options
//! (`.cargo/config.toml`, `JEMALLOC_SYS_WITH_MALLOC_CONF`): a build that
//! lost them (another build environment, a Dockerfile that skips the file)
//! would quietly pay about 11k more instructions per session start
//! (`crates/mcp-session/src/allocator.rs`).
#![cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]

// The library's global allocator (jemalloc) is linked with it.
use mcp_session as _;

/// The options are compiled in, and every small size class has slabs of 8
/// pages, as jemalloc's JSON statistics (`malloc_stats_print` with `J`)
/// report them, except where a slab of 8 pages could not hold the class
/// (larger than 8 pages: never, the largest small class is 14 KiB) or
/// would hold more than 512 objects (jemalloc's bitmap of a slab): those
/// get the nearest size allowed.
#[test]
fn small_size_classes_have_slabs_of_up_to_eight_pages() {
    let conf = tikv_jemalloc_ctl::config::malloc_conf::read().expect("config.malloc_conf");
    assert!(
        conf.trim_end_matches('\0')
            .split(',')
            .any(|option| option == "slab_sizes:1-14336:8"),
        "{conf}"
    );
    let mut json = Vec::new();
    let mut options = tikv_jemalloc_ctl::stats_print::Options::default();
    options.json_format = true;
    options.skip_merged_arenas = true;
    options.skip_per_arena = true;
    options.skip_mutex_statistics = true;
    tikv_jemalloc_ctl::stats_print::stats_print(&mut json, options).expect("jemalloc's statistics");
    let stats: serde_json::Value = serde_json::from_slice(&json).expect("JSON statistics");
    let arenas = &stats["jemalloc"]["arenas"];
    let page = arenas["page"].as_u64().expect("arenas.page");
    let bins = arenas["bin"].as_array().expect("arenas.bin");
    assert!(!bins.is_empty(), "no size classes in {arenas}");
    for bin in bins {
        let size = bin["size"].as_u64().expect("size");
        let fewest = size.div_ceil(page);
        let most = (512 * size / page).max(fewest);
        let pages = 8u64.clamp(fewest, most);
        assert_eq!(bin["slab_size"].as_u64(), Some(pages * page), "{bin}");
    }
}
