// mimalloc: analysis allocates millions of small objects from several rayon
// threads; glibc's per-thread arenas grow by mprotect and page faults that
// cost about a quarter of an analysis at 100k goroutines. (Analyses also
// tune it: `cli::analysis_memory_mode`.)
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(gospy::cli::main());
}
