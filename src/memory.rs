//! Keeping freed memory in the process, so that the next feature map of the same size costs no
//! page faults.
//!
//! glibc's malloc serves every block above its mmap threshold (at most 32 MB) with a fresh
//! `mmap` and gives it back with `munmap` on free, so each large feature map is faulted in and
//! zeroed by the kernel page by page. [`keep_freed_memory`] turns mmap off for malloc and stops
//! it trimming the heap, so freed maps are reused in place. Measured on CSGIS-Net and
//! csgis-lite inference (bench/RESULTS.md, "Direct 3×3 convolution"): 1.31 → 1.18 s at 256²,
//! 6.09 → 5.48 s at 512², 0.52 → 0.37 s for lite at 1024², peak 638 → 694 MB.

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
