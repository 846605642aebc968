//! What this binary is: its version and the commit it was built from (`build.rs`), for
//! `confab --version` and the `confab_build_info` metric.

/// The package's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit (`git rev-parse --short=12 HEAD` at build time, the `CONFAB_COMMIT` build
/// argument, or `unknown`).
pub const COMMIT: &str = env!("BUILD_COMMIT");

/// What `confab --version` prints after the name: `0.1.0 (commit 1a2b3c4d5e6f)`.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BUILD_COMMIT"),
    ")"
);
