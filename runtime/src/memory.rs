//! Process-wide memory settings for small devices.

/// The largest state cache ([`crate::JobConfig::state_cache_bytes`]) a job
/// accepts: 1 TiB, or a quarter of the address space on 32-bit targets.
/// A table grows up to a size computed from it (see
/// `state::table::Table::new`), so this bound keeps that size's
/// arithmetic far from overflowing for every accepted value.
pub const MAX_STATE_CACHE_BYTES: usize =
    if (usize::MAX as u64) / 4 < 1u64 << 40 { usize::MAX / 4 } else { (1u64 << 40) as usize };

/// Caps glibc's malloc at two arenas. Call it first thing in `main`.
///
/// glibc gives threads that meet contention arenas of their own (up to
/// eight per core) and hands little of a freed arena back to the system.
/// With fjall's worker, the operator threads and tokio, that keeps tens of
/// MiB of freed memory resident once state spills at a million keys; two
/// arenas cost no measurable CPU time. A no-op where the C library is not
/// glibc.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)] // the engine's one unsafe block, justified below
    // SAFETY: `mallopt` only sets a parameter of the allocator, which glibc
    // guards with its own lock; no Rust memory is involved.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
