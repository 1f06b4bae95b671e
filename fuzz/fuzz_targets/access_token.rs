//! Any string presented as an access token: verification never panics and
//! every refusal carries a 2010x code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salon_sid::{AccountSid, ApiKeySid};
use salon_token::{ApiKey, Keyring, Verifier};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let mut keys = Keyring::new();
    keys.insert(ApiKey::new(
        ApiKeySid::from_bytes([1; 16]),
        AccountSid::from_bytes([2; 16]),
        "secret",
    ));
    if let Err(rejection) = Verifier::default().verify(token, &keys, 1_700_000_000) {
        assert!((20101..=20107).contains(&rejection.code()), "{rejection}");
    }
    let _ = salon_token::decode_unverified(token);
});
