//! Any text as SDP, through Salon's own SDP code at its edge
//! (`crates/media/src/sdp.rs`) and the parser the worker calls first:
//! reading an offer (str0m's parser, outside any `catch_unwind` in the
//! worker, with Salon's error message), listing m-sections for the
//! signaling layer, and finishing an answer. Fast where `sdp_offer` is
//! thorough: no peers, no worker.
//!
//! Must hold: no panic; a refused offer is 53403 with a message that shows
//! no memory address; `media_sections` finds one section per `m=` line,
//! each with the `a=mid` it has; `finish_answer` leaves no `trickle`
//! option, keeps every m-section, and finishing twice changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salon_media::fuzzing::read_offer;
use salon_media::sdp::{finish_answer, media_sections};

/// The lines as `sdp.rs` reads them: LF or CRLF, empty lines skipped.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Err(e) = read_offer(text) {
        assert_eq!(e.code(), 53403);
        let message = e.to_string();
        assert!(!message.contains("PointerOffset"), "{message}");
    }

    let sections = media_sections(text);
    let m_lines: Vec<usize> = lines(text)
        .enumerate()
        .filter(|(_, l)| l.starts_with("m="))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(sections.len(), m_lines.len());
    for section in &sections {
        if let Some(mid) = section.mid {
            assert!(text.contains(&format!("a=mid:{mid}")));
        }
    }

    let finished = finish_answer(text);
    for line in lines(&finished) {
        if let Some(options) = line.strip_prefix("a=ice-options:") {
            assert!(
                !options.split_whitespace().any(|o| o == "trickle"),
                "{line}"
            );
        }
    }
    assert_eq!(
        media_sections(&finished).len(),
        sections.len(),
        "finishing keeps the m-sections"
    );
    assert_eq!(
        finish_answer(&finished),
        finished,
        "finishing is idempotent"
    );
});
