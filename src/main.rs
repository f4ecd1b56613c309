// mimalloc: analysis allocates millions of small objects from several rayon
// threads; glibc's per-thread arenas grow by mprotect and page faults that
// cost about a quarter of an analysis at 100k goroutines.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    // From the mimalloc library that the `mimalloc` crate links in.
    fn mi_option_set(option: std::os::raw::c_int, value: std::os::raw::c_long);
}
/// `mi_option_purge_delay` (same position in mimalloc v2 and v3).
const MI_OPTION_PURGE_DELAY: std::os::raw::c_int = 15;

fn main() {
    // SAFETY: sets a mimalloc option (plain integers), before any thread.
    unsafe {
        // Give freed memory back at once: peak RSS is a target of its own
        // (at most twice the snapshot's uncompressed size).
        mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
    std::process::exit(gospy::cli::main());
}
