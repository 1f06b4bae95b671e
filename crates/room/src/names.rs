//! Rules for the names people type: room names, identities, track names.
//!
//! Twilio caps each at 128 characters and rejects control characters. The
//! checks count Unicode scalar values, not bytes, so a name of 128 emoji is
//! as acceptable as one of 128 ASCII letters.

use crate::settings::limits::MAX_NAME_CHARS;

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    Empty,
    TooLong,
    ControlCharacter,
}

/// Check a name against the shared rules.
pub fn check(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.chars().nth(MAX_NAME_CHARS).is_some() {
        return Err(NameProblem::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(NameProblem::ControlCharacter);
    }
    Ok(())
}

/// A short, printable rendering of untrusted text for error messages, so an
/// error about a 10 MB name does not carry the 10 MB name.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = text
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters_not_bytes() {
        assert_eq!(check(&"é".repeat(128)), Ok(()));
        assert_eq!(check(&"é".repeat(129)), Err(NameProblem::TooLong));
        assert_eq!(check(&"🎥".repeat(128)), Ok(()));
        assert_eq!(check(""), Err(NameProblem::Empty));
        assert_eq!(check("a\nb"), Err(NameProblem::ControlCharacter));
        assert_eq!(check("a\u{7f}"), Err(NameProblem::ControlCharacter));
        assert_eq!(check("Daily stand-up / room 3"), Ok(()));
    }

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("ab\ncd"), "ab\\ncd");
        assert_eq!(excerpt(&"x".repeat(100)).chars().count(), 41);
    }
}
