//! DTLS for every peer from one validated configuration.
//!
//! str0m's default crypto provider builds a new `dimpl::Config` for each
//! peer's DTLS, and building one validates the crypto provider: known-answer
//! tests of every key exchange group, hash, PRF and cipher, about 0.6 ms of
//! the worker's thread per peer (two thirds of creating a peer, measured
//! with `perf` on the `sdp_offer` fuzz target and a loop of `Rtc` builds).
//! The worker creates peers on the thread that forwards packets, so each
//! join held up every room of that worker for that long. The configuration
//! is the same for every peer (no cookies: ICE already proves the address;
//! the MTU is str0m's), so [`provider`] validates it once and shares it.
//! Everything else — SRTP, hashes, the certificate — is str0m's default
//! provider's.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use str0m::crypto::CryptoError;
use str0m::crypto::CryptoProvider;
use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, ProtocolVersion,
};

/// The crypto provider every peer's `Rtc` is built with.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    static DTLS: SharedConfig = SharedConfig {
        config: OnceLock::new(),
    };
    PROVIDER
        .get_or_init(|| {
            Arc::new(CryptoProvider {
                dtls_provider: &DTLS,
                ..str0m::crypto::from_feature_flags()
            })
        })
        .clone()
}

/// str0m's DTLS (dimpl on aws-lc-rs) with one configuration per MTU, the
/// first one asked for; another MTU builds its own each time.
#[derive(Debug)]
struct SharedConfig {
    config: OnceLock<(Option<usize>, Arc<dimpl::Config>)>,
}

fn build_config(mtu: Option<usize>) -> Result<Arc<dimpl::Config>, CryptoError> {
    let mut builder = dimpl::Config::builder().use_server_cookie(false);
    if let Some(mtu) = mtu {
        builder = builder.mtu(mtu);
    }
    builder
        .build()
        .map(Arc::new)
        .map_err(|e| CryptoError::Other(format!("DTLS configuration: {e}")))
}

impl DtlsProvider for SharedConfig {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let config = match self.config.get() {
            Some((shared_mtu, config)) if *shared_mtu == mtu => config.clone(),
            Some(_) => build_config(mtu)?,
            None => {
                let config = build_config(mtu)?;
                let _ = self.config.set((mtu, config.clone()));
                config
            }
        };
        let cert = cert.clone();
        let dtls = match version {
            DtlsVersion::Dtls12 => dimpl::Dtls::new_12(config, cert, now),
            DtlsVersion::Dtls13 => dimpl::Dtls::new_13(config, cert, now),
            DtlsVersion::Auto => dimpl::Dtls::new_auto(config, cert, now),
            other => {
                return Err(CryptoError::Other(format!(
                    "unsupported DTLS version: {other}"
                )));
            }
        };
        Ok(Box::new(Dtls(dtls)))
    }
}

/// One peer's DTLS: dimpl's, as str0m drives it.
struct Dtls(dimpl::Dtls);

impl std::fmt::Debug for Dtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dtls")
    }
}

impl DtlsInstance for Dtls {
    fn set_active(&mut self, active: bool) {
        self.0.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.0.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        self.0.poll_output(buf)
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.0.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.0.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.0.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.0.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.0.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.0.close()
    }
}
