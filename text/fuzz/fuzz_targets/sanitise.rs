//! Arbitrary bytes (read as UTF-8, invalid sequences replaced as a decoder would) through the
//! storage gate and every output escaper. Properties, checked on each input:
//! - the stored text contains no character the gate escapes, and is at most 4x the input;
//! - the terminal, CSV and HTML forms contain no control character at all (tab and newline
//!   included) and no bidi control; a CSV cell never begins with a formula character;
//! - the original length reported is the input's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_text::output::{csv_cell, html, is_escaped_for_terminal, terminal};
use tillsyn_text::store::{is_bidi_control, is_escaped_at_ingest, sanitise};

fuzz_target!(|bytes: &[u8]| {
    let input = String::from_utf8_lossy(bytes);
    let stored = sanitise(&input);
    assert!(
        !stored.text.chars().any(is_escaped_at_ingest),
        "{:?}",
        stored.text
    );
    assert!(
        stored.text.len() <= 4 * input.len(),
        "{} -> {}",
        input.len(),
        stored.text.len()
    );
    assert_eq!(stored.original_bytes, input.len());
    assert_eq!(stored.escaped == 0, stored.text == input);

    let unsafe_for_output =
        |c: char| c.is_control() || is_bidi_control(c) || is_escaped_for_terminal(c);
    for (name, out) in [
        ("terminal", terminal(&input).into_owned()),
        ("csv", csv_cell(&input).into_owned()),
        ("html", html(&input)),
    ] {
        assert!(!out.chars().any(unsafe_for_output), "{name}: {out:?}");
    }
    let cell = csv_cell(&input);
    assert!(
        !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
        "{cell:?}"
    );
    // A second pass changes nothing: stored text is stable under re-ingest.
    assert!(sanitise(&stored.text).is_unchanged());
});
