//! The SSRF rule for URLs the server fetches on a user's behalf (model pulls today; knowledge
//! pages and videos later): only `https`, and never an address inside the deployment —
//! loopback, private, link-local, unique-local, shared (CGNAT), multicast, unspecified,
//! reserved or a cloud metadata endpoint — unless the operator lists it.
//!
//! This module is the pure policy: it judges a scheme, a host and an IP address. The fetching
//! crate applies it where it matters, to the address a name RESOLVES to (a DNS resolver that
//! refuses such addresses) and to every redirect hop, so neither a DNS rebinding nor a
//! redirect can reach what the URL itself could not.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not fetched without the operator's consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16 (RFC 1918); fec0::/10 (deprecated site-local).
    Private,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// fc00::/7 (RFC 4193).
    UniqueLocal,
    /// 100.64/10, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// 224/4, ff00::/8.
    Multicast,
    /// 0.0.0.0/8 ("this network"), ::.
    Unspecified,
    /// 240/4 (incl. the broadcast address), 192.0.0/24, 198.18/15 and the documentation
    /// ranges: nothing public lives there.
    Reserved,
    /// The instance metadata services of the clouds (169.254.169.254, fd00:ec2::254,
    /// 100.100.100.200, 168.63.129.16): credentials live there.
    CloudMetadata,
}

impl AddressClass {
    /// The class of `ip`, or `None` for a public address.
    pub fn of(ip: IpAddr) -> Option<Self> {
        // An IPv4 address written as IPv6 (::ffff:a.b.c.d) reaches the IPv4 host.
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => Self::of_v6(v6),
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Option<Self> {
        const METADATA: [Ipv4Addr; 3] = [
            Ipv4Addr::new(169, 254, 169, 254),
            Ipv4Addr::new(100, 100, 100, 200),
            Ipv4Addr::new(168, 63, 129, 16),
        ];
        if METADATA.contains(&ip) {
            return Some(Self::CloudMetadata);
        }
        let [a, b, c, _] = ip.octets();
        Some(match (a, b, c) {
            (0, ..) => Self::Unspecified,
            (127, ..) => Self::Loopback,
            (10, ..) | (192, 168, _) => Self::Private,
            (172, b, _) if (16..32).contains(&b) => Self::Private,
            (169, 254, _) => Self::LinkLocal,
            (100, b, _) if (64..128).contains(&b) => Self::SharedAddressSpace,
            (224..=239, ..) => Self::Multicast,
            (240..=255, ..)
            | (192, 0, 0)
            | (192, 0, 2)
            | (198, 51, 100)
            | (203, 0, 113)
            | (198, 18 | 19, _) => Self::Reserved,
            _ => return None,
        })
    }

    fn of_v6(ip: Ipv6Addr) -> Option<Self> {
        if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
            return Some(Self::CloudMetadata);
        }
        if ip.is_unspecified() {
            return Some(Self::Unspecified);
        }
        if ip.is_loopback() {
            return Some(Self::Loopback);
        }
        let s = ip.segments();
        // Prefixes that carry an IPv4 address a gateway would reach for us: the deprecated
        // IPv4-compatible form (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
        let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        if s[..6] == [0; 6] {
            return Self::of_v4(embedded(s[6], s[7])).or(Some(Self::Reserved));
        }
        if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
            return Self::of_v4(embedded(s[6], s[7]));
        }
        if s[0] == 0x2002 {
            return Self::of_v4(embedded(s[1], s[2]));
        }
        Some(match s[0] {
            0xfe80..=0xfebf => Self::LinkLocal,
            0xfec0..=0xfeff => Self::Private,
            0xfc00..=0xfdff => Self::UniqueLocal,
            0xff00..=0xffff => Self::Multicast,
            // 2001:db8::/32, the documentation prefix.
            0x2001 if s[1] == 0x0db8 => Self::Reserved,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::UniqueLocal => "unique-local",
            Self::SharedAddressSpace => "shared (CGNAT)",
            Self::Multicast => "multicast",
            Self::Unspecified => "unspecified",
            Self::Reserved => "reserved",
            Self::CloudMetadata => "cloud metadata",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A network in CIDR form (`10.0.0.0/8`, `fd00::/8`; a bare address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Self { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(net.to_bits()),
                u128::from(ip.to_bits()),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(net.to_bits(), ip.to_bits(), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, width: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix);
    (a >> shift) == (b >> shift)
}

/// One entry of an allow list: a network, or a host name whose addresses are all allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRule {
    Network(Cidr),
    Host(String),
}

impl AllowRule {
    /// A CIDR, an IP address, or a host name (letters, digits, `-`, `.`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Some(cidr) = Cidr::parse(text) {
            return Some(Self::Network(cidr));
        }
        let host = normalise_host(text);
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        valid.then_some(Self::Host(host))
    }
}

fn normalise_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Why a fetch was refused. The message names the rule and the setting that lifts it, and
/// never the address a name resolved to (that would map the inside of the network).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("`{scheme}` URLs are not fetched: use https, or allow plain http with `{setting}`")]
    Scheme {
        scheme: String,
        setting: &'static str,
    },
    #[error(
        "`{host}` is or resolves to an internal address ({class}), which is not fetched; list \
         the host or its network in `{setting}` to allow it"
    )]
    Address {
        host: String,
        class: AddressClass,
        setting: &'static str,
    },
    #[error("the URL names no host")]
    NoHost,
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
}

/// A configured allow-list entry that is neither a network nor a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` is neither a CIDR (10.0.0.0/8), an IP address nor a host name")]
pub struct BadRule {
    pub entry: String,
}

/// The SSRF rule with its operator's exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    allow: Vec<AllowRule>,
    allow_http: bool,
    /// The settings named in refusals, so the operator knows what to change.
    allow_setting: &'static str,
    http_setting: &'static str,
}

impl FetchPolicy {
    /// `allow_private`: CIDRs, addresses or host names exempt from the address rule;
    /// `allow_http`: plain http is fetched too. The two setting names appear in refusals.
    pub fn new(
        allow_private: &[String],
        allow_http: bool,
        allow_setting: &'static str,
        http_setting: &'static str,
    ) -> Result<Self, BadRule> {
        let allow = allow_private
            .iter()
            .map(|entry| {
                AllowRule::parse(entry).ok_or_else(|| BadRule {
                    entry: entry.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            allow,
            allow_http,
            allow_setting,
            http_setting,
        })
    }

    /// The rule without exceptions: https only, public addresses only.
    pub fn strict(allow_setting: &'static str, http_setting: &'static str) -> Self {
        Self {
            allow: Vec::new(),
            allow_http: false,
            allow_setting,
            http_setting,
        }
    }

    /// Whether the scheme may be fetched.
    pub fn check_scheme(&self, scheme: &str) -> Result<(), Refusal> {
        match scheme.to_ascii_lowercase().as_str() {
            "https" => Ok(()),
            "http" if self.allow_http => Ok(()),
            other => Err(Refusal::Scheme {
                scheme: other.to_owned(),
                setting: self.http_setting,
            }),
        }
    }

    /// Whether the host name itself is listed (its addresses are then not judged).
    pub fn host_listed(&self, host: &str) -> bool {
        let host = normalise_host(host);
        self.allow
            .iter()
            .any(|rule| matches!(rule, AllowRule::Host(h) if *h == host))
    }

    /// Whether `ip`, an address of `host`, may be connected to.
    pub fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), Refusal> {
        let Some(class) = AddressClass::of(ip) else {
            return Ok(());
        };
        let listed = self.host_listed(host)
            || self
                .allow
                .iter()
                .any(|rule| matches!(rule, AllowRule::Network(net) if net.contains(ip)));
        if listed {
            return Ok(());
        }
        Err(Refusal::Address {
            host: normalise_host(host),
            class,
            setting: self.allow_setting,
        })
    }

    /// Judges a URL's scheme and host as written (`host` as `Url::host_str` gives it: IPv6 in
    /// brackets). A literal address is judged here; a name is judged when it is resolved.
    pub fn check_url(&self, scheme: &str, host: Option<&str>) -> Result<Target, Refusal> {
        self.check_scheme(scheme)?;
        let host = host.filter(|h| !h.is_empty()).ok_or(Refusal::NoHost)?;
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match bare.parse::<IpAddr>() {
            Ok(ip) => {
                self.check_address(bare, ip)?;
                Ok(Target::Address(ip))
            }
            Err(_) => Ok(Target::Name(normalise_host(bare))),
        }
    }
}

/// What a URL's host is, once its scheme and any literal address passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Address(IpAddr),
    /// To be judged by its resolved addresses.
    Name(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> Option<AddressClass> {
        AddressClass::of(text.parse().unwrap())
    }

    fn policy(allow: &[&str], http: bool) -> FetchPolicy {
        let allow: Vec<String> = allow.iter().map(|s| (*s).to_owned()).collect();
        FetchPolicy::new(&allow, http, "x.allow_private", "x.allow_http").unwrap()
    }

    #[test]
    fn internal_ipv4_addresses_are_classified() {
        use AddressClass as C;
        for (ip, expected) in [
            ("127.0.0.1", C::Loopback),
            ("127.255.255.254", C::Loopback),
            ("10.1.2.3", C::Private),
            ("172.16.0.1", C::Private),
            ("172.31.255.255", C::Private),
            ("192.168.1.1", C::Private),
            ("169.254.0.1", C::LinkLocal),
            ("169.254.169.254", C::CloudMetadata),
            ("100.100.100.200", C::CloudMetadata),
            ("168.63.129.16", C::CloudMetadata),
            ("100.64.0.1", C::SharedAddressSpace),
            ("100.127.255.255", C::SharedAddressSpace),
            ("224.0.0.1", C::Multicast),
            ("239.255.255.250", C::Multicast),
            ("0.0.0.0", C::Unspecified),
            ("0.1.2.3", C::Unspecified),
            ("255.255.255.255", C::Reserved),
            ("240.0.0.1", C::Reserved),
            ("192.0.2.1", C::Reserved),
        ] {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "11.0.0.0",
            "223.255.255.255",
        ] {
            assert_eq!(class(public), None, "{public}");
        }
    }

    #[test]
    fn internal_ipv6_addresses_are_classified() {
        use AddressClass as C;
        for (ip, expected) in [
            ("::1", C::Loopback),
            ("::", C::Unspecified),
            ("fe80::1", C::LinkLocal),
            ("febf::1", C::LinkLocal),
            ("fec0::1", C::Private),
            ("fc00::1", C::UniqueLocal),
            ("fd00::1", C::UniqueLocal),
            ("fd12:3456::1", C::UniqueLocal),
            ("fd00:ec2::254", C::CloudMetadata),
            ("ff02::1", C::Multicast),
            ("2001:db8::1", C::Reserved),
            // IPv4 inside IPv6: mapped, compatible, NAT64 and 6to4 reach the IPv4 host.
            ("::ffff:127.0.0.1", C::Loopback),
            ("::ffff:169.254.169.254", C::CloudMetadata),
            ("::ffff:10.0.0.1", C::Private),
            ("::ffff:0.0.0.0", C::Unspecified),
            ("::127.0.0.1", C::Loopback),
            ("64:ff9b::a00:1", C::Private),
            ("2002:7f00:1::", C::Loopback),
            ("2002:a9fe:a9fe::1", C::CloudMetadata),
        ] {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
        for public in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert_eq!(class(public), None, "{public}");
        }
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.200.1.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()), "mapped");
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(!net.contains("fd00::1".parse().unwrap()));
        let host = Cidr::parse("127.0.0.1").unwrap();
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fc00::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/x",
            "nonsense",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn allow_rules_are_networks_or_host_names() {
        assert_eq!(
            AllowRule::parse("Models.Internal."),
            Some(AllowRule::Host("models.internal".into()))
        );
        assert!(matches!(
            AllowRule::parse("192.168.0.0/16"),
            Some(AllowRule::Network(_))
        ));
        for bad in ["", "a..b", "http://x", "10.0.0.0/40", "host name"] {
            assert_eq!(AllowRule::parse(bad), None, "{bad:?}");
        }
        let err =
            FetchPolicy::new(&["ok.example".into(), "a b".into()], false, "k", "h").unwrap_err();
        assert_eq!(err.entry, "a b");
    }

    #[test]
    fn only_https_unless_http_is_allowed() {
        let strict = policy(&[], false);
        assert!(strict.check_scheme("https").is_ok());
        let refused = strict.check_scheme("http").unwrap_err();
        assert!(refused.to_string().contains("x.allow_http"), "{refused}");
        assert!(strict.check_scheme("file").is_err());
        assert!(strict.check_scheme("ftp").is_err());
        let lax = policy(&[], true);
        assert!(lax.check_scheme("HTTP").is_ok());
        assert!(lax.check_scheme("file").is_err(), "only http is added");
    }

    #[test]
    fn internal_addresses_are_refused_unless_listed() {
        let strict = policy(&[], false);
        let refused = strict
            .check_address("localhost", "127.0.0.1".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            refused,
            Refusal::Address {
                host: "localhost".into(),
                class: AddressClass::Loopback,
                setting: "x.allow_private",
            }
        );
        let message = refused.to_string();
        assert!(message.contains("loopback") && message.contains("x.allow_private"));
        assert!(
            !message.contains("127.0.0.1"),
            "no resolved address: {message}"
        );
        assert!(
            strict
                .check_address("example.com", "93.184.215.14".parse().unwrap())
                .is_ok()
        );

        let lax = policy(&["127.0.0.1/32", "models.lan", "fd00::/8"], false);
        assert!(lax.check_address("x", "127.0.0.1".parse().unwrap()).is_ok());
        assert!(
            lax.check_address("x", "::ffff:127.0.0.1".parse().unwrap())
                .is_ok()
        );
        assert!(
            lax.check_address("x", "127.0.0.2".parse().unwrap())
                .is_err()
        );
        assert!(
            lax.check_address("MODELS.lan.", "10.0.0.5".parse().unwrap())
                .is_ok()
        );
        assert!(lax.check_address("x", "fd00::5".parse().unwrap()).is_ok());
        assert!(
            lax.check_address("x", "169.254.169.254".parse().unwrap())
                .is_err()
        );
    }

    #[test]
    fn urls_are_judged_by_scheme_and_literal_address() {
        let strict = policy(&[], true);
        assert_eq!(
            strict.check_url("https", Some("huggingface.co")),
            Ok(Target::Name("huggingface.co".into()))
        );
        assert!(matches!(
            strict.check_url("http", Some("[::1]")),
            Err(Refusal::Address {
                class: AddressClass::Loopback,
                ..
            })
        ));
        assert!(matches!(
            strict.check_url("http", Some("[::ffff:a9fe:a9fe]")),
            Err(Refusal::Address {
                class: AddressClass::CloudMetadata,
                ..
            })
        ));
        assert!(strict.check_url("http", Some("0.0.0.0")).is_err());
        assert_eq!(strict.check_url("https", None), Err(Refusal::NoHost));
        assert_eq!(
            strict.check_url("https", Some("1.1.1.1")),
            Ok(Target::Address("1.1.1.1".parse().unwrap()))
        );
    }
}
