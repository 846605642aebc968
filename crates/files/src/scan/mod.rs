//! Virus scanning: the [`Scanner`] port and its adapter over ClamAV's `clamd` ([`Clamd`]).

mod clamd;

use async_trait::async_trait;
use confab_blob::ByteStream;

pub use clamd::{Clamd, ClamdAddress};

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    Clean,
    /// A signature matched; its name (e.g. `Eicar-Signature`).
    Infected(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The scanner could not be reached or did not answer in time: try again later.
    #[error("the virus scanner is unavailable: {0}")]
    Unavailable(String),
    /// The body is longer than the scanner accepts.
    #[error("the file is larger than the virus scanner's limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The scanner answered with an error about this file (not a verdict).
    #[error("the virus scanner failed: {0}")]
    Failed(String),
}

/// Scans bodies for viruses.
#[async_trait]
pub trait Scanner: Send + Sync + std::fmt::Debug {
    /// Scans the whole body.
    async fn scan(&self, body: ByteStream) -> Result<ScanVerdict, ScanError>;

    /// Whether the scanner answers.
    async fn ping(&self) -> Result<(), ScanError>;

    /// The longest body the scanner takes, in bytes.
    fn max_bytes(&self) -> u64;

    /// Where the scanner is, for logs and the admin view.
    fn address(&self) -> String;
}
