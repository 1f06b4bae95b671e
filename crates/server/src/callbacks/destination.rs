//! Where a status callback may go.
//!
//! A callback URL is chosen by whoever creates a room, so without a check
//! anyone with REST credentials could make the server send requests into
//! its own network: to loopback services, the private LAN, or a cloud
//! metadata endpoint (169.254.169.254). Unless the operator allows it,
//! callbacks go only to public addresses.
//!
//! The check is made on the addresses a connection will actually use:
//! [`GuardedResolver`] is the HTTP client's DNS resolver and hands it only
//! the allowed addresses of a name, so a name that resolves to a private
//! address (or rebinds to one between a check and the connection) is never
//! connected to. URLs whose host is an IP literal skip DNS, so
//! [`Destinations::check_url`] checks those before a request is made.

use std::error::Error;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The operator's policy for callback destinations.
#[derive(Debug, Clone, Copy)]
pub struct Destinations {
    /// Allow loopback, private, link-local and other non-public addresses.
    pub allow_private_network: bool,
}

/// Why a callback URL may not be used. Retrying does not help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Refused {}

impl Destinations {
    /// Check what can be checked before connecting: the scheme, and the
    /// address when the host is an IP literal.
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!(
                "the URL's scheme is {:?}, not http or https",
                url.scheme()
            )));
        }
        let ip = match url.host() {
            None => return Err(Refused("the URL has no host".into())),
            Some(url::Host::Domain(_)) => return Ok(()),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        };
        self.check_ip(ip)
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.allow_private_network || is_public(ip) {
            Ok(())
        } else {
            Err(Refused(format!(
                "{ip} is not a public address (callbacks to private, loopback and link-local \
                 networks are off: see --callback-private-network)"
            )))
        }
    }

    /// The resolver that enforces this policy after DNS.
    pub fn resolver(&self) -> GuardedResolver {
        GuardedResolver { policy: *self }
    }
}

/// A DNS resolver that drops the addresses the policy refuses, and fails
/// with [`Refused`] when none is left.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Destinations,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| policy.check_ip(a.ip()).is_ok())
                .collect();
            if allowed.is_empty() {
                let first = resolved.first().map(|a| a.ip());
                let refusal = match first.map(|ip| policy.check_ip(ip)) {
                    Some(Err(Refused(why))) => Refused(format!("{host} resolves to {why}")),
                    _ => Refused(format!("{host} resolves to no address")),
                };
                return Err(Box::new(refusal) as Box<dyn Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Whether `ip` belongs to the public internet: not loopback, private
/// (RFC 1918, unique local), shared (RFC 6598), link-local (where cloud
/// metadata services live), multicast, reserved, or set aside for
/// documentation and benchmarks. IPv6 forms that embed an IPv4 address
/// (mapped, NAT64, 6to4) are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let private = a == 0                                  // "this network"
        || a == 10                                        // RFC 1918
        || (a == 100 && (64..128).contains(&b))           // shared address space (CGNAT)
        || a == 127                                       // loopback
        || (a == 169 && b == 254)                         // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))            // RFC 1918
        || (a == 192 && b == 0 && c == 0)                 // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)                 // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)               // 6to4 relay anycast
        || (a == 192 && b == 168)                         // RFC 1918
        || (a == 198 && (b == 18 || b == 19))             // benchmarking
        || (a == 198 && b == 51 && c == 100)              // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)               // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    !private
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    // 6to4 (2002::/16) carries one in bits 16 to 48.
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    let private = ip.is_unspecified()
        || ip.is_loopback()
        || s[0..4] == [0, 0, 0, 0]                        // IPv4-compatible and other ::/64 forms
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0])        // discard-only
        || (s[0] == 0x2001 && s[1] < 0x200)              // IETF assignments, Teredo
        || (s[0] == 0x2001 && s[1] == 0x0db8)             // documentation
        || (s[0] & 0xfe00) == 0xfc00                      // unique local (incl. fd00:ec2::254)
        || (s[0] & 0xffc0) == 0xfe80                      // link-local
        || (s[0] & 0xffc0) == 0xfec0                      // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00; // multicast
    !private
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn public_addresses_are_public() {
        for text in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(text)), "{text} is public");
        }
    }

    #[test]
    fn loopback_private_link_local_and_metadata_are_not() {
        for text in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
        ] {
            assert!(!is_public(ip(text)), "{text} is not public");
        }
    }

    #[test]
    fn urls_are_checked_by_scheme_and_literal_address() {
        let strict = Destinations {
            allow_private_network: false,
        };
        let open = Destinations {
            allow_private_network: true,
        };
        let url = |text: &str| url::Url::parse(text).unwrap();
        assert!(strict.check_url(&url("https://app.example.com/x")).is_ok());
        assert!(strict.check_url(&url("http://8.8.8.8/x")).is_ok());
        assert!(strict.check_url(&url("http://127.0.0.1:9/x")).is_err());
        assert!(strict.check_url(&url("http://[::1]:9/x")).is_err());
        assert!(
            strict
                .check_url(&url("http://169.254.169.254/latest"))
                .is_err()
        );
        assert!(open.check_url(&url("http://127.0.0.1:9/x")).is_ok());
        for other in [
            "ftp://app.example.com/x",
            "file:///etc/passwd",
            "gopher://x/",
        ] {
            assert!(open.check_url(&url(other)).is_err(), "{other}");
        }
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        let strict = Destinations {
            allow_private_network: false,
        }
        .resolver();
        let refused = strict
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost resolves to loopback only");
        assert!(refused.downcast_ref::<Refused>().is_some(), "{refused}");

        let open = Destinations {
            allow_private_network: true,
        }
        .resolver();
        let addrs: Vec<SocketAddr> = open
            .resolve("localhost".parse().unwrap())
            .await
            .expect("allowed")
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
