//! The Content-Security-Policy of the host's HTML: what may run, load and be framed in a
//! page. Its own module so the page writer (`page.rs`) and the headers middleware
//! (`mod.rs`) share one text.

/// The Content-Security-Policy of a page whose own script carries `nonce` (`page::Page`):
/// only that script runs (no inline script, so none from course content, and no other
/// file of the host's origin: plugins' client files run only in their blocks' frames, with
/// the nonce the page script gives them); the rest as [`CONTENT_SECURITY_POLICY`].
pub fn content_security_policy(nonce: &str) -> String {
    CONTENT_SECURITY_POLICY.replacen(
        "script-src 'none'",
        &format!("script-src 'nonce-{nonce}'"),
        1,
    )
}

/// The Content-Security-Policy of HTML pages without a script of the host's (the report):
/// no script at all, no plugins, forms and base URLs kept home.
/// Frames: the host's own, Google's calendar and document embeds (the `google_calendar`
/// and `google_document` blocks), and YouTube's privacy-enhanced player
/// (`www.youtube-nocookie.com`, the `video` block's embed of YouTube-only videos) and no
/// other YouTube host.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; media-src 'self' https:; \
    frame-src 'self' https://calendar.google.com https://docs.google.com \
    https://www.youtube-nocookie.com; \
    object-src 'none'; base-uri 'none'; form-action 'self'";
