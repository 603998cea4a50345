//! Client IP resolution shared by the IP allowlist and the rate limiter.
//!
//! The client IP is the TCP peer address, read from axum's `ConnectInfo<SocketAddr>` (the server
//! must be started with `into_make_service_with_connect_info::<SocketAddr>()`; see
//! [`super::serve`]). Only when the peer is a **trusted proxy** is `X-Forwarded-For` consulted:
//! the entries (all `X-Forwarded-For` headers, in order) are walked from the right, skipping
//! trusted proxies, and the first untrusted address is the client. A forged header sent directly
//! by a client (untrusted peer) is therefore ignored, and a forged left-most entry behind a
//! trusted proxy is never reached.
//!
//! If every entry is a trusted proxy, the left-most one is used; if an entry does not parse before
//! an untrusted address is found, the peer address is used (fail closed: the proxy is then
//! treated as the client).

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request};
use ipnet::IpNet;

/// Header consulted behind trusted proxies.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The resolved client IP, inserted as a request extension by the webhook middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// Which peers may set `X-Forwarded-For`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIpPolicy {
    trusted_proxies: Vec<IpNet>,
}

impl ClientIpPolicy {
    /// Trust `X-Forwarded-For` only from peers inside `trusted_proxies` (empty: never).
    pub fn new(trusted_proxies: Vec<IpNet>) -> Self {
        Self { trusted_proxies }
    }

    /// The configured trusted proxy ranges.
    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.trusted_proxies
    }

    /// Whether `ip` is inside a trusted proxy range.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }

    /// The client IP for a request from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        let entries: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut leftmost_trusted = None;
        for entry in entries.iter().rev() {
            let Some(ip) = parse_forwarded_ip(entry) else {
                return peer;
            };
            if !self.is_trusted(ip) {
                return ip;
            }
            leftmost_trusted = Some(ip);
        }
        leftmost_trusted.unwrap_or(peer)
    }

    /// The client IP of an axum request, or `None` when the server was not started with
    /// `ConnectInfo<SocketAddr>`.
    pub fn client_ip_of<B>(&self, req: &Request<B>) -> Option<IpAddr> {
        if let Some(ClientIp(ip)) = req.extensions().get::<ClientIp>() {
            return Some(*ip);
        }
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())?;
        Some(self.client_ip(peer, req.headers()))
    }
}

/// Parses an `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = entry.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    entry
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

/// A CIDR list in an environment variable is malformed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid CIDR or IP address `{0}`")]
pub struct InvalidCidr(pub String);

/// Parses a comma-separated list of CIDRs; a bare address means a single host (`/32`, `/128`).
/// Blank entries are skipped.
pub fn parse_cidr_list(list: &str) -> Result<Vec<IpNet>, InvalidCidr> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| InvalidCidr(s.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn untrusted_peer_ignores_xff() {
        let p = ClientIpPolicy::new(parse_cidr_list("10.0.0.0/8").unwrap());
        assert_eq!(
            p.client_ip(ip("198.51.100.1"), &xff(&["203.0.113.7"])),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn rightmost_untrusted_wins() {
        let p = ClientIpPolicy::new(parse_cidr_list("10.0.0.0/8, 127.0.0.1").unwrap());
        let peer = ip("127.0.0.1");
        assert_eq!(p.client_ip(peer, &xff(&["203.0.113.7"])), ip("203.0.113.7"));
        assert_eq!(
            p.client_ip(peer, &xff(&["1.1.1.1, 203.0.113.7, 10.0.0.2"])),
            ip("203.0.113.7")
        );
        // multiple headers are one list, in order
        assert_eq!(
            p.client_ip(peer, &xff(&["1.1.1.1", "203.0.113.7:443", "10.0.0.2"])),
            ip("203.0.113.7")
        );
        assert_eq!(
            p.client_ip(peer, &xff(&["[2001:db8::1]:80"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            p.client_ip(peer, &xff(&["10.0.0.9, 10.0.0.2"])),
            ip("10.0.0.9")
        );
        assert_eq!(p.client_ip(peer, &xff(&[])), peer);
        assert_eq!(p.client_ip(peer, &xff(&["1.1.1.1, bogus"])), peer);
        // IPv4-mapped peer is canonicalised before the trust check
        assert_eq!(
            p.client_ip(ip("::ffff:127.0.0.1"), &xff(&["203.0.113.7"])),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn cidr_lists() {
        assert_eq!(parse_cidr_list("").unwrap(), vec![]);
        assert_eq!(
            parse_cidr_list("10.1.2.3/8, ::1").unwrap(),
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        assert_eq!(
            parse_cidr_list("10.0.0.0/8,nope").unwrap_err(),
            InvalidCidr("nope".into())
        );
    }
}
