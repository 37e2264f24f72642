//! The workbench's side of the live loop (`xbhost serve --watch DIR`, `plugin_watch`):
//! `GET /workbench/live` answers the watcher's generation, which the page script
//! (`assets/xbhost-live.js`) polls to put a new render in place without a reload; the
//! panel that marks a live page and tells the developer what the watcher did (a broken
//! build's error naming the plugin and file, and the version that keeps serving); and the
//! blocks' stdout and stderr of this render, for staff. Everything here is maud markup,
//! so a block's printed text and an error's are escaped.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::auth::Identity;
use super::error::ApiError;
use super::state::AppState;
use crate::request::GuestPrints;

/// `GET /workbench/live`: `{"generation": N}` for a signed-in user, 404 when the server
/// does not watch.
pub async fn generation(State(state): State<AppState>, _who: Identity) -> Response {
    match &state.config().live {
        Some(live) => Json(serde_json::json!({ "generation": live.generation() })).into_response(),
        None => ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "this server watches no directory (xbhost serve --watch DIR)",
        )
        .into_response(),
    }
}

/// The first 12 hex digits of a blake3 hash (the whole is in the title).
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The live panel: the mark the page script polls for (everyone's page re-renders), and
/// for a `developer` (staff of the course, or an admin) what the watcher did: each file
/// that failed to load, with its error and the version that keeps serving, and the last
/// reload. Nothing when the server does not watch.
pub fn panel(state: &AppState, developer: bool) -> Markup {
    let Some(live) = &state.config().live else {
        return html! {};
    };
    let (reloads, problems) = live.outcomes();
    html! {
        div id="xbhost-live" data-generation=(live.generation()) {
            @if developer {
                @for p in &problems {
                    div.error-box.reload-problem role="alert" data-plugin=(p.plugin) data-file=(p.file.display().to_string()) {
                        p {
                            "Plugin " code { (p.plugin) } " from " code { (p.file.display().to_string()) }
                            " was not reloaded:"
                        }
                        pre.reload-error { (p.error) }
                        p {
                            @match &p.serving {
                                Some((version, hash)) => {
                                    "The last good version keeps serving: " (p.plugin) " " (version)
                                    " (blake3 " abbr title=(hash) { (short(hash)) } ")."
                                }
                                None => { "No version of it is installed." }
                            }
                        }
                    }
                }
                p.watch-note {
                    small {
                        "Watching "
                        @for (i, dir) in live.dirs().iter().enumerate() {
                            @if i > 0 { ", " }
                            code { (dir.display().to_string()) }
                        }
                        ": a changed .wasm file is reloaded and this unit re-renders by itself."
                        @if let Some(last) = reloads.first() {
                            " Last reloaded: "
                            span.last-reload data-plugin=(last.plugin) data-hash=(last.hash) {
                                (last.plugin) " " (last.version) " (blake3 "
                                abbr title=(last.hash) { (short(&last.hash)) } ") from "
                                code { (last.file.display().to_string()) } " at "
                                (humantime::format_rfc3339_seconds(last.at))
                            }
                            "."
                        }
                    }
                }
            }
        }
    }
}

/// What the blocks of this render printed to stdout and stderr, per block call; for staff
/// only (the caller decides). Each stream of a call is kept up to the sandbox's output
/// limit, and a page keeps a bounded number of them ([`GuestPrints`]); what was cut is
/// said.
pub fn guest_output(state: &AppState, printed: &GuestPrints) -> Markup {
    let kept_kib = state.host().limits().max_output_bytes >> 10;
    // A developer's view: on a development server (`--watch` or `--dev-login`) only, never
    // to a production course's staff, whose plugins' prints are the operators' log's.
    let developing = state.config().live.is_some() || state.config().dev_login;
    if !developing || (printed.prints.is_empty() && printed.omitted == 0) {
        return html! {};
    }
    html! {
        section id="guest-output" {
            h3 { "Block output (stdout and stderr)" }
            p { small { "Shown to staff only; also in the server's log (XBHOST_LOG=xbhost::guest=info)." } }
            @for print in &printed.prints {
                div.guest-print data-usage-id=(print.usage_id) data-plugin=(print.plugin) data-stream=(print.stream) {
                    p { code { (print.usage_id) } " (" (print.plugin) " " (print.version) "), " (print.stream) ":" }
                    pre { (print.text) }
                    @if print.dropped_bytes > 0 {
                        p.truncated { "[… " (print.dropped_bytes)  " more bytes were not kept: a call keeps its first " (kept_kib) " KiB per stream]" }
                    }
                }
            }
            @if printed.omitted > 0 {
                p.truncated {
                    "[… the output of " (printed.omitted) " more block calls was not kept: a page keeps "
                    (GuestPrints::MAX_PRINTS) " outputs and " (GuestPrints::MAX_BYTES >> 10) " KiB]"
                }
            }
        }
    }
}
