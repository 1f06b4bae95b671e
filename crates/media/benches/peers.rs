//! What creating a peer costs the worker's thread: a str0m `Rtc` built as
//! the worker builds one, with str0m's default crypto provider (a DTLS
//! configuration built and validated per peer) and with Salon's
//! (`salon_media::dtls::provider`, one configuration for every peer).
//!
//! Run: `cargo bench -p salon-media --bench peers -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use str0m::Rtc;
use str0m::bwe::Bitrate;

fn peer(salon: bool) -> Rtc {
    let mut builder = Rtc::builder();
    if salon {
        builder = builder.set_crypto_provider(salon_media::dtls::provider());
    }
    builder
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .enable_bwe(Some(Bitrate::kbps(1_500)))
        .build(Instant::now())
}

fn create_peer(c: &mut Criterion) {
    c.bench_function("create_peer_default_dtls", |b| {
        b.iter(|| black_box(peer(false)))
    });
    c.bench_function("create_peer_shared_dtls_config", |b| {
        b.iter(|| black_box(peer(true)))
    });
}

criterion_group!(benches, create_peer);
criterion_main!(benches);
