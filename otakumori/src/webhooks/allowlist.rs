//! Optional IP allowlist (`WEBHOOK_IP_ALLOWLIST`) and the middleware that resolves the client IP.
//!
//! The middleware runs first on every webhook route: it resolves the client IP with
//! [`ClientIpPolicy`], stores it as a [`ClientIp`] request extension (which the rate limiter key
//! extractor then reuses), and answers **403** `{"error":"client address not allowed"}` when an
//! allowlist is configured and the client is outside it. Without `ConnectInfo<SocketAddr>` and
//! with an allowlist configured, it fails closed with **500**.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use super::client_ip::{ClientIp, ClientIpPolicy};
use super::error_response;

/// A set of allowed networks; empty means "allow everyone".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAllowlist {
    nets: Vec<IpNet>,
}

impl IpAllowlist {
    /// Allow only `nets` (empty: no restriction).
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets }
    }

    /// Whether a restriction is configured.
    pub fn is_enabled(&self) -> bool {
        !self.nets.is_empty()
    }

    /// Whether `ip` may call the webhook routes.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        !self.is_enabled() || self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The configured networks.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

/// State of the client-IP/allowlist middleware.
#[derive(Debug, Clone)]
pub(crate) struct IpGate {
    pub(crate) policy: Arc<ClientIpPolicy>,
    pub(crate) allowlist: IpAllowlist,
}

/// Resolves the client IP, records it as an extension and enforces the allowlist.
pub(crate) async fn ip_gate(State(gate): State<IpGate>, mut req: Request, next: Next) -> Response {
    match gate.policy.client_ip_of(&req) {
        Some(ip) => {
            req.extensions_mut().insert(ClientIp(ip));
            if !gate.allowlist.allows(ip) {
                tracing::warn!(client_ip = %ip, path = %req.uri().path(), "webhook request from address outside WEBHOOK_IP_ALLOWLIST");
                return error_response(StatusCode::FORBIDDEN, "client address not allowed");
            }
        }
        None if gate.allowlist.is_enabled() => {
            tracing::error!("webhook IP allowlist configured but the peer address is unknown; serve with into_make_service_with_connect_info::<SocketAddr>()");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "client address unavailable",
            );
        }
        None => {}
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::client_ip::parse_cidr_list;

    #[test]
    fn allowlist() {
        let open = IpAllowlist::default();
        assert!(open.allows("1.2.3.4".parse().unwrap()));
        let a = IpAllowlist::new(parse_cidr_list("203.0.113.0/24,2001:db8::/32").unwrap());
        assert!(a.allows("203.0.113.200".parse().unwrap()));
        assert!(a.allows("::ffff:203.0.113.1".parse().unwrap()));
        assert!(a.allows("2001:db8::5".parse().unwrap()));
        assert!(!a.allows("203.0.114.1".parse().unwrap()));
    }
}
