//! What this binary is: its version and the commit it was built from (`build.rs`), for
//! `confab --version` and the `confab_build_info` metric.

/// The version: the `BUILD_VERSION` the build was given (the Dockerfile's `VERSION`), else the
/// package's.
pub const VERSION: &str = env!("BUILD_INFO_VERSION");

/// The commit, 12 hex digits: the `GIT_COMMIT` the build was given (the Dockerfile's
/// `COMMIT`), else `git rev-parse HEAD` of the checkout, else `unknown`.
pub const COMMIT: &str = env!("BUILD_INFO_COMMIT");

/// What `confab --version` prints after the name: `0.1.0 (commit 1a2b3c4d5e6f)`.
pub const VERSION_LINE: &str = concat!(
    env!("BUILD_INFO_VERSION"),
    " (commit ",
    env!("BUILD_INFO_COMMIT"),
    ")"
);
