//! Keeping freed memory in the process, so that the next feature map of the same size costs no
//! page faults.
//!
//! glibc's malloc serves every block above its mmap threshold (at most 32 MB) with a fresh
//! `mmap` and gives it back with `munmap` on free. A 512² × 64 feature map is 64 MB, so every
//! layer of a CSGIS-Net forward used to fault in and zero 16 384 fresh pages: `perf` put 38 %
//! of a 512² forward in the kernel's `clear_page_erms` and another 8 % in the fault path
//! (bench/RESULTS.md, "Freed memory kept"). [`keep_freed_memory`] turns mmap off for malloc and
//! stops it trimming the heap, so freed maps are reused in place.

/// Makes glibc's malloc serve large blocks from its heap and keep freed memory (no `mmap`
/// per block, no trimming). The peak resident size is the same or a little higher; it no
/// longer falls between layers. Call once at start-up, before other threads allocate. Does
/// nothing on other C libraries, or when the environment sets `CSGIS_KEEP_FREED_MEMORY=0`
/// (for A/B benchmarks).
pub fn keep_freed_memory() {
    if std::env::var("CSGIS_KEEP_FREED_MEMORY").is_ok_and(|v| v == "0") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes malloc's tuning parameters; it is called before the
        // program starts its worker threads, as glibc asks.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        }
    }
}
