//! The TOTP key's `otpauth://` URI as a QR code an authenticator app scans at enrolment, drawn
//! as inline SVG: one `<path>` of the dark modules, no text and no script, so it passes the
//! Content-Security-Policy and carries nothing of the (person-supplied) URI but its modules.
//! The `qrcode` crate encodes; the drawing is a few lines here so the page needs no image
//! feature or data: URL.

use std::fmt::Write as _;

use qrcode::{Color, EcLevel, QrCode};

/// Side of one module in SVG user units; the quiet zone is four modules, as ISO/IEC 18004 asks.
const MODULE: usize = 4;
const QUIET: usize = 4;

/// The QR code's modules, row by row (`true` = dark), and its width in modules.
pub fn modules(text: &str) -> Result<(Vec<bool>, usize), qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)?;
    let width = code.width();
    let dark = code
        .to_colors()
        .into_iter()
        .map(|c| c == Color::Dark)
        .collect();
    Ok((dark, width))
}

/// `text` as an `<svg>` element labelled `label` (escaped here: it is catalogue text).
pub fn svg(text: &str, label: &str) -> Result<String, qrcode::types::QrError> {
    let (dark, width) = modules(text)?;
    let side = (width + 2 * QUIET) * MODULE;
    let mut path = String::with_capacity(dark.len() * 4);
    for (i, _) in dark.iter().enumerate().filter(|(_, d)| **d) {
        let (x, y) = ((i % width + QUIET) * MODULE, (i / width + QUIET) * MODULE);
        // Writing into a String cannot fail.
        let _ = write!(path, "M{x} {y}h{MODULE}v{MODULE}h-{MODULE}z");
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"qr\" role=\"img\" aria-label=\"{}\" \
         viewBox=\"0 0 {side} {side}\" width=\"{side}\" height=\"{side}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>",
        crate::output::html(label)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes the modules with an independent QR reader (rqrr), as a phone's camera would.
    fn decode(text: &str) -> String {
        let (dark, width) = modules(text).unwrap();
        let scale = 4;
        let side = (width + 8) * scale;
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
            let (mx, my) = ((x / scale).wrapping_sub(4), (y / scale).wrapping_sub(4));
            if mx < width && my < width && dark[my * width + mx] {
                0
            } else {
                255
            }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        grids[0].decode().unwrap().1
    }

    #[test]
    fn the_code_reads_back_as_the_totp_uri() {
        let uri =
            "otpauth://totp/Tillsyn:anna%40kommun.example?secret=JBSWY3DPEHPK3PXP&issuer=Tillsyn";
        assert_eq!(decode(uri), uri);
    }

    #[test]
    fn the_svg_carries_modules_only_and_an_escaped_label() {
        let svg = svg("otpauth://totp/x?secret=<script>", "Skanna \"koden\"").unwrap();
        assert!(svg.starts_with("<svg "));
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("otpauth"), "{svg}");
        assert!(
            svg.contains("aria-label=\"Skanna &quot;koden&quot;\""),
            "{svg}"
        );
        assert!(svg.matches('M').count() > 100, "dark modules drawn");
    }
}
