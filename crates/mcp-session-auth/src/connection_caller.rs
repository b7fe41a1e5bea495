//! The anonymous caller a client connection last resolved, kept for its
//! next requests.
//!
//! An anonymous caller's [`UserHash`](mcp_session_core::identity::UserHash)
//! is a SHA-256 of its client address and `User-Agent`, and the requests of
//! a kept-alive connection almost always carry the same ones: resolving it
//! anew for each was about 4% of a tool call's instructions, and over 5% of
//! a session start's, on a CPU without SHA extensions
//! (`scripts/callgrind.sh`; docs/benchmarks.md).
//!
//! The server puts one [`ConnectionCaller`] per connection into each of its
//! requests' extensions (as an `Arc`); [`admit`](crate::admit) uses it. It
//! never names anyone but the request's own client: the caller is reused
//! only for the same client address (as the trusted proxies report it) and
//! the same `User-Agent` bytes, so a proxy that sends many clients' requests
//! over one connection gets each client's own caller.

use std::{
    net::IpAddr,
    sync::{Mutex, PoisonError},
};

use http::{HeaderMap, header::USER_AGENT};
use mcp_session_core::identity::Caller;

use crate::anonymous;

/// Longest `User-Agent`, in bytes, whose caller is kept: longer ones are
/// resolved every time (rather than keeping a large copy per connection).
const MAX_KEPT_AGENT: usize = 1024;

/// One connection's last anonymous caller (see the module docs).
#[derive(Debug, Default)]
pub struct ConnectionCaller(Mutex<Option<Kept>>);

#[derive(Debug)]
struct Kept {
    client: Option<IpAddr>,
    agent: Box<[u8]>,
    caller: Caller,
}

impl ConnectionCaller {
    /// The anonymous caller of a request with `headers` from `peer` behind
    /// `trusted_hops` proxies: the one kept, when the client address and
    /// `User-Agent` are those it was resolved for; else resolved anew
    /// (and kept).
    pub(crate) fn caller(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        trusted_hops: usize,
    ) -> Caller {
        let client = anonymous::client_ip(headers, peer, trusted_hops);
        let agent = headers
            .get(USER_AGENT)
            .map_or(&[][..], |value| value.as_bytes());
        // A connection serves one request at a time (HTTP/2: a few): the
        // lock is not contended.
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = kept.as_ref()
            && kept.client == client
            && *kept.agent == *agent
        {
            return kept.caller.clone();
        }
        let caller = anonymous::caller_of(client, headers);
        *kept = (agent.len() <= MAX_KEPT_AGENT).then(|| Kept {
            client,
            agent: agent.into(),
            caller: caller.clone(),
        });
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
        let connection = ConnectionCaller::default();
        let cases = [
            (headers("agent-a", None), ip("10.0.0.1"), 0),
            (headers("agent-a", None), ip("10.0.0.1"), 0),
            (headers("agent-b", None), ip("10.0.0.1"), 0),
            (headers("agent-b", None), ip("10.0.0.1"), 0),
            (headers("agent-a", None), ip("10.0.0.2"), 0),
            (headers("agent-a", None), None, 0),
        ];
        for (headers, peer, hops) in cases {
            assert_eq!(
                connection.caller(&headers, peer, hops),
                anonymous::caller(&headers, peer, hops)
            );
        }
    }

    #[test]
    fn clients_behind_one_proxy_connection_keep_their_own_callers() {
        // An ALB sends two clients' requests over one connection.
        let connection = ConnectionCaller::default();
        let proxy = ip("10.0.0.9");
        let first = headers("same-agent", Some("203.0.113.7"));
        let second = headers("same-agent", Some("198.51.100.2"));
        let a = connection.caller(&first, proxy, 1);
        let b = connection.caller(&second, proxy, 1);
        assert_ne!(a.user_hash, b.user_hash);
        assert_eq!(a, anonymous::caller(&first, proxy, 1));
        assert_eq!(b, anonymous::caller(&second, proxy, 1));
        assert_eq!(connection.caller(&first, proxy, 1), a);
    }

    #[test]
    fn long_agents_are_resolved_every_time_and_not_kept() {
        let connection = ConnectionCaller::default();
        let long = headers(&"x".repeat(MAX_KEPT_AGENT + 1), None);
        let caller = connection.caller(&long, ip("10.0.0.1"), 0);
        assert_eq!(caller, anonymous::caller(&long, ip("10.0.0.1"), 0));
        assert!(connection.0.lock().unwrap().is_none());
    }
}
