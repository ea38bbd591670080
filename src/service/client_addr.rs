//! Which address a request came from: the connection's peer, or — only when
//! that peer is a trusted proxy — the client a proxy header names.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The remote address of the connection a request arrived on.
///
/// The server inserts it into the request's extensions (the way axum's
/// `ConnectInfo` does); the ingest service reads it for IP allowlists.
///
/// ```
/// use hookroom::service::PeerAddr;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(PeerAddr("192.0.2.7:55123".parse().unwrap()));
/// assert!(request.extensions().get::<PeerAddr>().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// The one header a trusted proxy sets to name the client.
///
/// Only this header is read: proxies commonly pass other forwarding headers
/// from the client through untouched, so falling back to a second header
/// would let a client choose its own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// Resolves the client address of a request.
///
/// Proxy headers are believed only when the connection's peer is in
/// `trusted`: then the configured header's chain is walked from the right,
/// skipping trusted proxies, and the first untrusted hop is the client.
/// Fails closed: a trusted peer without the header, or a hop that does not
/// parse before an untrusted one is found, gives `None` (unknown client), so
/// a forged or broken header never widens access.
pub(crate) fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ProxyHeader,
) -> Option<IpAddr> {
    let peer = canonical(peer?);
    if !is_in(peer, trusted) {
        return Some(peer);
    }
    let chain = match header {
        ProxyHeader::XForwardedFor => x_forwarded_for_chain(headers),
        ProxyHeader::Forwarded => forwarded_chain(headers),
    };
    let mut leftmost = None;
    for hop in chain.iter().rev() {
        let hop = (*hop)?;
        if !is_in(hop, trusted) {
            return Some(hop);
        }
        leftmost = Some(hop);
    }
    // Every hop is a trusted proxy: the leftmost one is as close to the
    // client as the chain goes.
    leftmost
}

/// Whether `ip` lies in any of `nets`.
pub(crate) fn is_in(ip: IpAddr, nets: &[IpNet]) -> bool {
    let ip = canonical(ip);
    nets.iter().any(|net| net.contains(&ip))
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what dual-stack sockets
/// report) compared as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The hops of every `X-Forwarded-For` value, left to right; `None` marks a
/// hop that does not parse (a value that is not text is one such hop).
fn x_forwarded_for_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut chain = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(text) => chain.extend(text.split(',').map(|item| parse_node(item.trim()))),
            Err(_) => chain.push(None),
        }
    }
    chain
}

/// The `for=` nodes of every `Forwarded` element, left to right; `None`
/// marks a node that does not parse (e.g. `for=unknown` or an obfuscated id).
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut chain = Vec::new();
    for value in headers.get_all(http::header::FORWARDED) {
        let Ok(text) = value.to_str() else {
            chain.push(None);
            continue;
        };
        for element in text.split(',') {
            for pair in element.split(';') {
                let Some((key, node)) = pair.trim().split_once('=') else {
                    continue;
                };
                if key.trim().eq_ignore_ascii_case("for") {
                    chain.push(parse_node(node.trim().trim_matches('"')));
                }
            }
        }
    }
    chain
}

/// `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:80` or `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    let inner = node.strip_prefix('[')?.split(']').next()?;
    inner.parse::<IpAddr>().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let ip = client_ip(
            Some("203.0.113.9".parse().unwrap()),
            &headers(&[("x-forwarded-for", "10.0.0.1")]),
            &nets(&["10.0.0.0/8"]),
            ProxyHeader::XForwardedFor,
        );
        assert_eq!(ip, Some("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn trusted_peer_yields_rightmost_untrusted_hop() {
        let ip = client_ip(
            Some("10.0.0.2".parse().unwrap()),
            &headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.4, 10.0.0.3")]),
            &nets(&["10.0.0.0/8"]),
            ProxyHeader::XForwardedFor,
        );
        assert_eq!(ip, Some("198.51.100.4".parse().unwrap()));
    }

    #[test]
    fn forwarded_header_is_read_when_configured() {
        let ip = client_ip(
            Some("10.0.0.2".parse().unwrap()),
            &headers(&[
                (
                    "forwarded",
                    "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.5",
                ),
                ("x-forwarded-for", "9.9.9.9"),
            ]),
            &nets(&["10.0.0.0/8"]),
            ProxyHeader::Forwarded,
        );
        assert_eq!(ip, Some("2001:db8::7".parse().unwrap()));
    }

    #[test]
    fn garbage_header_means_unknown_client() {
        let ip = client_ip(
            Some("10.0.0.2".parse().unwrap()),
            &headers(&[("x-forwarded-for", "not an ip")]),
            &nets(&["10.0.0.0/8"]),
            ProxyHeader::XForwardedFor,
        );
        assert_eq!(ip, None);
    }

    #[test]
    fn an_unparseable_hop_before_the_client_means_unknown_client() {
        // The proxy appended the real client (203.0.113.50) after a forged
        // entry; the forged entry must not make the proxy count as the client.
        let ip = client_ip(
            Some("10.0.0.2".parse().unwrap()),
            &headers(&[("x-forwarded-for", "x, 10.0.0.9")]),
            &nets(&["10.0.0.0/8"]),
            ProxyHeader::XForwardedFor,
        );
        assert_eq!(ip, None);
        let ip = client_ip(
            Some("10.0.0.2".parse().unwrap()),
            &headers(&[("x-forwarded-for", "x, 203.0.113.50")]),
            &nets(&["10.0.0.0/8"]),
            ProxyHeader::XForwardedFor,
        );
        assert_eq!(ip, Some("203.0.113.50".parse().unwrap()));
    }

    #[test]
    fn a_client_sent_forwarded_header_is_ignored_behind_an_xff_proxy() {
        let ip = client_ip(
            Some("10.0.0.2".parse().unwrap()),
            &headers(&[
                ("forwarded", "for=140.82.112.5"),
                ("x-forwarded-for", "203.0.113.50"),
            ]),
            &nets(&["10.0.0.0/8"]),
            ProxyHeader::XForwardedFor,
        );
        assert_eq!(ip, Some("203.0.113.50".parse().unwrap()));
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_unknown() {
        let ip = client_ip(
            Some("10.0.0.2".parse().unwrap()),
            &HeaderMap::new(),
            &nets(&["10.0.0.0/8"]),
            ProxyHeader::XForwardedFor,
        );
        assert_eq!(ip, None);
    }

    #[test]
    fn mapped_ipv4_matches_ipv4_nets() {
        assert!(is_in(
            "::ffff:192.0.2.1".parse().unwrap(),
            &nets(&["192.0.2.0/24"])
        ));
    }

    #[test]
    fn no_peer_means_unknown() {
        assert_eq!(
            client_ip(None, &HeaderMap::new(), &[], ProxyHeader::default()),
            None
        );
    }
}
