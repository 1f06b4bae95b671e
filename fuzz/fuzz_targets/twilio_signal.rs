//! Any bytes a `twilio-video` client sends on `/signaling` or on a media
//! signaling data channel (`salon-twilio-signal`): TCMP frames, the RSP
//! body a `msg` or `hello` carries, and MSP messages; the server-side
//! messages too, which clients parse.
//!
//! Must hold: no panic; every refusal is 53004; what parses prints back to
//! something that parses, and (for TCMP and RSP, which have no floats to
//! round) to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salon_twilio_signal::{msp, rsp, tcmp};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    match tcmp::ClientFrame::parse(text) {
        Ok(frame) => {
            let again = tcmp::ClientFrame::parse(&frame.to_json()).expect("printed frames parse");
            assert_eq!(again, frame);
            let body = match frame {
                tcmp::ClientFrame::Msg { body } => Some(body),
                tcmp::ClientFrame::Hello(hello) => hello.body,
                _ => None,
            };
            if let Some(body) = body {
                body_round_trip(rsp::ClientBody::from_json(body));
            }
        }
        Err(e) => assert_eq!(e.code(), 53004),
    }
    body_round_trip(rsp::ClientBody::parse(text));

    match msp::ClientMessage::parse(text) {
        Ok(message) => {
            msp::ClientMessage::parse(&message.to_json()).expect("printed messages parse");
        }
        Err(e) => assert_eq!(e.code(), 53004),
    }

    // What clients read from the server.
    if let Ok(frame) = tcmp::ServerFrame::parse(text) {
        tcmp::ServerFrame::parse(&frame.to_json()).expect("printed frames parse");
    }
    if let Ok(message) = msp::ServerMessage::parse(text) {
        msp::ServerMessage::parse(&message.to_json()).expect("printed messages parse");
    }
});

fn body_round_trip(parsed: Result<rsp::ClientBody, salon_twilio_signal::ProtocolError>) {
    match parsed {
        Ok(body) => {
            let again =
                rsp::ClientBody::from_json(body.to_json_value()).expect("printed bodies parse");
            assert_eq!(again, body);
        }
        Err(e) => assert_eq!(e.code(), 53004),
    }
}
