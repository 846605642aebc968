//! The local model store: GGUF files in the models directory. Pulls download into a
//! `.partial` file (resumed with an HTTP range request when interrupted), check the GGUF
//! magic and the sha256, and appear under their final name only by an atomic rename, so a
//! half file is never listed. Downloads pass the SSRF guard (`crate::ssrf`), time out when
//! stalled and stop at `inference.pull_max_bytes`. Listings keep each file's metadata and
//! read a GGUF header again only when the file's size or modification time changed.
//!
//! Long (about 670 lines, 60 of them tests) because the store, its pulls from every kind of source
//! and the listing cache share one notion of a model file; the pull sources are the next cut.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use confab_core::config::InferenceConfig;
use confab_core::ssrf::{FetchPolicy, Refusal};
use futures::StreamExt;
use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utoipa::ToSchema;

const PARTIAL_DIR: &str = ".partial";
const GGUF_MAGIC: &[u8; 4] = b"GGUF";
/// The settings named in refusals, so the operator knows what to change.
const ALLOW_PRIVATE_SETTING: &str = "inference.pull_allow_private";
const ALLOW_HTTP_SETTING: &str = "inference.pull_allow_http";

#[derive(Debug, thiserror::Error)]
pub enum ModelStoreError {
    #[error("no local model named `{0}`")]
    NotFound(String),
    #[error(
        "`{0}` is not a model source: give an https URL, a Hugging Face org/repo/file.gguf, \
         or a .gguf path (through the API only inside inference.import_dir)"
    )]
    BadSource(String),
    /// The SSRF guard refused the URL, a redirect hop or the address a name resolved to.
    #[error("the pull target is refused: {0}")]
    Forbidden(#[from] Refusal),
    /// A server-local path given through the API while no import directory is configured.
    #[error(
        "`{0}` is a local path: the API imports files only from the directory set in \
         inference.import_dir (unset); on the server, `confab models pull <path>` imports any file"
    )]
    LocalPath(String),
    /// A path outside the import directory, missing, or no regular file; one answer for all
    /// three, so the API tells nothing about files outside the directory.
    #[error("`{0}` is not a regular file inside the import directory (inference.import_dir)")]
    NotImportable(String),
    #[error("the model is larger than the pull limit of {limit} bytes (inference.pull_max_bytes)")]
    TooLarge { limit: u64 },
    #[error("the download failed: {0}")]
    Download(String),
    #[error("sha256 mismatch: expected {expected}, got {actual}; the download was discarded")]
    Checksum { expected: String, actual: String },
    #[error("{0} is not a GGUF file")]
    NotGguf(String),
    #[error("model store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("model store setup: {0}")]
    Setup(String),
}

impl ModelStoreError {
    /// Whether pulling again cannot help (the source or the file is wrong, not the network).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ModelStoreError::BadSource(_)
                | ModelStoreError::Forbidden(_)
                | ModelStoreError::LocalPath(_)
                | ModelStoreError::NotImportable(_)
                | ModelStoreError::TooLarge { .. }
        )
    }
}

/// How pulls fetch: the SSRF rule, the size cap, timeouts and the import directory.
#[derive(Debug, Clone)]
pub struct PullSettings {
    pub policy: FetchPolicy,
    pub max_bytes: u64,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Where the API may import local files from; `None`: nowhere.
    pub import_dir: Option<PathBuf>,
}

impl PullSettings {
    pub fn from_config(config: &InferenceConfig) -> Result<Self, ModelStoreError> {
        let policy = FetchPolicy::new(
            &config.pull_allow_private,
            config.pull_allow_http,
            ALLOW_PRIVATE_SETTING,
            ALLOW_HTTP_SETTING,
        )
        .map_err(|e| ModelStoreError::Setup(format!("{ALLOW_PRIVATE_SETTING}: {e}")))?;
        Ok(Self {
            policy,
            max_bytes: config.pull_max_bytes,
            connect_timeout: Duration::from_secs(config.pull_connect_timeout_secs),
            read_timeout: Duration::from_secs(config.pull_read_timeout_secs),
            import_dir: config.import_dir.clone(),
        })
    }
}

impl Default for PullSettings {
    /// The defaults of `inference`: https to public addresses only, 64 GiB, no import dir.
    fn default() -> Self {
        let config = InferenceConfig::default();
        Self {
            policy: FetchPolicy::strict(ALLOW_PRIVATE_SETTING, ALLOW_HTTP_SETTING),
            max_bytes: config.pull_max_bytes,
            connect_timeout: Duration::from_secs(config.pull_connect_timeout_secs),
            read_timeout: Duration::from_secs(config.pull_read_timeout_secs),
            import_dir: None,
        }
    }
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(PathBuf),
    Url(String),
}

impl Source {
    /// A local path, a URL, or `org/repo/path/file.gguf` on Hugging Face. For the operator
    /// on the server (`confab models pull`): any readable path is taken. Sources from the API
    /// go through [`Source::parse_confined`].
    pub fn parse(text: &str) -> Result<Self, ModelStoreError> {
        let text = text.trim();
        if text.contains("://") {
            return Ok(Source::Url(text.to_owned()));
        }
        let path = Path::new(text);
        if path.exists() {
            return Ok(Source::Path(path.to_owned()));
        }
        Self::remote(text).ok_or_else(|| ModelStoreError::BadSource(text.to_owned()))
    }

    /// A source given through the API: a URL or a Hugging Face name; a local path only when
    /// `import_dir` is set and the path, symbolic links resolved, is a regular file inside it
    /// (absolute, or relative to the directory).
    pub fn parse_confined(text: &str, import_dir: Option<&Path>) -> Result<Self, ModelStoreError> {
        let text = text.trim();
        if let Some(source) = Self::remote(text) {
            return Ok(source);
        }
        match import_dir {
            Some(dir) => confine(dir, text).map(Source::Path),
            None if text.contains(['/', '\\']) || text.ends_with(".gguf") => {
                Err(ModelStoreError::LocalPath(text.to_owned()))
            }
            None => Err(ModelStoreError::BadSource(text.to_owned())),
        }
    }

    /// A URL (any scheme: the fetch policy judges it) or `org/repo/file.gguf`.
    fn remote(text: &str) -> Option<Self> {
        if text.contains("://") {
            return Some(Source::Url(text.to_owned()));
        }
        let parts: Vec<&str> = text.split('/').collect();
        if parts.len() >= 3
            && text.ends_with(".gguf")
            && parts
                .iter()
                .all(|p| !p.is_empty() && *p != ".." && *p != "." && !p.starts_with('~'))
        {
            let (repo, file) = (parts[..2].join("/"), parts[2..].join("/"));
            return Some(Source::Url(format!(
                "https://huggingface.co/{repo}/resolve/main/{file}"
            )));
        }
        None
    }

    /// The name the model gets: the file name without `.gguf`.
    pub fn model_name(&self) -> String {
        let file = match self {
            Source::Path(p) => p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Source::Url(u) => u
                .split(['?', '#'])
                .next()
                .unwrap_or(u)
                .rsplit('/')
                .next()
                .unwrap_or(u)
                .to_owned(),
        };
        file.strip_suffix(".gguf").unwrap_or(&file).to_owned()
    }
}

/// How far a pull has got.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Progress {
    pub bytes: u64,
    pub total: Option<u64>,
    /// Bytes per second since this attempt started.
    pub rate: f64,
}

impl Progress {
    pub fn percent(&self) -> Option<f64> {
        self.total
            .filter(|t| *t > 0)
            .map(|t| self.bytes as f64 * 100.0 / t as f64)
    }
}

/// A model in the store.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct LocalModel {
    pub name: String,
    #[schema(value_type = String)]
    pub path: PathBuf,
    pub size_bytes: u64,
    /// Recorded at pull time.
    pub sha256: Option<String>,
    #[serde(flatten)]
    pub meta: crate::gguf::GgufMeta,
}

/// What a listing knows about one file: if its size and times are unchanged, so is the
/// model, and the header is not read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// The `.sha256` file beside it.
    checksum_modified: Option<SystemTime>,
}

#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
    http: reqwest::Client,
    settings: Arc<PullSettings>,
    /// The last listing, by file name, with each file's stamp.
    listed: Arc<Mutex<HashMap<String, (Stamp, LocalModel)>>>,
    /// GGUF headers read so far (the expensive part of a listing).
    header_reads: Arc<AtomicU64>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']) && name != ".."
}

impl ModelStore {
    pub fn new(dir: impl Into<PathBuf>, settings: PullSettings) -> Result<Self, ModelStoreError> {
        let policy = Arc::new(settings.policy.clone());
        let http = crate::ssrf::client(policy, settings.connect_timeout, settings.read_timeout)
            .map_err(|e| ModelStoreError::Setup(format!("the HTTP client: {e}")))?;
        Ok(Self {
            dir: dir.into(),
            http,
            settings: Arc::new(settings),
            listed: Arc::default(),
            header_reads: Arc::default(),
        })
    }

    /// A store with the pull settings of `config`.
    pub fn from_config(
        dir: impl Into<PathBuf>,
        config: &InferenceConfig,
    ) -> Result<Self, ModelStoreError> {
        Self::new(dir, PullSettings::from_config(config)?)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn settings(&self) -> &PullSettings {
        &self.settings
    }

    /// How many GGUF headers this store has read: once per new or changed file.
    pub fn header_reads(&self) -> u64 {
        self.header_reads.load(Ordering::Relaxed)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.gguf"))
    }

    /// Every complete model, by name. Blocking file-system work (a directory read and a
    /// `stat` per file; a header read for new or changed files only): async code calls it
    /// on a blocking thread.
    pub fn list(&self) -> Result<Vec<LocalModel>, ModelStoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.listed.lock().clear();
                return Ok(Vec::new());
            }
            Err(e) => return Err(e.into()),
        };
        // Held while reading headers, so concurrent listings read each header once.
        let mut listed = self.listed.lock();
        let mut fresh = HashMap::with_capacity(listed.len());
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.strip_suffix(".gguf"))
                .filter(|n| valid_name(n))
            else {
                continue;
            };
            let metadata = std::fs::metadata(&path)?;
            let checksum = path.with_extension("gguf.sha256");
            let stamp = Stamp {
                len: metadata.len(),
                modified: metadata.modified().ok(),
                checksum_modified: std::fs::metadata(&checksum).and_then(|m| m.modified()).ok(),
            };
            let model = match listed.remove(name) {
                Some((known, model)) if known == stamp => model,
                _ => self.describe(name, &path, stamp.len),
            };
            fresh.insert(name.to_owned(), (stamp, model));
        }
        *listed = fresh;
        let mut models: Vec<LocalModel> = listed.values().map(|(_, m)| m.clone()).collect();
        models.sort_by_key(|m| m.name.to_lowercase());
        Ok(models)
    }

    fn describe(&self, name: &str, path: &Path, size_bytes: u64) -> LocalModel {
        let sha256 = std::fs::read_to_string(path.with_extension("gguf.sha256"))
            .ok()
            .map(|s| s.trim().to_owned());
        self.header_reads.fetch_add(1, Ordering::Relaxed);
        LocalModel {
            name: name.to_owned(),
            path: path.to_owned(),
            size_bytes,
            sha256,
            meta: crate::gguf::read_meta(path),
        }
    }

    /// The model called `name` (case-insensitive).
    pub fn find(&self, name: &str) -> Result<LocalModel, ModelStoreError> {
        self.list()?
            .into_iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| ModelStoreError::NotFound(name.to_owned()))
    }

    pub fn remove(&self, name: &str) -> Result<(), ModelStoreError> {
        let model = self.find(name)?;
        std::fs::remove_file(&model.path)?;
        let _ = std::fs::remove_file(model.path.with_extension("gguf.sha256"));
        Ok(())
    }

    /// Judges a source before its pull starts, for an early answer: a URL's scheme and
    /// address (a name by its addresses now; the download judges them again when it
    /// connects).
    pub async fn check(&self, source: &Source) -> Result<(), ModelStoreError> {
        match source {
            Source::Url(url) => {
                let url = parse_url(url)?;
                let check = crate::ssrf::check(&self.settings.policy, &url);
                // A slow resolver does not hold the request: the download judges again.
                match tokio::time::timeout(self.settings.connect_timeout, check).await {
                    Ok(judged) => judged?,
                    Err(_elapsed) => {}
                }
                Ok(())
            }
            Source::Path(_) => Ok(()),
        }
    }

    /// Downloads or copies a model into the store; an interrupted download resumes.
    pub async fn pull(
        &self,
        source: &Source,
        expected_sha256: Option<&str>,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<LocalModel, ModelStoreError> {
        let name = source.model_name();
        if !valid_name(&name) {
            return Err(ModelStoreError::BadSource(format!("{source:?}")));
        }
        let partial_dir = self.dir.join(PARTIAL_DIR);
        tokio::fs::create_dir_all(&partial_dir).await?;
        let partial = partial_dir.join(format!("{name}.gguf.partial"));
        let fetched = match source {
            Source::Path(path) => {
                copy_with_progress(path, &partial, self.settings.max_bytes, &mut progress).await
            }
            Source::Url(url) => self.download(url, &partial, &mut progress).await,
        };
        if let Err(e) = fetched {
            if matches!(e, ModelStoreError::TooLarge { .. }) {
                // Useless to resume: the file will not fit.
                let _ = tokio::fs::remove_file(&partial).await;
            }
            return Err(e);
        }
        let mut file = tokio::fs::File::open(&partial).await?;
        let mut magic = [0u8; 4];
        if file.read_exact(&mut magic).await.is_err() || &magic != GGUF_MAGIC {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(ModelStoreError::NotGguf(format!("{source:?}")));
        }
        let actual = sha256_file(&partial).await?;
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(&actual)
        {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(ModelStoreError::Checksum {
                expected: expected.to_lowercase(),
                actual,
            });
        }
        let target = self.file(&name);
        tokio::fs::write(target.with_extension("gguf.sha256"), format!("{actual}\n")).await?;
        tokio::fs::rename(&partial, &target).await?;
        let size = tokio::fs::metadata(&target).await?.len();
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.describe(&name, &target, size))
            .await
            .map_err(|e| ModelStoreError::Setup(format!("the header reading thread: {e}")))
    }

    async fn download(
        &self,
        url: &str,
        partial: &Path,
        progress: &mut (impl FnMut(Progress) + Send),
    ) -> Result<(), ModelStoreError> {
        let parsed = parse_url(url)?;
        // reqwest does not resolve a literal address, so the resolver never sees it: judged
        // here (and on every redirect by the client's policy).
        self.settings
            .policy
            .check_url(parsed.scheme(), parsed.host_str())?;
        let max = self.settings.max_bytes;
        let have = tokio::fs::metadata(partial)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let mut request = self.http.get(parsed);
        if have > 0 {
            request = request.header(http::header::RANGE, format!("bytes={have}-"));
        }
        let response = request.send().await.map_err(download_error)?;
        let status = response.status();
        let resumed = status == reqwest::StatusCode::PARTIAL_CONTENT && have > 0;
        if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE && have > 0 {
            // The partial file is already complete.
            return Ok(());
        }
        if !status.is_success() {
            return Err(ModelStoreError::Download(format!(
                "{url} answered {status}"
            )));
        }
        let start = if resumed { have } else { 0 };
        let total = response
            .content_length()
            .map(|len| len.saturating_add(start));
        if total.is_some_and(|total| total > max) {
            return Err(ModelStoreError::TooLarge { limit: max });
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(resumed)
            .truncate(!resumed)
            .open(partial)
            .await?;
        let started = Instant::now();
        let mut bytes = start;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(download_error)?;
            bytes += chunk.len() as u64;
            // A server may send more than it announced, or announce nothing.
            if bytes > max {
                return Err(ModelStoreError::TooLarge { limit: max });
            }
            file.write_all(&chunk).await?;
            let elapsed = started.elapsed().as_secs_f64().max(1e-3);
            progress(Progress {
                bytes,
                total,
                rate: (bytes - start) as f64 / elapsed,
            });
        }
        file.flush().await?;
        file.sync_all().await?;
        if let Some(total) = total
            && bytes != total
        {
            return Err(ModelStoreError::Download(format!(
                "the connection closed after {bytes} of {total} bytes; pull again to resume"
            )));
        }
        Ok(())
    }
}

fn parse_url(url: &str) -> Result<reqwest::Url, ModelStoreError> {
    reqwest::Url::parse(url).map_err(|_| ModelStoreError::BadSource(url.to_owned()))
}

/// A failed request: the guard's refusal if it was one, else reqwest's words (which name
/// the URL but carry no connection details).
fn download_error(error: reqwest::Error) -> ModelStoreError {
    match crate::ssrf::refusal_in(&error) {
        Some(refusal) => ModelStoreError::Forbidden(refusal),
        None if error.is_timeout() => {
            ModelStoreError::Download("the server stopped sending; pull again to resume".into())
        }
        None => ModelStoreError::Download(error.to_string()),
    }
}

/// `text` as a regular file inside `dir`, symbolic links resolved.
fn confine(dir: &Path, text: &str) -> Result<PathBuf, ModelStoreError> {
    let refused = || ModelStoreError::NotImportable(text.to_owned());
    let base = std::fs::canonicalize(dir).map_err(|e| {
        tracing::warn!(dir = %dir.display(), error = %e, "inference.import_dir is unusable");
        refused()
    })?;
    let candidate = Path::new(text);
    let candidate = if candidate.is_absolute() {
        candidate.to_owned()
    } else {
        base.join(candidate)
    };
    let real = std::fs::canonicalize(&candidate).map_err(|_| refused())?;
    if !real.starts_with(&base) || !std::fs::metadata(&real).is_ok_and(|m| m.is_file()) {
        return Err(refused());
    }
    Ok(real)
}

async fn copy_with_progress(
    from: &Path,
    to: &Path,
    max: u64,
    progress: &mut (impl FnMut(Progress) + Send),
) -> Result<(), ModelStoreError> {
    let mut input = tokio::fs::File::open(from).await?;
    let total = input.metadata().await?.len();
    if total > max {
        return Err(ModelStoreError::TooLarge { limit: max });
    }
    let mut output = tokio::fs::File::create(to).await?;
    let mut buffer = vec![0u8; 1 << 20];
    let started = Instant::now();
    let mut bytes = 0u64;
    loop {
        let n = input.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        // Devices and growing files report a size that is not what they give.
        if bytes > max {
            return Err(ModelStoreError::TooLarge { limit: max });
        }
        output.write_all(&buffer[..n]).await?;
        progress(Progress {
            bytes,
            total: Some(total),
            rate: bytes as f64 / started.elapsed().as_secs_f64().max(1e-3),
        });
    }
    output.sync_all().await?;
    Ok(())
}

async fn sha256_file(path: &Path) -> Result<String, ModelStoreError> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(
            Source::parse("bartowski/SmolLM2-GGUF/SmolLM2.Q4.gguf").unwrap(),
            Source::Url(
                "https://huggingface.co/bartowski/SmolLM2-GGUF/resolve/main/SmolLM2.Q4.gguf".into()
            )
        );
        assert_eq!(
            Source::parse("https://x.example/a/b.gguf?dl=1")
                .unwrap()
                .model_name(),
            "b"
        );
        assert!(Source::parse("nothing-here").is_err());
        assert!(Source::parse("a/../b.gguf").is_err());
    }

    #[tokio::test]
    async fn local_pull_checks_magic_and_sha() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path().join("models"), PullSettings::default()).unwrap();
        let source_file = dir.path().join("tiny.gguf");
        std::fs::write(&source_file, b"GGUF\x03\x00\x00\x00rest").unwrap();
        let err = store
            .pull(&Source::Path(source_file.clone()), Some("00"), |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, ModelStoreError::Checksum { .. }), "{err}");
        assert!(
            store.list().unwrap().is_empty(),
            "nothing half-made is listed"
        );
        let mut seen = Vec::new();
        let model = store
            .pull(&Source::Path(source_file), None, |p| seen.push(p.bytes))
            .await
            .unwrap();
        assert_eq!(model.name, "tiny");
        assert_eq!(model.sha256.as_deref().map(str::len), Some(64));
        assert_eq!(seen.last(), Some(&12));
        assert_eq!(store.list().unwrap().len(), 1);
        assert_eq!(store.find("TINY").unwrap().name, "tiny");
        store.remove("tiny").unwrap();
        assert!(matches!(
            store.find("tiny"),
            Err(ModelStoreError::NotFound(_))
        ));

        let not_gguf = dir.path().join("fake.gguf");
        std::fs::write(&not_gguf, b"text").unwrap();
        let err = store
            .pull(&Source::Path(not_gguf), None, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, ModelStoreError::NotGguf(_)), "{err}");
    }
}
