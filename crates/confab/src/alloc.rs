//! The process's allocator: mimalloc, set to give freed memory back to the system at once.
//!
//! mimalloc makes the many small allocations of request handling markedly cheaper than glibc's
//! allocator (measured: 22 % more non-streamed and 50 % more streamed requests per second
//! through the gateway, bench/RESULTS.md). Left at its defaults it keeps freed pages until
//! later allocations on the same thread purge them, which an idle server never makes, and it
//! commits its first arena eagerly: idle RSS about 49 MB instead of 25 MB. The two options
//! below trade about 5 % of peak throughput for that memory. An operator can still override
//! them with mimalloc's own `MIMALLOC_PURGE_DELAY` and `MIMALLOC_ARENA_EAGER_COMMIT`.
//!
//! The only unsafe code in the workspace: two calls into mimalloc's C API.
#![expect(unsafe_code, reason = "mimalloc's option API is C")]

use libmimalloc_sys::mi_option_t;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Indices in mimalloc v3's `mi_option_e` (include/mimalloc.h of the bundled sources); the
// Rust bindings do not name these two.
const ARENA_EAGER_COMMIT: mi_option_t = 4;
const PURGE_DELAY: mi_option_t = 15;

/// Applies the memory settings above, unless the environment sets them. Call first in `main`.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an option by its valid index; mimalloc synchronises option access.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
    }
    if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
        // SAFETY: as above.
        unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_options_are_the_ones_meant() {
        // The indices must name these options in the bundled mimalloc: its option table
        // prints name and value; a changed enum would show another name at that index.
        // SAFETY: reads options by valid index.
        let (commit, purge) = unsafe {
            (
                libmimalloc_sys::mi_option_get(super::ARENA_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(super::PURGE_DELAY),
            )
        };
        // mimalloc v3's defaults: eager commit 2 (on overcommit systems), purge delay 1000 ms.
        assert_eq!((commit, purge), (2, 1000));
    }
}
