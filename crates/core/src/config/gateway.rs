//! The `[gateway]` section: where each service's instances are, and how the gateway treats
//! them (timeouts, circuit breaker, retries, ejection, DNS refresh), its rate limits and its
//! response cache.

use serde::{Deserialize, Serialize};

/// The gateway of a split deployment (`confab serve --services gateway`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Threads that serve requests, each with its own listening socket on `listen`
    /// (`SO_REUSEPORT`, the kernel spreading connections over them), its own connections to
    /// the instances and to Redis, so a request's work stays on one thread; 0: one per core.
    pub threads: usize,
    /// How long to wait for a connection to an instance, in milliseconds.
    pub connect_timeout_ms: u64,
    /// How long to wait for an instance's response headers, in milliseconds. A streamed body
    /// (SSE, downloads) is not cut by it.
    pub response_timeout_ms: u64,
    /// Further attempts for an idempotent request (GET, HEAD, OPTIONS, PUT, DELETE) after a
    /// connection error or a 502/503/504, each on another instance when there is one; only
    /// before anything was sent to the client.
    pub retries: u32,
    /// Consecutive failures of a service that open its circuit (fast 503s).
    pub breaker_failures: u32,
    /// The share of failures (0 to 1) over `breaker_window_secs` that opens the circuit, once
    /// `breaker_min_requests` requests were seen in the window.
    pub breaker_error_rate: f64,
    pub breaker_min_requests: u32,
    pub breaker_window_secs: u64,
    /// How long an open circuit refuses before one probe request may pass, in milliseconds
    /// (at most 25,000, so a circuit closes within 30 s of the service's return).
    pub breaker_open_ms: u64,
    /// Consecutive failures that eject one instance from the balancing.
    pub eject_after_failures: u32,
    /// How often an ejected instance's `/readyz` is probed to re-admit it, in milliseconds.
    pub probe_interval_ms: u64,
    /// How often `dns://name:port` instances are resolved again, in milliseconds.
    pub dns_refresh_ms: u64,
    /// How often the services' OpenAPI documents are fetched again, in seconds.
    pub openapi_refresh_secs: u64,
    /// Idle keep-alive connections kept per instance.
    pub max_idle_per_instance: usize,
    /// Requests a minute per client address; 0 turns the limit off.
    pub ip_per_minute: u32,
    pub ip_burst: u32,
    /// Requests a minute per signed-in user (any credential); 0 turns the limit off.
    pub user_per_minute: u32,
    pub user_burst: u32,
    /// Requests a minute per API key; 0 turns the limit off.
    pub key_per_minute: u32,
    pub key_burst: u32,
    /// The response cache for public GETs: answers larger than this are never cached.
    pub cache_max_body_bytes: usize,
    /// An upstream's `max-age` is clamped to at most this many seconds; 0 turns the cache off.
    pub cache_max_ttl_secs: u64,
    /// How long the JWKS is cached, in seconds.
    pub jwks_ttl_secs: u64,
    /// Where each service's instances are.
    pub upstreams: UpstreamsConfig,
}

/// The instances of each service: `http://host:port` entries, or `dns://name:port` for every
/// address the name resolves to (re-resolved every `dns_refresh_ms`; a Kubernetes headless
/// service). A service with no instances is not part of this deployment: its routes answer
/// 404.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamsConfig {
    pub auth: Vec<String>,
    pub chat: Vec<String>,
    pub inference: Vec<String>,
    pub admin: Vec<String>,
    pub seo: Vec<String>,
    pub files: Vec<String>,
}

impl UpstreamsConfig {
    /// Every service's name and instances.
    pub fn all(&self) -> [(&'static str, &[String]); 6] {
        [
            ("auth", &self.auth),
            ("chat", &self.chat),
            ("inference", &self.inference),
            ("admin", &self.admin),
            ("seo", &self.seo),
            ("files", &self.files),
        ]
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            connect_timeout_ms: 1_000,
            response_timeout_ms: 60_000,
            retries: 2,
            breaker_failures: 5,
            breaker_error_rate: 0.5,
            breaker_min_requests: 20,
            breaker_window_secs: 30,
            breaker_open_ms: 5_000,
            eject_after_failures: 3,
            probe_interval_ms: 2_000,
            dns_refresh_ms: 5_000,
            openapi_refresh_secs: 60,
            max_idle_per_instance: 256,
            ip_per_minute: 600,
            ip_burst: 120,
            user_per_minute: 600,
            user_burst: 120,
            key_per_minute: 600,
            key_burst: 120,
            cache_max_body_bytes: 1 << 20,
            cache_max_ttl_secs: 300,
            jwks_ttl_secs: 60,
            upstreams: UpstreamsConfig::default(),
        }
    }
}

/// One instance entry, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceEntry {
    /// `http://host:port`, or `https://host:port` (`tls`, the certificate checked against
    /// `host` with the system's roots and `services.ca_file`): one instance.
    Static { authority: String, tls: bool },
    /// `dns://name:port`: every address `name` resolves to.
    Dns { host: String, port: u16 },
}

impl InstanceEntry {
    /// Reads `http://host:port` or `https://host:port` (no path), or `dns://name:port`.
    pub fn parse(entry: &str) -> Result<Self, String> {
        if let Some(rest) = entry.strip_prefix("dns://") {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("`{entry}` needs a port: dns://name:port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| format!("`{entry}`: the port is not a number up to 65535"))?;
            let host_ok = !host.is_empty()
                && host.len() <= 253
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
            if !host_ok || port == 0 {
                return Err(format!("`{entry}` is not dns://name:port"));
            }
            return Ok(Self::Dns {
                host: host.to_owned(),
                port,
            });
        }
        let (rest, tls) = match (
            entry.strip_prefix("http://"),
            entry.strip_prefix("https://"),
        ) {
            (Some(rest), _) => (rest, false),
            (None, Some(rest)) => (rest, true),
            (None, None) => {
                return Err(format!(
                    "`{entry}` must be http://host:port, https://host:port or dns://name:port"
                ));
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let authority: http::uri::Authority = rest
            .parse()
            .map_err(|_| format!("`{entry}` is not http://host:port (no path)"))?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return Err(format!("`{entry}` is not http://host:port"));
        }
        Ok(Self::Static {
            authority: authority.as_str().to_owned(),
            tls,
        })
    }
}

/// The most serving threads `gateway.threads` may ask for.
const MAX_THREADS: usize = 256;

impl GatewayConfig {
    /// How many threads serve requests: `threads`, or one per core when it is 0.
    pub fn serving_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        for (service, entries) in self.upstreams.all() {
            for entry in entries {
                InstanceEntry::parse(entry)
                    .map_err(|e| format!("gateway.upstreams.{service}: {e}"))?;
            }
        }
        let at_least_one = [
            ("gateway.connect_timeout_ms", self.connect_timeout_ms),
            ("gateway.response_timeout_ms", self.response_timeout_ms),
            ("gateway.breaker_failures", u64::from(self.breaker_failures)),
            ("gateway.breaker_window_secs", self.breaker_window_secs),
            (
                "gateway.eject_after_failures",
                u64::from(self.eject_after_failures),
            ),
            ("gateway.probe_interval_ms", self.probe_interval_ms),
            ("gateway.dns_refresh_ms", self.dns_refresh_ms),
            ("gateway.openapi_refresh_secs", self.openapi_refresh_secs),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err(format!("{key} must be at least 1"));
            }
        }
        if !(0.0..=1.0).contains(&self.breaker_error_rate) {
            return Err("gateway.breaker_error_rate must be between 0 and 1".into());
        }
        if self.breaker_open_ms > 25_000 {
            return Err(
                "gateway.breaker_open_ms must be at most 25000, so a circuit closes within 30 s \
                 of the service's return"
                    .into(),
            );
        }
        if self.threads > MAX_THREADS {
            return Err(format!(
                "gateway.threads must be at most {MAX_THREADS} (0: one per core)"
            ));
        }
        if self.retries > 5 {
            return Err("gateway.retries must be at most 5".into());
        }
        for (key, limit, burst) in [
            ("ip", self.ip_per_minute, self.ip_burst),
            ("user", self.user_per_minute, self.user_burst),
            ("key", self.key_per_minute, self.key_burst),
        ] {
            if limit > 0 && burst == 0 {
                return Err(format!(
                    "gateway.{key}_burst must be at least 1 while gateway.{key}_per_minute is set"
                ));
            }
        }
        if self.cache_max_body_bytes > 16 << 20 {
            return Err("gateway.cache_max_body_bytes must be at most 16 MiB".into());
        }
        Ok(())
    }
}
