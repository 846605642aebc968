//! Client addresses: address ranges (`10.0.0.0/8`), which `X-Forwarded-For` hop is the
//! client, and the key a throttle counts an address under.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An address range: an address and a prefix length (`192.0.2.0/24`, `2001:db8::/32`); a
/// bare address is a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` lies in the range. An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`,
    /// what a dual-stack socket reports) is compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bad = || format!("`{text}` is not an address or a range like 10.0.0.0/8");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The key under which throttles count a client: an IPv4 address as it is, an IPv6 address
/// by its /64 network. One subscriber or host commonly holds a whole /64, so counting each
/// IPv6 address apart would give one client 2^64 separate allowances.
pub fn throttle_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

/// Which proxies' `X-Forwarded-For` entries are believed.
///
/// Each proxy appends the address it received the request from, so the list reads
/// client-chosen entries first and the entries of our own proxies last. Only entries that our
/// proxies wrote can be believed: the client is the rightmost hop that is not one of them.
#[derive(Debug, Clone, Default)]
pub struct ProxyTrust {
    enabled: bool,
    proxies: Vec<IpRange>,
}

impl ProxyTrust {
    /// No proxy: the client is the connected peer and forwarding headers are ignored.
    pub fn none() -> Self {
        Self::default()
    }

    /// Believe forwarding headers from `proxies` (the addresses of the reverse proxies in
    /// front of Confab). An empty list trusts exactly one proxy: the connected peer.
    pub fn proxies(proxies: Vec<IpRange>) -> Self {
        Self {
            enabled: true,
            proxies,
        }
    }

    /// From `server.trust_proxy_headers` and `server.trusted_proxies` (already validated).
    pub fn from_config(server: &crate::config::ServerConfig) -> Result<Self, String> {
        if !server.trust_proxy_headers {
            return Ok(Self::none());
        }
        let proxies = server
            .trusted_proxies
            .iter()
            .map(|p| p.parse())
            .collect::<Result<Vec<IpRange>, String>>()?;
        Ok(Self::proxies(proxies))
    }

    /// Whether forwarding headers are read at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn is_proxy(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|range| range.contains(ip))
    }

    /// Whether the connected peer is one of our proxies, so its forwarding headers (also
    /// `X-Forwarded-Proto`) may be believed.
    pub fn trusts_peer(&self, peer: Option<IpAddr>) -> bool {
        // Without a list the peer is the one proxy; without a peer (an in-process request)
        // there is nobody to distrust.
        self.enabled && (self.proxies.is_empty() || peer.is_none_or(|p| self.is_proxy(p)))
    }

    /// The client's address, from the connected peer and the `X-Forwarded-For` values (in
    /// header order).
    pub fn client_ip<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> Option<IpAddr> {
        if !self.trusts_peer(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // An entry that is not an address was written by the client (our proxies write
            // addresses): nothing left of it can be believed, so the last hop stands.
            let Some(ip) = parse_hop(hop) else { break };
            client = Some(ip);
            if !self.is_proxy(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_match() {
        let range: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(range.contains(ip("10.200.3.4")));
        assert!(range.contains(ip("::ffff:10.1.1.1")));
        assert!(!range.contains(ip("11.0.0.1")));
        let one: IpRange = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: IpRange = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(
            "0.0.0.0/0"
                .parse::<IpRange>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "proxy", "10.0.0.0/x", "::/129"] {
            let error = bad.parse::<IpRange>().unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network() {
        assert_eq!(
            throttle_key(ip("2001:db8:1:2:aaaa::1")),
            throttle_key(ip("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_eq!(throttle_key(ip("2001:db8:1:2::")), ip("2001:db8:1:2::"));
        assert_ne!(
            throttle_key(ip("2001:db8:1:2::1")),
            throttle_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(throttle_key(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(throttle_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn the_client_is_the_rightmost_hop_that_is_not_our_proxy() {
        let peer = Some(ip("10.0.0.2"));
        // One proxy (no list): the entry it appended, whatever the client put before it.
        let one = ProxyTrust::proxies(Vec::new());
        assert_eq!(
            one.client_ip(peer, ["6.6.6.6, 203.0.113.9"]),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            one.client_ip(peer, ["6.6.6.6", "203.0.113.9"]),
            Some(ip("203.0.113.9")),
            "several headers read as one list"
        );
        assert_eq!(one.client_ip(peer, []), peer);

        // A chain of our proxies: skip them from the right.
        let chain = ProxyTrust::proxies(vec!["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(
            chain.client_ip(peer, ["6.6.6.6, 203.0.113.9, 10.1.1.1"]),
            Some(ip("203.0.113.9"))
        );
        // A peer that is not our proxy: its headers are not believed.
        assert_eq!(
            chain.client_ip(Some(ip("198.51.100.1")), ["6.6.6.6"]),
            Some(ip("198.51.100.1"))
        );
        // Garbage left of our hops stops the walk at the last address we can believe.
        assert_eq!(
            chain.client_ip(peer, ["nonsense, 10.1.1.1"]),
            Some(ip("10.1.1.1"))
        );
        assert_eq!(
            chain.client_ip(peer, ["[2001:db8::5]:4711"]),
            Some(ip("2001:db8::5"))
        );
        // Not enabled: the peer, always.
        assert_eq!(ProxyTrust::none().client_ip(peer, ["6.6.6.6"]), peer);
    }
}
