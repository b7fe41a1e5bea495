//! Where the hub may connect on a user's behalf: the guard of the URLs a
//! user connects in a [client session](crate::client_sessions).
//!
//! An API that makes a server open a URL its caller names is a way into the
//! server's network (server-side request forgery) unless every connection is
//! checked. Three checks, in order:
//!
//! 1. the URL: `http` or `https`, no user name or password in it, and
//!    matching one of the operator's `allowed_urls` (none: no URL at all);
//! 2. every address the host resolves to (or the IP literal itself): a
//!    public unicast address, or one inside the operator's
//!    `allowed_networks`. Cloud metadata endpoints (`169.254.169.254`,
//!    `169.254.170.2`, `fd00:ec2::254`) are refused whatever the
//!    configuration says;
//! 3. again at each new connection, by the [`GuardedResolver`] the HTTP
//!    client of such upstreams resolves with, so that a name that resolved
//!    to a public address when checked cannot resolve to a private one when
//!    used (DNS rebinding). Redirects are never followed (the upstream HTTP
//!    client has no redirect policy), so a redirect cannot lead elsewhere.
//!
//! Configured upstreams are the operator's own and are not checked.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;
use url::Url;

/// Why a URL or an address is refused; the text says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// Not an `http`/`https` URL with a host, or one with credentials in it.
    #[error("{0}")]
    BadUrl(String),
    /// No entry of `allowed_urls` matches.
    #[error("`{0}` is not allowed: the hub's client_sessions.allowed_urls does not match it")]
    NotAllowed(String),
    /// An address the host has is not a public one (and not allowed).
    #[error(
        "`{host}` is {address}, a {kind} address: the hub does not connect there on a user's behalf"
    )]
    Forbidden {
        /// The URL's host.
        host: String,
        /// The address it is or resolves to.
        address: IpAddr,
        /// What kind of address it is (`loopback`, `private`, `cloud metadata`, …).
        kind: &'static str,
    },
    /// The host's name does not resolve.
    #[error("`{0}` does not resolve")]
    Unresolved(String),
}

/// One entry of `allowed_urls`: `scheme://host[:port][/path-prefix]`, the
/// host either exact or `*.`-prefixed (any subdomain of it, not itself),
/// the port either a number, `*` (any) or absent (the scheme's default),
/// and the path a prefix (`/mcp` allows `/mcp` and `/mcp/…`, not `/mcpx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPattern {
    scheme: String,
    host: HostPattern,
    port: PortPattern,
    path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    SubdomainOf(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Any,
    Exactly(u16),
}

impl UrlPattern {
    /// Parses an `allowed_urls` entry.
    ///
    /// # Errors
    /// A message saying what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or("expected scheme://host[:port][/path]")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err("the scheme must be http or https".to_owned());
        }
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        let path = path.trim_end_matches('*');
        if authority.contains('@') || authority.is_empty() {
            return Err("expected a host, with no user name".to_owned());
        }
        // `[v6]:port`, `[v6]`, `host:port`, `host`.
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (inner, after) = bracketed
                    .split_once(']')
                    .ok_or("an IPv6 host needs its closing `]`")?;
                (&authority[..inner.len() + 2], after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = match port {
            None => PortPattern::Exactly(default_port(&scheme)),
            Some("*") => PortPattern::Any,
            Some(port) => {
                PortPattern::Exactly(port.parse().map_err(|_| "the port must be a number or *")?)
            }
        };
        let host = host.to_ascii_lowercase();
        let host = match host.strip_prefix("*.") {
            Some(domain) if !domain.is_empty() && !domain.contains('*') => {
                HostPattern::SubdomainOf(domain.to_owned())
            }
            _ if host.contains('*') => {
                return Err("a host may only start with `*.`".to_owned());
            }
            _ => HostPattern::Exact(host),
        };
        Ok(Self {
            scheme,
            host,
            port,
            path: path.to_owned(),
        })
    }

    /// Whether `url` (already checked by [`EgressPolicy::check_url`]) matches.
    pub fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let host_matches = match &self.host {
            HostPattern::Exact(exact) => host == *exact,
            HostPattern::SubdomainOf(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        };
        let port_matches = match self.port {
            PortPattern::Any => true,
            PortPattern::Exactly(port) => url.port_or_known_default() == Some(port),
        };
        let path = url.path();
        let path_matches = self.path == "/"
            || path == self.path.trim_end_matches('/')
            || path.starts_with(&format!("{}/", self.path.trim_end_matches('/')))
            || (self.path.ends_with('/') && path.starts_with(&self.path));
        url.scheme() == self.scheme && host_matches && port_matches && path_matches
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// The operator's rules for URLs users connect: `allowed_urls` and
/// `allowed_networks` of `client_sessions` in the hub's configuration.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    /// URLs users may connect (none: only configured upstreams).
    pub allowed_urls: Vec<UrlPattern>,
    /// Non-public networks users' URLs may still reach (a VPC's own MCP
    /// servers, `127.0.0.0/8` in tests); never a metadata endpoint.
    pub allowed_networks: Vec<IpNet>,
}

impl EgressPolicy {
    /// Checks `url`'s form and the allow-list (no network access).
    ///
    /// # Errors
    /// [`EgressError::BadUrl`] or [`EgressError::NotAllowed`].
    pub fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(EgressError::BadUrl(
                "the URL's scheme must be http or https".to_owned(),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(EgressError::BadUrl("the URL has no host".to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressError::BadUrl(
                "the URL must not carry a user name or password: send credentials as headers"
                    .to_owned(),
            ));
        }
        if self.allowed_urls.iter().any(|pattern| pattern.matches(url)) {
            Ok(())
        } else {
            Err(EgressError::NotAllowed(url.to_string()))
        }
    }

    /// Checks one address `host` has.
    ///
    /// # Errors
    /// [`EgressError::Forbidden`] naming the kind of address.
    pub fn check_address(&self, host: &str, address: IpAddr) -> Result<(), EgressError> {
        let address = canonical(address);
        let forbidden = |kind| EgressError::Forbidden {
            host: host.to_owned(),
            address,
            kind,
        };
        if is_metadata(address) {
            return Err(forbidden("cloud metadata"));
        }
        match special_kind(address) {
            Some(kind)
                if !self
                    .allowed_networks
                    .iter()
                    .any(|net| net.contains(&address)) =>
            {
                Err(forbidden(kind))
            }
            _ => Ok(()),
        }
    }

    /// Checks `url`'s form, the allow-list and, when its host is an IP
    /// literal, that address: what can be checked again without the
    /// network (a stored URL, each time it is used).
    ///
    /// # Errors
    /// See [`EgressError`].
    pub fn check_stored(&self, url: &Url) -> Result<(), EgressError> {
        self.check_url(url)?;
        match url.host() {
            Some(url::Host::Ipv4(v4)) => self.check_address(&v4.to_string(), IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => self.check_address(&v6.to_string(), IpAddr::V6(v6)),
            _ => Ok(()),
        }
    }

    /// Checks `url` ([`check_url`](Self::check_url)) and every address its
    /// host resolves to now.
    ///
    /// # Errors
    /// See [`EgressError`].
    pub async fn check(&self, url: &Url) -> Result<(), EgressError> {
        self.check_url(url)?;
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        for address in self.resolve(host, port).await? {
            self.check_address(host, address.ip())?;
        }
        Ok(())
    }

    /// The addresses of `host` (an IP literal is its own), every one
    /// checked.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(address) = literal.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(address, port)]);
        }
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| EgressError::Unresolved(host.to_owned()))?
            .collect();
        if addresses.is_empty() {
            return Err(EgressError::Unresolved(host.to_owned()));
        }
        Ok(addresses)
    }
}

/// An IPv4 address carried in IPv6 (mapped, or NAT64 `64:ff9b::/96`) as the
/// IPv4 address it is.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let segments = v6.segments();
            let v4_of = |high: u16, low: u16| {
                let ([a, b], [c, d]) = (high.to_be_bytes(), low.to_be_bytes());
                IpAddr::V4(Ipv4Addr::new(a, b, c, d))
            };
            // NAT64 (RFC 6052), IPv4-compatible (deprecated, RFC 4291
            // §2.5.5.1; not :: or ::1), 6to4 (RFC 3056).
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                || (segments[..6] == [0; 6] && segments[6] != 0)
            {
                return v4_of(segments[6], segments[7]);
            }
            if segments[0] == 0x2002 {
                return v4_of(segments[1], segments[2]);
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

fn is_metadata(address: IpAddr) -> bool {
    const AWS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    matches!(
        address,
        IpAddr::V4(v4) if v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(169, 254, 170, 2)
    ) || address == IpAddr::V6(AWS_V6)
}

/// What kind of non-public address `address` is, if it is one (RFC 6890's
/// special-purpose registries, the parts a request must not reach).
fn special_kind(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() || a == 0 {
                Some("unspecified")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared (carrier-grade NAT)")
            } else if v4.is_multicast() || v4.is_broadcast() || a >= 240 {
                Some("multicast or reserved")
            } else if (a, b) == (198, 18) || (a, b) == (198, 19) || (a, b, c) == (192, 0, 0) {
                Some("special-purpose")
            } else if v4.is_documentation() {
                Some("documentation")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if first & 0xffc0 == 0xfec0 {
                Some("site-local")
            } else if first == 0x64 && v6.segments()[1] == 0xff9b {
                Some("special-purpose (local NAT64)")
            } else if v6.is_multicast() {
                Some("multicast or reserved")
            } else if first == 0x2001 && v6.segments()[1] == 0xdb8 {
                Some("documentation")
            } else {
                None
            }
        }
    }
}

/// A resolver for [`reqwest`] that gives only the addresses the policy
/// allows: the check of [`EgressPolicy::check`] repeated at every new
/// connection, so that a name cannot change where it points after the
/// check (DNS rebinding). IP literals do not reach a resolver; they are
/// checked when connected ([`EgressPolicy::check`]), and cannot change.
pub struct GuardedResolver(pub Arc<EgressPolicy>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses = policy.resolve(&host, 0).await?;
            for address in &addresses {
                policy.check_address(&host, address.ip())?;
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(urls: &[&str], networks: &[&str]) -> EgressPolicy {
        EgressPolicy {
            allowed_urls: urls.iter().map(|u| UrlPattern::parse(u).unwrap()).collect(),
            allowed_networks: networks.iter().map(|n| n.parse().unwrap()).collect(),
        }
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn patterns_match_host_port_and_path_prefix() {
        let p = policy(
            &[
                "https://mcp.example.com/mcp",
                "https://*.tools.example/",
                "http://127.0.0.1:*/",
            ],
            &[],
        );
        for ok in [
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/mcp/x",
            "https://MCP.example.com:443/mcp",
            "https://a.tools.example/anything",
            "https://a.b.tools.example/",
            "http://127.0.0.1:9000/mcp",
        ] {
            assert!(p.check_url(&url(ok)).is_ok(), "{ok}");
        }
        for refused in [
            "https://mcp.example.com/mcpx",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "https://tools.example/",
            "https://evil.com/.tools.example/",
            "https://eviltools.example/",
            "https://mcp.example.com.evil.com/mcp",
            "http://127.0.0.2:9000/",
        ] {
            assert!(
                matches!(p.check_url(&url(refused)), Err(EgressError::NotAllowed(_))),
                "{refused}"
            );
        }
        assert!(matches!(
            p.check_url(&url("https://user:pw@mcp.example.com/mcp")),
            Err(EgressError::BadUrl(_))
        ));
        assert!(matches!(
            p.check_url(&url("file:///etc/passwd")),
            Err(EgressError::BadUrl(_))
        ));
        for bad in [
            "mcp.example.com",
            "ftp://x/",
            "https://a*b.example/",
            "https://x:port/",
        ] {
            assert!(UrlPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn non_public_addresses_are_refused_unless_allowed_and_metadata_always() {
        let p = policy(&[], &[]);
        for (address, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fc00::1", "private (unique local)"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
            ("2002:a9fe:a9fe::1", "cloud metadata"),
            ("2002:7f00:1::1", "loopback"),
            ("::10.0.0.1", "private"),
            ("fec0::1", "site-local"),
            ("64:ff9b:1::1", "special-purpose (local NAT64)"),
        ] {
            match p.check_address("h", address.parse().unwrap()) {
                Err(EgressError::Forbidden { kind: got, .. }) => assert_eq!(got, kind, "{address}"),
                other => panic!("{address}: {other:?}"),
            }
        }
        for public in ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"] {
            assert!(p.check_address("h", public.parse().unwrap()).is_ok());
        }
        let allowing = policy(&[], &["127.0.0.0/8", "169.254.0.0/16", "10.0.0.0/8"]);
        assert!(
            allowing
                .check_address("h", "127.0.0.1".parse().unwrap())
                .is_ok()
        );
        assert!(
            allowing
                .check_address("h", "10.0.0.7".parse().unwrap())
                .is_ok()
        );
        assert!(
            allowing
                .check_address("h", "169.254.169.254".parse().unwrap())
                .is_err()
        );
    }

    #[test]
    fn stored_urls_are_checked_again_without_the_network() {
        let p = policy(&["http://127.0.0.1:*/", "https://mcp.example.com/"], &[]);
        assert!(matches!(
            p.check_stored(&url("http://127.0.0.1:9/mcp")),
            Err(EgressError::Forbidden {
                kind: "loopback",
                ..
            })
        ));
        assert!(p.check_stored(&url("https://mcp.example.com/mcp")).is_ok());
        let tightened = policy(&["https://other.example.com/"], &[]);
        assert!(matches!(
            tightened.check_stored(&url("https://mcp.example.com/mcp")),
            Err(EgressError::NotAllowed(_))
        ));
    }

    #[tokio::test]
    async fn names_are_checked_by_what_they_resolve_to() {
        let p = policy(&["http://localhost:*/"], &[]);
        let refused = p.check(&url("http://localhost:9/mcp")).await;
        assert!(
            matches!(
                refused,
                Err(EgressError::Forbidden {
                    kind: "loopback",
                    ..
                })
            ),
            "{refused:?}"
        );
        let p = policy(&["http://[::1]:*/", "http://127.0.0.1:*/"], &[]);
        assert!(p.check(&url("http://[::1]:9/")).await.is_err());
        assert!(p.check(&url("http://127.0.0.1:9/")).await.is_err());
    }
}
