//! Which peers an allocation may relay to. TURN must not be an open relay:
//! by default the only peers are Salon's own media addresses (a client
//! needs nothing else to reach its rooms). An operator may allow more
//! networks, but never loopback, private, shared (CGNAT), link-local (cloud
//! metadata lives at 169.254.169.254), multicast or unspecified addresses,
//! unless one of them is Salon's media address itself.

use std::net::{IpAddr, SocketAddr};

/// An IP network, `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let shift = 32 - u32::from(self.prefix.min(32));
                shift == 32 || (u32::from(net) >> shift) == (u32::from(ip) >> shift)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let shift = 128 - u32::from(self.prefix.min(128));
                shift == 128 || (u128::from(net) >> shift) == (u128::from(ip) >> shift)
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP network (like 203.0.113.0/24)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0–{max}"))?,
        };
        Ok(Network { addr, prefix })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The peers allocations may reach.
#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    /// Salon's media addresses: always allowed, port included.
    pub media: Vec<SocketAddr>,
    /// Networks the operator allows besides (public addresses only).
    pub allowed: Vec<Network>,
}

impl PeerPolicy {
    /// Whether a permission for `ip` may be installed (RFC 8656 permissions
    /// are per IP; ports are checked again when data is sent).
    pub fn permits_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.media.iter().any(|m| canonical(m.ip()) == ip)
            || (!forbidden(ip) && self.allowed.iter().any(|n| n.contains(ip)))
    }

    /// Whether data may go to `peer`.
    pub fn permits(&self, peer: SocketAddr) -> bool {
        let ip = canonical(peer.ip());
        self.media
            .iter()
            .any(|m| canonical(m.ip()) == ip && m.port() == peer.port())
            || (!forbidden(ip) && self.allowed.iter().any(|n| n.contains(ip)))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Addresses no operator setting opens.
fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_multicast()
                || ip.is_broadcast()
                || ip.is_unspecified()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || a >= 240
        }
        IpAddr::V6(ip) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254 is a metadata address)
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first == 0x64 && ip.segments()[1] == 0xff9b) // NAT64 may reach private IPv4
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> PeerPolicy {
        PeerPolicy {
            media: vec!["127.0.0.1:7882".parse().unwrap()],
            allowed: allowed.iter().map(|n| n.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn by_default_only_the_media_address_is_a_peer() {
        let p = policy(&[]);
        assert!(p.permits("127.0.0.1:7882".parse().unwrap()));
        assert!(p.permits("[::ffff:127.0.0.1]:7882".parse().unwrap()));
        assert!(!p.permits("127.0.0.1:22".parse().unwrap()));
        assert!(!p.permits_ip("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn allowed_networks_never_open_private_or_metadata_addresses() {
        let p = policy(&["0.0.0.0/0", "::/0"]);
        assert!(p.permits("203.0.113.9:5000".parse().unwrap()));
        for denied in [
            "169.254.169.254:80",
            "10.1.2.3:53",
            "192.168.1.1:1",
            "172.16.0.1:1",
            "100.64.0.1:1",
            "127.0.0.2:7882",
            "0.0.0.0:1",
            "[fd00:ec2::254]:80",
            "[fe80::1]:1",
            "[::1]:7882",
            "[::ffff:10.0.0.1]:1",
        ] {
            assert!(!p.permits(denied.parse().unwrap()), "{denied}");
        }
    }

    #[test]
    fn networks_parse_and_match() {
        let n: Network = "203.0.113.0/24".parse().unwrap();
        assert!(n.contains("203.0.113.200".parse().unwrap()));
        assert!(!n.contains("203.0.114.1".parse().unwrap()));
        assert!("203.0.113.0/33".parse::<Network>().is_err());
        assert!("nope".parse::<Network>().is_err());
        assert_eq!(
            "2001:db8::/32".parse::<Network>().unwrap().to_string(),
            "2001:db8::/32"
        );
    }
}
