//! Printing the review page to PDF with a headless Chromium (`--print-to-pdf`), when one is
//! installed: Chromium lays out and paginates the page with its print stylesheet, so the PDF is
//! what a browser's "Print" gives, without a PDF library of our own. Chromium runs with its
//! background networking off and a throw-away profile, on a `file://` copy of the page.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why no PDF was written.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// No browser to print with.
    #[error(
        "--format pdf needs Chromium: none found at $TILLSYN_CHROMIUM, /usr/bin/chromium or /usr/bin/chromium-browser (Debian: apt install chromium); --format html gives the same page"
    )]
    NoChromium,
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Chromium ran but wrote no PDF.
    #[error("chromium did not print {path}: {stderr}")]
    Print {
        /// The PDF that was asked for.
        path: PathBuf,
        /// What Chromium said, last lines.
        stderr: String,
    },
}

fn chromium() -> Option<PathBuf> {
    std::env::var_os("TILLSYN_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.is_file())
}

/// Prints `html` to the PDF file `out`.
pub fn print(html: &str, out: &Path) -> Result<(), PdfError> {
    let browser = chromium().ok_or(PdfError::NoChromium)?;
    let work = tempfile::tempdir().map_err(|source| PdfError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let page = work.path().join("review.html");
    std::fs::write(&page, html).map_err(|source| PdfError::Io {
        path: page.clone(),
        source,
    })?;
    let out = std::path::absolute(out).map_err(|source| PdfError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let _ = std::fs::remove_file(&out);
    let result = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-pdf-header-footer",
        ])
        .arg(format!(
            "--user-data-dir={}",
            work.path().join("profile").display()
        ))
        .arg(format!("--print-to-pdf={}", out.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .map_err(|source| PdfError::Io {
            path: browser.clone(),
            source,
        })?;
    if out.is_file() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&result.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    Err(PdfError::Print {
        path: out,
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}
