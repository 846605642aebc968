//! The SSRF guard applied to an HTTP client (`confab_core::ssrf` holds the rule): a DNS
//! resolver that hands reqwest only addresses the rule allows, and a redirect policy that
//! judges every hop's scheme and literal address. Because reqwest connects only to what the
//! resolver returns, a name that resolves (or re-resolves, DNS rebinding) to an internal
//! address is refused at the moment of connecting, not only when the URL was checked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use confab_core::ssrf::{FetchPolicy, Refusal, Target};

/// Redirects followed before a fetch gives up (reqwest's own default).
pub const MAX_REDIRECTS: usize = 10;

/// A resolver that drops addresses the policy refuses, and fails when none is left.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<FetchPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<FetchPolicy>) -> Self {
        Self { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match allowed_addresses(&policy, &host).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(Resolved::Refused(refusal)) => Err(refusal.into()),
                Err(Resolved::Lookup(e)) => Err(e.into()),
            }
        })
    }
}

/// Why a name gave no address to connect to.
#[derive(Debug)]
enum Resolved {
    Refused(Refusal),
    Lookup(std::io::Error),
}

/// The addresses of `host` the policy allows; a refusal when it has addresses but none is
/// allowed.
async fn allowed_addresses(policy: &FetchPolicy, host: &str) -> Result<Vec<SocketAddr>, Resolved> {
    // Port 0: reqwest puts the URL's port on the addresses it gets.
    let found = tokio::net::lookup_host((host, 0))
        .await
        .map_err(Resolved::Lookup)?;
    let mut allowed = Vec::new();
    let mut refusal = None;
    for addr in found {
        match policy.check_address(host, addr.ip()) {
            Ok(()) => allowed.push(addr),
            Err(r) => {
                refusal.get_or_insert(r);
            }
        }
    }
    match refusal {
        Some(refusal) if allowed.is_empty() => Err(Resolved::Refused(refusal)),
        _ => Ok(allowed),
    }
}

/// A redirect policy that judges each hop like the first URL (its name, if any, is judged
/// by the resolver when connecting) and stops after [`MAX_REDIRECTS`].
pub fn redirect_policy(policy: Arc<FetchPolicy>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(Refusal::TooManyRedirects(MAX_REDIRECTS));
        }
        let url = attempt.url();
        match policy.check_url(url.scheme(), url.host_str()) {
            Ok(_) => attempt.follow(),
            Err(refusal) => attempt.error(refusal),
        }
    })
}

/// A client that fetches only what `policy` allows, with connect and read timeouts. It
/// never uses a proxy: behind one, the proxy would resolve the name and the guard would
/// judge the proxy's address instead of the target's.
pub fn client(
    policy: Arc<FetchPolicy>,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(GuardedResolver::new(policy.clone()))
        .redirect(redirect_policy(policy))
        .connect_timeout(connect_timeout)
        .read_timeout(read_timeout)
        .build()
}

/// Judges a URL before it is fetched: its scheme and literal address, and for a name its
/// current addresses, so a refused target is answered at once instead of failing later in
/// the background. A name that does not resolve passes: the fetch will say so. (The
/// resolver judges the name again when connecting; this is only the early answer.)
pub async fn check(policy: &FetchPolicy, url: &reqwest::Url) -> Result<(), Refusal> {
    match policy.check_url(url.scheme(), url.host_str())? {
        Target::Address(_) => Ok(()),
        Target::Name(host) if policy.host_listed(&host) => Ok(()),
        Target::Name(host) => match allowed_addresses(policy, &host).await {
            Err(Resolved::Refused(refusal)) => Err(refusal),
            Ok(_) | Err(Resolved::Lookup(_)) => Ok(()),
        },
    }
}

/// The refusal behind a failed request, if the guard refused it (from the resolver or the
/// redirect policy, anywhere in the error's chain of causes).
pub fn refusal_in(error: &reqwest::Error) -> Option<Refusal> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return Some(refusal.clone());
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Arc<FetchPolicy> {
        Arc::new(FetchPolicy::strict("t.allow", "t.http"))
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_when_checked() {
        let url = reqwest::Url::parse("https://localhost/x.gguf").unwrap();
        let refused = check(&strict(), &url).await.unwrap_err();
        assert!(
            matches!(refused, Refusal::Address { ref host, .. } if host == "localhost"),
            "{refused:?}"
        );
        let listed = FetchPolicy::new(&["localhost".into()], false, "t.allow", "t.http").unwrap();
        check(&listed, &url).await.unwrap();
    }

    #[tokio::test]
    async fn the_client_refuses_at_connect_time_and_says_why() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let lax = Arc::new(FetchPolicy::new(&[], true, "t.allow", "t.http").unwrap());
        let client = client(lax, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        // A name (the resolver's case) and a literal address (the redirect policy's and
        // the caller's case: reqwest does not resolve literals).
        let error = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        let refusal = refusal_in(&error).expect("the resolver's refusal is in the chain");
        assert!(matches!(refusal, Refusal::Address { .. }), "{refusal:?}");
        assert!(
            !format!("{error:?}").contains("Connection refused"),
            "nothing was connected to: {error:?}"
        );
    }
}
