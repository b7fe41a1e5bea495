//! Anonymous callers already resolved, kept for their next requests.
//!
//! An anonymous caller's [`UserHash`](mcp_session_core::identity::UserHash)
//! is a SHA-256 of its client address and `User-Agent`, and a client sends
//! the same ones request after request: resolving it anew each time was
//! about 7k instructions per request on a CPU without SHA extensions (a
//! third of them writing the address through `fmt`), some 4% of a tool
//! call (`scripts/callgrind.sh`, docs/benchmarks.md). A bounded cache
//! (quick_cache, with its seeded hasher) keeps the callers of the clients
//! seen last, whatever connection their requests arrive on: behind an ALB,
//! one connection carries many clients' requests, and one client's requests
//! many connections.
//!
//! It never names anyone but the request's own client: an entry is found
//! only by the exact client address (as the trusted proxies report it) and
//! `User-Agent` bytes it was resolved from, which determine the caller.

use std::net::IpAddr;

use http::{HeaderMap, header::USER_AGENT};
use mcp_session_core::identity::Caller;
use quick_cache::{Equivalent, sync::Cache};

use crate::anonymous;

/// Clients whose callers are kept (about 300 bytes each).
const CAPACITY: usize = 10_000;

/// Longest `User-Agent`, in bytes, whose caller is kept: longer ones are
/// resolved every time rather than kept in a large key.
const MAX_KEPT_AGENT: usize = 1024;

/// A kept client: its address and exact `User-Agent` bytes.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Client {
    address: Option<IpAddr>,
    agent: Box<[u8]>,
}

/// A request's client, borrowed from its headers for the lookup. Hashes as
/// [`Client`] does (the same fields, in the same order, of types that hash
/// alike).
#[derive(Hash)]
struct ClientRef<'a> {
    address: Option<IpAddr>,
    agent: &'a [u8],
}

impl Equivalent<Client> for ClientRef<'_> {
    fn equivalent(&self, client: &Client) -> bool {
        self.address == client.address && self.agent == &*client.agent
    }
}

/// The anonymous callers of the clients seen last (see the module docs).
pub(crate) struct KnownCallers(Cache<Client, Caller>);

impl Default for KnownCallers {
    fn default() -> Self {
        Self(Cache::new(CAPACITY))
    }
}

impl std::fmt::Debug for KnownCallers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownCallers")
            .field("clients", &self.0.len())
            .finish()
    }
}

impl KnownCallers {
    /// The anonymous caller of a request with `headers` from `peer` behind
    /// `trusted_hops` proxies: the one kept for its client, else resolved
    /// (and kept).
    pub(crate) fn caller(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        trusted_hops: usize,
    ) -> Caller {
        let address = anonymous::client_ip(headers, peer, trusted_hops);
        let agent = headers
            .get(USER_AGENT)
            .map_or(&[][..], |value| value.as_bytes());
        let client = ClientRef { address, agent };
        if let Some(caller) = self.0.get(&client) {
            return caller;
        }
        let caller = anonymous::caller_of(address, headers);
        if agent.len() <= MAX_KEPT_AGENT {
            let client = Client {
                address,
                agent: agent.into(),
            };
            self.0.insert(client, caller.clone());
        }
        caller
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(agent: &str, forwarded: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, agent.parse().unwrap());
        if let Some(forwarded) = forwarded {
            headers.insert("x-forwarded-for", forwarded.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn gives_the_caller_resolving_would_give() {
        let known = KnownCallers::default();
        let cases = [
            (headers("agent-a", None), ip("10.0.0.1"), 0),
            (headers("agent-a", None), ip("10.0.0.1"), 0),
            (headers("agent-b", None), ip("10.0.0.1"), 0),
            (headers("agent-b", None), ip("10.0.0.1"), 0),
            (headers("agent-a", None), ip("10.0.0.2"), 0),
            (headers("agent-a", None), ip("::ffff:10.0.0.2"), 0),
            (headers("agent-a", None), None, 0),
            (HeaderMap::new(), ip("10.0.0.2"), 0),
        ];
        for (headers, peer, hops) in cases {
            assert_eq!(
                known.caller(&headers, peer, hops),
                anonymous::caller(&headers, peer, hops)
            );
        }
        assert_eq!(known.0.len(), 5);
    }

    #[test]
    fn clients_behind_one_proxy_keep_their_own_callers() {
        // An ALB sends two clients' requests over one connection.
        let known = KnownCallers::default();
        let proxy = ip("10.0.0.9");
        let first = headers("same-agent", Some("203.0.113.7"));
        let second = headers("same-agent", Some("198.51.100.2"));
        let a = known.caller(&first, proxy, 1);
        let b = known.caller(&second, proxy, 1);
        assert_ne!(a.user_hash, b.user_hash);
        assert_eq!(a, anonymous::caller(&first, proxy, 1));
        assert_eq!(b, anonymous::caller(&second, proxy, 1));
        assert_eq!(known.caller(&first, proxy, 1), a);
    }

    #[test]
    fn long_agents_are_resolved_every_time_and_not_kept() {
        let known = KnownCallers::default();
        let long = headers(&"x".repeat(MAX_KEPT_AGENT + 1), None);
        let caller = known.caller(&long, ip("10.0.0.1"), 0);
        assert_eq!(caller, anonymous::caller(&long, ip("10.0.0.1"), 0));
        assert_eq!(known.0.len(), 0);
    }

    #[test]
    fn holds_at_most_its_capacity() {
        let known = KnownCallers::default();
        for index in 0..(CAPACITY + 2_000) {
            known.caller(&headers(&format!("agent-{index}"), None), ip("10.0.0.1"), 0);
        }
        assert!(known.0.len() <= CAPACITY, "{} kept", known.0.len());
    }
}
