//! Any bytes a client sends as a signaling message: parsing never panics,
//! refusals are 53004, and what parses prints back to something that parses
//! to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salon_signal::{ClientMessage, ServerMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientMessage::parse(text) {
        Ok(message) => {
            let again = ClientMessage::parse(&message.to_json()).expect("printed messages parse");
            assert_eq!(again, message);
        }
        Err(e) => assert_eq!(e.code(), 53004),
    }
    // Clients parse what servers send with the same care.
    if let Ok(message) = ServerMessage::parse(text) {
        assert_eq!(ServerMessage::parse(&message.to_json()).ok(), Some(message));
    }
});
