//! The server's own packet counters, scraped from its `/metrics` endpoint
//! (OpenMetrics text) before and after the window.
//!
//! These say how much the server did — RTP packets in from publishers,
//! RTP packets written to subscribers, datagrams through its socket — which
//! with its CPU time gives the headline numbers: forwarded packets per CPU
//! second, and CPU time per forwarded packet. A target whose server has no
//! such endpoint simply has no [`ServerCounters`].

use std::time::Duration;

use serde::Serialize;

/// Salon's media counters at one moment (cumulative since it started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServerCounters {
    /// RTP packets received from publishers.
    pub rtp_received: u64,
    /// RTP packets written to subscribers.
    pub rtp_forwarded: u64,
    /// UDP datagrams received and sent on the media port.
    pub datagrams_received: u64,
    pub datagrams_sent: u64,
    /// Bytes received and sent on the media port.
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Datagrams the server dropped (unknown sender, full worker queue…).
    pub dropped: u64,
}

impl ServerCounters {
    /// What happened after `earlier`.
    pub fn since(&self, earlier: &ServerCounters) -> ServerCounters {
        ServerCounters {
            rtp_received: self.rtp_received.saturating_sub(earlier.rtp_received),
            rtp_forwarded: self.rtp_forwarded.saturating_sub(earlier.rtp_forwarded),
            datagrams_received: self
                .datagrams_received
                .saturating_sub(earlier.datagrams_received),
            datagrams_sent: self.datagrams_sent.saturating_sub(earlier.datagrams_sent),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            dropped: self.dropped.saturating_sub(earlier.dropped),
        }
    }

    /// Read the counters from an OpenMetrics text body. `None` when it has
    /// no media counters at all (not a Salon server, or one without media).
    pub fn parse(text: &str) -> Option<ServerCounters> {
        let mut c = ServerCounters::default();
        let mut found = false;
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_ascii_whitespace();
            let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            // Labels, if any, are not used by these counters.
            let name = name.split('{').next().unwrap_or(name);
            let Some(name) = name
                .strip_prefix("salon_media_")
                .and_then(|n| n.strip_suffix("_total"))
            else {
                continue;
            };
            let slot = match name {
                "rtp_received" => &mut c.rtp_received,
                "rtp_forwarded" => &mut c.rtp_forwarded,
                "datagrams_received" => &mut c.datagrams_received,
                "datagrams_sent" => &mut c.datagrams_sent,
                "bytes_received" => &mut c.bytes_received,
                "bytes_sent" => &mut c.bytes_sent,
                "dropped" => &mut c.dropped,
                _ => continue,
            };
            // Counters may be written as floats ("12.0", "1e3").
            if let Ok(v) = value.parse::<f64>() {
                if v.is_finite() && v >= 0.0 {
                    *slot = v as u64;
                    found = true;
                }
            }
        }
        found.then_some(c)
    }
}

/// Scrapes one `/metrics` URL.
#[derive(Debug, Clone)]
pub struct Scraper {
    client: reqwest::Client,
    url: String,
}

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("cannot read {url}: {error}")]
    Http { url: String, error: reqwest::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} has no salon_media_* counters")]
    NoCounters { url: String },
    #[error("cannot make an HTTP client: {0}")]
    Client(reqwest::Error),
}

impl Scraper {
    pub fn new(url: impl Into<String>) -> Result<Self, ScrapeError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            // Loopback only: never through a proxy.
            .no_proxy()
            .build()
            .map_err(ScrapeError::Client)?;
        Ok(Self {
            client,
            url: url.into(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn scrape(&self) -> Result<ServerCounters, ScrapeError> {
        let http = |error| ScrapeError::Http {
            url: self.url.clone(),
            error,
        };
        let response = self.client.get(&self.url).send().await.map_err(http)?;
        let status = response.status();
        if !status.is_success() {
            return Err(ScrapeError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
            });
        }
        let text = response.text().await.map_err(http)?;
        ServerCounters::parse(&text).ok_or_else(|| ScrapeError::NoCounters {
            url: self.url.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salon_counters_are_read_and_others_ignored() {
        let text = "\
# HELP salon_media_rtp_forwarded RTP packets written to subscribers.
# TYPE salon_media_rtp_forwarded counter
salon_media_rtp_forwarded_total 123456
salon_media_rtp_received_total 4567
salon_media_datagrams_received_total 5000
salon_media_datagrams_sent_total 1.3e5
salon_media_dropped_total 2
salon_media_peers 4
salon_http_requests_total{method=\"GET\"} 99
# EOF
";
        let c = ServerCounters::parse(text).unwrap();
        assert_eq!(c.rtp_forwarded, 123_456);
        assert_eq!(c.rtp_received, 4567);
        assert_eq!(c.datagrams_sent, 130_000);
        assert_eq!(c.dropped, 2);
        assert_eq!(c.bytes_sent, 0);
        assert_eq!(ServerCounters::parse("# EOF\nfoo 1\n"), None);
        let later = ServerCounters {
            rtp_forwarded: 200_000,
            ..c
        };
        assert_eq!(later.since(&c).rtp_forwarded, 76_544);
    }
}
