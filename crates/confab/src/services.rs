//! Which services a process runs: all of them (`confab serve`, the all-in-one process), or
//! the ones named by `--services` (split mode: one process per service behind the gateway).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A service of the platform, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Auth,
    Chat,
    Inference,
    Admin,
    Seo,
    Files,
    /// The entry point of a split deployment: it forwards to the others.
    Gateway,
}

impl Service {
    /// Every service that holds data and routes, in the order their migrations apply.
    pub const BACKENDS: [Service; 6] = [
        Service::Admin,
        Service::Auth,
        Service::Inference,
        Service::Chat,
        Service::Seo,
        Service::Files,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Auth => "auth",
            Service::Chat => "chat",
            Service::Inference => "inference",
            Service::Admin => "admin",
            Service::Seo => "seo",
            Service::Files => "files",
            Service::Gateway => "gateway",
        }
    }

    /// The service's migrations (`None` for the gateway, which keeps no tables).
    pub fn migrations(self) -> Option<confab_store::ServiceMigrations> {
        Some(match self {
            Service::Auth => confab_auth::migrations(),
            Service::Chat => confab_chat::migrations(),
            Service::Inference => confab_inference::migrations(),
            Service::Admin => confab_admin::migrations(),
            Service::Seo => confab_seo::migrations(),
            Service::Files => confab_files::migrations(),
            Service::Gateway => return None,
        })
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Service {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auth" => Service::Auth,
            "chat" => Service::Chat,
            "inference" => Service::Inference,
            "admin" => Service::Admin,
            "seo" => Service::Seo,
            "files" => Service::Files,
            "gateway" => Service::Gateway,
            other => {
                return Err(format!(
                    "`{other}` is not a service; the services are auth, chat, inference, admin, \
                     seo, files and gateway (or `all`)"
                ));
            }
        })
    }
}

/// The services of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Services(BTreeSet<Service>);

impl Default for Services {
    /// The all-in-one process.
    fn default() -> Self {
        Self::all()
    }
}

impl Services {
    /// Every backend service in one process, with its own routing (no gateway hop).
    pub fn all() -> Self {
        Self(Service::BACKENDS.into_iter().collect())
    }

    /// Whether this is the all-in-one process.
    pub fn is_all(&self) -> bool {
        *self == Self::all()
    }

    pub fn has(&self, service: Service) -> bool {
        self.0.contains(&service)
    }

    /// Whether this process is the gateway alone.
    pub fn is_gateway(&self) -> bool {
        self.has(Service::Gateway)
    }

    /// The backend services of this process, in migration order.
    pub fn backends(&self) -> impl Iterator<Item = Service> + '_ {
        Service::BACKENDS.into_iter().filter(|s| self.has(*s))
    }

    /// The migrations this process applies: its services', and the bus tables unless the
    /// bus is NATS (whose streams need none).
    pub fn migrations(&self, nats: bool) -> Vec<confab_store::ServiceMigrations> {
        let mut all = Vec::new();
        if !nats && !self.is_gateway() {
            all.push(confab_bus::migrations());
        }
        all.extend(self.backends().filter_map(Service::migrations));
        all
    }
}

impl fmt::Display for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("all");
        }
        let names: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for Services {
    type Err = String;

    /// `all`, or a comma-separated list such as `auth,chat`. The gateway runs alone.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = BTreeSet::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "all" {
                set.extend(Service::BACKENDS);
            } else {
                set.insert(name.parse::<Service>()?);
            }
        }
        if set.is_empty() {
            return Err("name at least one service, or `all`".into());
        }
        if set.contains(&Service::Gateway) && set.len() > 1 {
            return Err("the gateway runs in a process of its own: `--services gateway`".into());
        }
        Ok(Self(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_print() {
        let s: Services = "chat, auth".parse().unwrap();
        assert!(s.has(Service::Auth) && s.has(Service::Chat) && !s.has(Service::Seo));
        assert!(!s.is_all());
        assert_eq!(s.to_string(), "auth,chat");
        assert!("all".parse::<Services>().unwrap().is_all());
        assert!(
            "auth,chat,inference,admin,seo,files"
                .parse::<Services>()
                .unwrap()
                .is_all()
        );
        assert_eq!(Services::default().to_string(), "all");
        assert!("gateway".parse::<Services>().unwrap().is_gateway());
    }

    #[test]
    fn bad_lists_say_what_to_write() {
        let e = "chat,files2".parse::<Services>().unwrap_err();
        assert!(e.contains("`files2` is not a service"), "{e}");
        assert!("".parse::<Services>().unwrap_err().contains("at least one"));
        assert!(
            "gateway,chat"
                .parse::<Services>()
                .unwrap_err()
                .contains("own")
        );
    }

    #[test]
    fn migrations_follow_the_services_and_the_bus() {
        let names = |s: &Services, nats| -> Vec<&'static str> {
            s.migrations(nats).iter().map(|m| m.service).collect()
        };
        let chat: Services = "chat".parse().unwrap();
        assert_eq!(names(&chat, true), vec!["chat"]);
        assert_eq!(names(&chat, false), vec!["bus", "chat"]);
        assert_eq!(
            names(&Services::all(), false),
            vec!["bus", "admin", "auth", "inference", "chat", "seo", "files"]
        );
        assert!(names(&"gateway".parse().unwrap(), false).is_empty());
    }
}
