//! The routing table: which service answers a path, which routes anonymous callers may reach,
//! and which paths are never forwarded. Pure: no I/O, tested on its own.
//!
//! Adding a service is one row in [`ROUTES`] (and its entry in [`Service`]).

/// The services behind the gateway. The set is closed: metric labels are these names only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Auth,
    Chat,
    Inference,
    Admin,
    Seo,
    Files,
}

impl Service {
    pub const ALL: [Service; 6] = [
        Service::Auth,
        Service::Chat,
        Service::Inference,
        Service::Admin,
        Service::Seo,
        Service::Files,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::Auth => "auth",
            Service::Chat => "chat",
            Service::Inference => "inference",
            Service::Admin => "admin",
            Service::Seo => "seo",
            Service::Files => "files",
        }
    }

    /// The position in [`Service::ALL`], for per-service arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Path prefixes (a prefix matches itself and anything below it after a `/`) and the service
/// that answers them.
pub const ROUTES: &[(&str, Service)] = &[
    ("/api/v1/auth", Service::Auth),
    ("/.well-known/jwks.json", Service::Auth),
    ("/v1", Service::Inference),
    ("/api/v1/models", Service::Inference),
    ("/api/v1/conversations", Service::Chat),
    ("/api/v1/search", Service::Chat),
    ("/api/v1/ws", Service::Chat),
    ("/api/v1/shares", Service::Chat),
    ("/api/v1/shared", Service::Chat),
    ("/s", Service::Chat),
    ("/api/v1/presets", Service::Chat),
    ("/api/v1/seo", Service::Seo),
    ("/api/v1/files", Service::Files),
    // Before `/api/v1/admin`: the first matching row wins.
    ("/api/v1/admin/files", Service::Files),
    ("/f", Service::Files),
    ("/api/v1/admin", Service::Admin),
    ("/api/v1/usage", Service::Admin),
];

/// Routes anonymous callers may reach: exact paths, or prefixes ending in `/`.
pub const PUBLIC: &[&str] = &[
    "/api/v1/auth/register",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    // Logout ends the refresh cookie's session when no access token is sent.
    "/api/v1/auth/logout",
    "/api/v1/auth/password/reset",
    "/.well-known/jwks.json",
    "/s/",
    "/api/v1/shared/",
    // Share links of files: the signed token is the credential.
    "/f/",
    // Authenticated by its one-time OAuth state, not by a credential.
    "/api/v1/seo/channel/callback",
];

/// The WebSocket route, where the credential may come as `?access_token=`.
pub const WEBSOCKET: &str = "/api/v1/ws";

/// How errors are written on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Confab's envelope, `{"error":{"code","message","request_id"}}`.
    Envelope,
    /// OpenAI's error body, under `/v1`.
    OpenAi,
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// To a service; `public` when anonymous callers may reach it.
    Upstream {
        service: Service,
        public: bool,
        flavor: Flavor,
    },
    /// Under `/api` or `/v1` but no service's: 404.
    UnknownApi(Flavor),
    /// Service-to-service routes (`/internal/…`) or a path with dot segments: never forwarded.
    Refused,
    /// Everything else: the web UI.
    Web,
}

fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A segment that a server could read as `.` or `..`.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let lower = segment.len() <= 6 && segment.contains(['.', '%']);
        lower
            && matches!(
                segment.to_ascii_lowercase().as_str(),
                "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
            )
    })
}

/// Whether anonymous callers may reach `path`.
pub fn is_public(path: &str) -> bool {
    PUBLIC.iter().any(|p| {
        if let Some(prefix) = p.strip_suffix('/') {
            path.len() > p.len() && path.starts_with(p) && under(path, prefix)
        } else {
            path == *p
        }
    })
}

/// Where `path` (without the query) goes.
pub fn classify(path: &str) -> Target {
    if under(path, "/internal") || has_dot_segment(path) {
        return Target::Refused;
    }
    let flavor = if under(path, "/v1") {
        Flavor::OpenAi
    } else {
        Flavor::Envelope
    };
    for (prefix, service) in ROUTES {
        if under(path, prefix) {
            return Target::Upstream {
                service: *service,
                public: is_public(path),
                flavor,
            };
        }
    }
    if under(path, "/api") || flavor == Flavor::OpenAi {
        Target::UnknownApi(flavor)
    } else {
        Target::Web
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(path: &str) -> Option<(Service, bool)> {
        match classify(path) {
            Target::Upstream {
                service, public, ..
            } => Some((service, public)),
            _ => None,
        }
    }

    #[test]
    fn the_table_routes_each_prefix_to_its_service() {
        let cases = [
            ("/api/v1/auth/login", Service::Auth, true),
            ("/api/v1/auth/me", Service::Auth, false),
            ("/api/v1/auth/users/1/lock", Service::Auth, false),
            ("/.well-known/jwks.json", Service::Auth, true),
            ("/v1/chat/completions", Service::Inference, false),
            ("/v1/models", Service::Inference, false),
            ("/api/v1/models", Service::Inference, false),
            ("/api/v1/models/pulls", Service::Inference, false),
            ("/api/v1/conversations", Service::Chat, false),
            ("/api/v1/conversations/x/messages", Service::Chat, false),
            ("/api/v1/search", Service::Chat, false),
            ("/api/v1/ws", Service::Chat, false),
            ("/api/v1/shares", Service::Chat, false),
            ("/api/v1/shared/abc", Service::Chat, true),
            ("/s/abc", Service::Chat, true),
            ("/api/v1/presets/1", Service::Chat, false),
            ("/api/v1/seo/projects", Service::Seo, false),
            ("/api/v1/seo/channel/callback", Service::Seo, true),
            ("/api/v1/admin/audit", Service::Admin, false),
            ("/api/v1/usage", Service::Admin, false),
        ];
        for (path, service, public) in cases {
            assert_eq!(upstream(path), Some((service, public)), "{path}");
        }
    }

    #[test]
    fn prefixes_match_whole_segments_only() {
        assert_eq!(
            classify("/api/v1/authx"),
            Target::UnknownApi(Flavor::Envelope)
        );
        assert_eq!(classify("/v1x"), Target::Web);
        assert_eq!(
            classify("/v1/nope"),
            Target::Upstream {
                service: Service::Inference,
                public: false,
                flavor: Flavor::OpenAi
            }
        );
        assert_eq!(classify("/api/v2/x"), Target::UnknownApi(Flavor::Envelope));
        assert_eq!(classify("/api"), Target::UnknownApi(Flavor::Envelope));
        assert_eq!(classify("/share"), Target::Web);
        assert_eq!(classify("/"), Target::Web);
        assert_eq!(classify("/c/123"), Target::Web);
        // `/s` itself is no share page; `/s/` with nothing after is not public.
        assert!(!is_public("/s/"));
        assert!(!is_public("/api/v1/auth/login/x"));
    }

    #[test]
    fn internal_routes_and_dot_segments_are_never_forwarded() {
        for path in [
            "/internal",
            "/internal/users/deleted",
            "/api/v1/auth/../../internal/x",
            "/api/v1/auth/%2e%2e/admin",
            "/s/./x",
            "/v1/.%2E/x",
        ] {
            assert_eq!(classify(path), Target::Refused, "{path}");
        }
        assert_eq!(classify("/internalx"), Target::Web);
    }

    #[test]
    fn services_have_unique_names_and_indexes() {
        for (i, service) in Service::ALL.into_iter().enumerate() {
            assert_eq!(service.index(), i);
            assert_eq!(Service::from_name(service.name()), Some(service));
        }
    }
}
