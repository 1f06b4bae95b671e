//! The load tester's one network rule: it talks to loopback only.
//!
//! A load test sends tens of megabits per second of synthetic media; aimed
//! at someone else's server by a typo, that is an attack. Every URL the
//! tool uses (the signaling endpoint, the metrics endpoint) must name a
//! loopback address, or a host name that resolves only to loopback ones.

use std::net::IpAddr;

use url::{Host, Url};

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{url:?} is not a URL: {reason}")]
    Invalid { url: String, reason: String },
    #[error("{url:?} must use {expected}")]
    Scheme { url: String, expected: String },
    #[error(
        "{url:?} is not on this machine: the load tester only targets loopback addresses (127.0.0.0/8, ::1, localhost)"
    )]
    NotLoopback { url: String },
    #[error("cannot resolve {host:?}: {reason}")]
    Resolve { host: String, reason: String },
}

/// Parse `url`, check its scheme is one of `schemes` and that its host is
/// loopback (resolving a name, which must give loopback addresses only).
pub async fn check(url: &str, schemes: &[&str]) -> Result<Url, UrlError> {
    let parsed = Url::parse(url).map_err(|e| UrlError::Invalid {
        url: url.into(),
        reason: e.to_string(),
    })?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(UrlError::Scheme {
            url: url.into(),
            expected: schemes.join(" or "),
        });
    }
    let not_loopback = || UrlError::NotLoopback { url: url.into() };
    match parsed.host() {
        Some(Host::Ipv4(ip)) if ip.is_loopback() => Ok(parsed),
        Some(Host::Ipv6(ip)) if ip.is_loopback() => Ok(parsed),
        Some(Host::Domain(name)) => {
            let port = parsed.port_or_known_default().unwrap_or(80);
            let addrs: Vec<IpAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| UrlError::Resolve {
                    host: name.into(),
                    reason: e.to_string(),
                })?
                .map(|a| a.ip())
                .collect();
            if !addrs.is_empty() && addrs.iter().all(IpAddr::is_loopback) {
                Ok(parsed)
            } else {
                Err(not_loopback())
            }
        }
        _ => Err(not_loopback()),
    }
}

/// The server's `/metrics` URL beside its signaling URL: same host and
/// port, over HTTP.
pub fn metrics_url(signaling: &Url) -> Option<String> {
    let scheme = match signaling.scheme() {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        _ => return None,
    };
    let host = match signaling.host()? {
        Host::Ipv6(ip) => format!("[{ip}]"),
        host => host.to_string(),
    };
    Some(match signaling.port() {
        Some(port) => format!("{scheme}://{host}:{port}/metrics"),
        None => format!("{scheme}://{host}/metrics"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_loopback_passes() {
        for ok in [
            "ws://127.0.0.1:3000/v1/signaling",
            "ws://127.3.2.1/v1/signaling",
            "ws://[::1]:3000/v1/signaling",
            "ws://localhost:3000/v1/signaling",
        ] {
            assert!(check(ok, &["ws"]).await.is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("ws://10.0.0.1:3000/v1/signaling", "not on this machine"),
            ("ws://0.0.0.0:3000/v1/signaling", "not on this machine"),
            ("ws://[2001:db8::1]/", "not on this machine"),
            ("http://127.0.0.1:3000/", "must use ws"),
            ("127.0.0.1:3000", "not a URL"),
        ] {
            let e = check(bad, &["ws"]).await.unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn metrics_sit_beside_signaling() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            metrics_url(&u("ws://127.0.0.1:3999/v1/signaling")).as_deref(),
            Some("http://127.0.0.1:3999/metrics")
        );
        assert_eq!(
            metrics_url(&u("ws://[::1]:80/v1/signaling")).as_deref(),
            Some("http://[::1]/metrics")
        );
        assert_eq!(
            metrics_url(&u("ws://[::1]:81/x")).as_deref(),
            Some("http://[::1]:81/metrics")
        );
    }
}
