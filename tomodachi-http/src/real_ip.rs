//! The client's address: the peer's, or a proxy header's when the peer is trusted.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;
use http::{HeaderName, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::options::OptionError;

/// The client's IP address as the access log and handlers see it (tomodachi's
/// `get_forwarded_remote_ip`).
///
/// It is the peer's address, unless the peer is inside one of `real_ip_from`'s CIDRs and
/// sent `real_ip_header`: then it is that header's first comma-separated item (stripped,
/// its first space-separated token). A header from any other peer is ignored.
///
/// As an extractor it is the [`RealIpLayer`]'s answer, else the peer's address from
/// [`ConnectInfo<SocketAddr>`] (the server adds a `RealIpLayer` only when `real_ip_from`
/// names trusted peers); it is missing (500) when the request has neither.
///
/// ```
/// use tomodachi_http::RealIp;
///
/// async fn whoami(RealIp(ip): RealIp) -> String {
///     ip.to_string()
/// }
/// # let _: axum::routing::MethodRouter = axum::routing::get(whoami);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RealIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for RealIp {
    type Rejection = (http::StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RealIp>()
            .copied()
            .or_else(|| {
                let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
                Some(RealIp(peer.0.ip()))
            })
            .ok_or((
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "RealIp needs tomodachi_http::RealIpLayer or ConnectInfo<SocketAddr>",
            ))
    }
}

/// A network: an address and a prefix length (`10.0.0.0/8`, `::1`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(text: &str) -> Result<Self, OptionError> {
        let bad = || {
            OptionError::new(
                "real_ip_from",
                format!("Bad value for http option real_ip_from: {text}"),
            )
        };
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }

    /// Is `ip` inside this network? (IPv4-mapped IPv6 peers match IPv4 networks.)
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
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

pub(crate) fn parse_cidrs(items: &[String]) -> Result<Vec<Cidr>, OptionError> {
    items
        .iter()
        .flat_map(|item| item.split(','))
        .filter(|item| !item.trim().is_empty())
        .map(Cidr::parse)
        .collect()
}

/// Inserts [`RealIp`] into each request, from [`ConnectInfo<SocketAddr>`] and the trusted
/// header (requests without `ConnectInfo` count as coming from `0.0.0.0`).
#[derive(Debug, Clone)]
pub struct RealIpLayer {
    trusted: Arc<[Cidr]>,
    header: HeaderName,
}

impl RealIpLayer {
    /// Trusts `header` from peers inside `trusted`.
    pub fn new(trusted: Vec<Cidr>, header: HeaderName) -> Self {
        Self {
            trusted: trusted.into(),
            header,
        }
    }

    /// From the `real_ip_from` and `real_ip_header` options.
    pub fn from_options(options: &crate::HttpOptions) -> Result<Self, OptionError> {
        let header = HeaderName::try_from(options.real_ip_header.trim()).map_err(|_| {
            OptionError::new(
                "real_ip_header",
                format!(
                    "Bad value for http option real_ip_header: {}",
                    options.real_ip_header
                ),
            )
        })?;
        Ok(Self::new(parse_cidrs(&options.real_ip_from)?, header))
    }

    /// Whether any peer is trusted (else every request's address is its peer's).
    pub fn trusts_any(&self) -> bool {
        !self.trusted.is_empty()
    }

    /// The client address of a request from `peer` with these headers.
    pub fn resolve(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        if self.trusted.is_empty() || !self.trusted.iter().any(|cidr| cidr.contains(peer)) {
            return peer;
        }
        headers
            .get(&self.header)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .and_then(|first| first.split_whitespace().next())
            .and_then(|token| token.parse().ok())
            .unwrap_or(peer)
    }
}

impl<S> Layer<S> for RealIpLayer {
    type Service = RealIpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RealIpService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`RealIpLayer`].
#[derive(Debug, Clone)]
pub struct RealIpService<S> {
    inner: S,
    layer: RealIpLayer,
}

impl<S> RealIpService<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
    /// The wrapped service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for RealIpService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        let ip = self.layer.resolve(peer, req.headers());
        req.extensions_mut().insert(RealIp(ip));
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_match_v4_v6_and_mapped() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            Cidr::parse("::/0")
                .unwrap()
                .contains("2001:db8::1".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
    }

    #[test]
    fn header_trusted_only_from_trusted_peers() {
        let layer = RealIpLayer::new(
            vec![Cidr::parse("10.0.0.0/8").unwrap()],
            HeaderName::from_static("x-forwarded-for"),
        );
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            " 1.2.3.4 extra, 5.6.7.8".parse().unwrap(),
        );
        assert_eq!(
            layer.resolve("10.0.0.9".parse().unwrap(), &headers),
            IpAddr::from([1, 2, 3, 4])
        );
        assert_eq!(
            layer.resolve("192.168.0.1".parse().unwrap(), &headers),
            IpAddr::from([192, 168, 0, 1])
        );
    }
}
