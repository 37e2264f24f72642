//! Block client code on the wire (contract 0.1.2): the files plugins ship, under a path
//! versioned by the plugin's wasm hash (cached for good: a new version is a new URL), and
//! the host's own script for block frames. Served to anyone, as the page script is: they
//! are code, not data. A block frame is sandboxed without same-origin rights, so its loads
//! are cross-origin: the files say `Cross-Origin-Resource-Policy: cross-origin`.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use crate::runtime::assets::asset_kind;

/// The script every block frame runs first: the block's side of the host's channel.
const FRAME_SCRIPT: &str = include_str!("assets/xbhost-frame.js");

pub async fn frame_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                "cross-origin",
            ),
        ],
        FRAME_SCRIPT,
    )
        .into_response()
}

/// `GET /plugins/{name}/{hash}/static/{*file}`.
pub async fn plugin_file(
    State(state): State<AppState>,
    Path((name, hash, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let kind = asset_kind(&file).ok_or_else(|| {
        ApiError::not_found(format!(
            "{:?} is not a client file name (a relative path ending in .css or .js)",
            crate::ids::truncate(&file, 80)
        ))
    })?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found(format!(
            "{:?} is not a plugin hash (64 hexadecimal digits)",
            crate::ids::truncate(&hash, 80)
        )));
    }
    let limit = state.render_limit();
    let (what, plugin, version) = (file.clone(), name.clone(), hash.clone());
    let asset = state
        .run_blocking("client file", limit, move |host| {
            host.client_asset(&plugin, &version, &what)
        })
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "plugin {name:?} as installed now (hash {}) ships no {file:?}: the page is of \
                 another version, reload it",
                &hash[..12]
            ))
        })?;
    debug_assert_eq!(asset.kind, kind);
    Ok((
        [
            (header::CONTENT_TYPE, asset.kind.content_type()),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                "cross-origin",
            ),
        ],
        asset.bytes,
    )
        .into_response())
}
