//! Anonymous callers (`ALLOW_ANONYMOUS=true`): told apart by client address
//! and `User-Agent`.
//!
//! The client address is the TCP peer, unless `TRUSTED_PROXY_HOPS` says how
//! many proxies (an ALB is one; CloudFront + ALB two) stand in front of the
//! service: each appends the address it received the request from to
//! `X-Forwarded-For`, so the client is the `TRUSTED_PROXY_HOPS`-th entry from
//! the right. Entries further left are whatever the client wrote and are
//! never trusted.
//!
//! This is a weak identity: clients behind one NAT with the same agent share
//! it. It only keeps unauthenticated clients' sessions apart; configure JWTs
//! or API keys to know who is calling.

use std::{
    fmt::Write as _,
    net::{IpAddr, SocketAddr},
};

use http::{HeaderMap, header::USER_AGENT};

use mcp_session_core::identity::{Caller, PrincipalKind};

/// Longest `User-Agent` kept, in bytes.
const MAX_USER_AGENT: usize = 256;

/// The `X-Forwarded-For` header (a de facto standard; RFC 7239 §5.2 names
/// its successor `Forwarded: for=`).
const X_FORWARDED_FOR: &str = "x-forwarded-for";

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Reads one `X-Forwarded-For` entry: an address, possibly with a port
/// (`1.2.3.4:5678`, `[2001:db8::1]:443`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim().trim_matches('"');
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

/// The client's address: the peer, or the entry `trusted_hops` from the
/// right of `X-Forwarded-For` (the left-most entry when there are fewer;
/// the peer when there is no usable one).
pub fn client_ip(headers: &HeaderMap, peer: Option<IpAddr>, trusted_hops: usize) -> Option<IpAddr> {
    if trusted_hops == 0 {
        return peer.map(canonical);
    }
    let entries: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    let chosen = entries
        .len()
        .checked_sub(trusted_hops)
        .map_or(entries.first(), |index| entries.get(index));
    chosen
        .and_then(|entry| parse_entry(entry))
        .or(peer)
        .map(canonical)
}

/// The anonymous [`Caller`] of a request from `peer`, resolved anew (what
/// [`KnownCallers`](crate::known_callers::KnownCallers) must agree with).
#[cfg(test)]
pub(crate) fn caller(headers: &HeaderMap, peer: Option<IpAddr>, trusted_hops: usize) -> Caller {
    caller_of(client_ip(headers, peer, trusted_hops), headers)
}

/// The anonymous [`Caller`] of a request with `headers` from the client
/// address `client` (as [`client_ip`] found it).
pub(crate) fn caller_of(client: Option<IpAddr>, headers: &HeaderMap) -> Caller {
    let agent = headers
        .get(USER_AGENT)
        .map(|value| String::from_utf8_lossy(value.as_bytes()))
        .unwrap_or_default();
    let mut end = agent.len().min(MAX_USER_AGENT);
    while !agent.is_char_boundary(end) {
        end -= 1;
    }
    // `<client ip>|<user agent>`, as `Caller::anonymous_client` writes it,
    // with an IPv4 address written without `fmt` (a third of the
    // instructions of resolving an anonymous caller).
    let mut subject = String::with_capacity(40 + end);
    match client {
        Some(IpAddr::V4(ip)) => {
            for (index, octet) in ip.octets().into_iter().enumerate() {
                if index > 0 {
                    subject.push('.');
                }
                subject.push_str(itoa::Buffer::new().format(octet));
            }
        }
        Some(ip) => {
            // Writing into a `String` cannot fail.
            let _ = write!(subject, "{ip}");
        }
        None => subject.push_str("unknown"),
    }
    subject.push('|');
    subject.push_str(&agent[..end]);
    Caller::new(PrincipalKind::Anonymous, "", subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_subject_is_the_client_address_and_agent() {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, "python-httpx/0.28".parse().unwrap());
        for peer in [ip("203.0.113.255"), ip("0.0.0.0"), ip("2001:db8::1"), None] {
            let written = peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
            assert_eq!(
                caller(&headers, peer, 0),
                Caller::anonymous_client(&written, "python-httpx/0.28")
            );
        }
        assert_eq!(
            caller(&HeaderMap::new(), ip("10.1.2.3"), 0),
            Caller::anonymous_client("10.1.2.3", "")
        );
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let headers = forwarded(&["6.6.6.6"]);
        assert_eq!(client_ip(&headers, ip("10.0.0.9"), 0), ip("10.0.0.9"));
        assert_eq!(
            client_ip(&headers, ip("::ffff:10.0.0.9"), 0),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn trusted_hops_count_from_the_right() {
        // The client forged the first entry; the ALB appended the real one.
        let headers = forwarded(&["6.6.6.6, 203.0.113.7"]);
        assert_eq!(client_ip(&headers, ip("10.0.0.9"), 1), ip("203.0.113.7"));
        let headers = forwarded(&["6.6.6.6", "203.0.113.7, 198.51.100.2"]);
        assert_eq!(client_ip(&headers, ip("10.0.0.9"), 2), ip("203.0.113.7"));
        // Fewer entries than hops: the left-most one we have.
        assert_eq!(client_ip(&headers, ip("10.0.0.9"), 5), ip("6.6.6.6"));
        // No usable entry: the peer.
        assert_eq!(
            client_ip(&forwarded(&["garbage"]), ip("10.0.0.9"), 1),
            ip("10.0.0.9")
        );
        assert_eq!(
            client_ip(&forwarded(&["[2001:db8::1]:443"]), None, 1),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn agents_tell_clients_apart() {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, "python-httpx/0.28".parse().unwrap());
        let a = caller(&headers, ip("10.0.0.1"), 0);
        headers.insert(USER_AGENT, "node".parse().unwrap());
        let b = caller(&headers, ip("10.0.0.1"), 0);
        assert_ne!(a.user_hash, b.user_hash);
        assert_eq!(a.subject, "10.0.0.1|python-httpx/0.28");
    }
}
