//! htmx as progressive enhancement of the filter forms: the vendored script (htmx.org 2.0.11,
//! `assets/htmx.README.md`), the policy of the pages that load it, and the choice between a
//! whole page and only its results. A form works the same without JavaScript (a GET of the
//! same URL); with it, htmx sends `HX-Request` and swaps the results in place. A fragment is
//! rendered from the same scoped rows as its page and passes the same guard, so it carries
//! the same security headers and shows nothing the page would not.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::pages::render;
use super::session::{CSP, with_scripts};

/// htmx 2.0.11's `dist/htmx.min.js`, unmodified.
const HTMX: &str = include_str!("assets/htmx.min.js");

/// The policy of a page that loads htmx: the site-wide one plus scripts from this origin
/// (the embedded file, no inline script, no eval) and requests back to it (the swaps).
pub fn csp() -> String {
    with_scripts(CSP)
}

/// `/static/htmx.min.js`, embedded like the stylesheet.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        HTMX,
    )
        .into_response()
}

/// Whether htmx asked for the results only. A history restore (`HX-History-Restore-Request`,
/// after the cached snapshot is gone) wants the whole page.
pub fn wants_fragment(headers: &HeaderMap) -> bool {
    let is = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "true")
    };
    is("hx-request") && !is("hx-history-restore-request")
}

/// The page or, for htmx, only its results; either way with [`csp`] and `Vary: HX-Request`
/// (the same URL answers two ways).
pub fn page_or_fragment(
    headers: &HeaderMap,
    page: &impl askama::Template,
    fragment: &impl askama::Template,
) -> Response {
    let mut response = if wants_fragment(headers) {
        render(fragment)
    } else {
        render(page)
    };
    if let Ok(policy) = HeaderValue::from_str(&csp()) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("HX-Request"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_htmx_request_gets_the_fragment_and_a_history_restore_the_page() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, HeaderValue::from_static(v));
            }
            map
        };
        assert!(!wants_fragment(&headers(&[])));
        assert!(wants_fragment(&headers(&[("hx-request", "true")])));
        assert!(!wants_fragment(&headers(&[
            ("hx-request", "true"),
            ("hx-history-restore-request", "true"),
        ])));
        let policy = csp();
        assert!(policy.starts_with("default-src 'none'; script-src 'self'; connect-src 'self'; "));
        assert!(!policy.contains("unsafe"));
        // The vendored file is the release named in assets/htmx.README.md.
        assert!(HTMX.contains("version:\"2.0.11\""), "htmx version changed");
    }
}
