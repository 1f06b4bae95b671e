//! `X-Twilio-Signature`, computed exactly as Twilio computes it, so the
//! helper libraries' validators (`twilio.validateRequest` in Node,
//! `RequestValidator` in Python) accept Salon's callbacks.
//!
//! The signed text is the full URL the request goes to (scheme, host, path
//! and query, as the receiver sees it), followed for a POST by every body
//! parameter sorted by name, each written as name then value with nothing
//! between. A GET carries its parameters in the URL's query, so nothing
//! follows the URL. The signature is the base64 of the text's HMAC-SHA1
//! under the account's auth token.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The `X-Twilio-Signature` of a request to `url` with `params` in its
/// body (pass none for a GET, whose parameters are already in `url`).
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // By name, then by value for repeated names (as the validators do).
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    // HMAC takes keys of any length.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The worked example of Twilio's webhook security guide, which the
    /// helper libraries' own tests use too.
    #[test]
    fn twilios_worked_example() {
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            sign(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn parameter_order_does_not_matter_but_every_byte_does() {
        let url = "https://app.example.com/rooms";
        let a = pairs(&[("RoomSid", "RM1"), ("AccountSid", "AC1")]);
        let b = pairs(&[("AccountSid", "AC1"), ("RoomSid", "RM1")]);
        assert_eq!(sign("token", url, &a), sign("token", url, &b));
        assert_ne!(
            sign("token", url, &a),
            sign("token", "https://app.example.com/rooms/", &a)
        );
        assert_ne!(sign("token", url, &a), sign("other", url, &a));
        let moved = pairs(&[("RoomSi", "dRM1"), ("AccountSid", "AC1")]);
        assert_eq!(
            sign("token", url, &a),
            sign("token", url, &moved),
            "name and value are concatenated without a separator, as Twilio does"
        );
    }
}
