//! Client-side code of the blocks a request renders (contract 0.1.2 `client`): which of its
//! plugin's shipped files each block's render added, and the function its frame calls.
//! Everything a block says is checked as it says it: a file must be one its own plugin
//! ships (so a block names no URL: the host writes every URL, versioned by the plugin's
//! hash), at most [`MAX_CLIENT_FILES`] per render, the function a JavaScript identifier,
//! its arguments JSON within [`MAX_CLIENT_ARGS_BYTES`]. What a render added is taken by the
//! host when it wraps the block (`markup::HostMarks::client`): the page script draws the
//! block in a sandboxed frame with it (`server/assets/xbhost.js`). Owns nothing stored.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;
use xbhost_sdk::{MAX_CLIENT_ARGS_BYTES, MAX_CLIENT_FILES, is_js_identifier};

use crate::runtime::LoadedPlugin;
use crate::runtime::assets::AssetKind;
use crate::runtime::bindings::types::HostError;

/// One block's client code, as the page script reads it from the block's wrapper.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ClientCode {
    /// Style sheets' URLs, in the order added.
    pub css: Vec<String>,
    /// Scripts' URLs, in the order added.
    pub js: Vec<String>,
    /// The function the frame calls, and its arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// A name for the frame (the block's type and usage id), for assistive technology.
    pub title: String,
}

impl ClientCode {
    /// The JSON the wrapper carries (`data-xbhost-client`).
    pub fn attribute(&self) -> String {
        serde_json::to_string(self).expect("client code serializes")
    }
}

/// Where the host serves a plugin's shipped file `name`: under the plugin's name and the
/// hash of its installed wasm, so a new version is a new URL (`server/blocks_static.rs`).
pub fn asset_url(plugin: &str, hash: &str, name: &str) -> String {
    format!("/plugins/{plugin}/{hash}/static/{name}")
}

/// The request's client code, per block (by index in the course).
#[derive(Default)]
pub struct ClientCodes(Mutex<HashMap<usize, ClientCode>>);

impl ClientCodes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, ClientCode>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on `block`'s client code, made (titled after the plugin and block) if this
    /// render has none yet.
    fn with_code<R>(
        &self,
        plugin: &LoadedPlugin,
        block: usize,
        usage_id: &str,
        f: impl FnOnce(&mut ClientCode) -> R,
    ) -> R {
        let mut codes = self.lock();
        let code = codes.entry(block).or_insert_with(|| ClientCode {
            title: format!("{} {usage_id}", plugin.record.name),
            ..ClientCode::default()
        });
        f(code)
    }

    /// Adds the shipped file `name` of `plugin` to `block`'s render (`usage_id` names it
    /// in errors).
    pub fn add_resource(
        &self,
        plugin: &LoadedPlugin,
        block: usize,
        usage_id: &str,
        name: &str,
    ) -> Result<(), HostError> {
        let plugin_name = &plugin.record.name;
        let asset = plugin.assets.get(name).ok_or_else(|| {
            let shipped: Vec<&str> = plugin.assets.names().collect();
            HostError::NotFound(format!(
                "block {usage_id:?}: plugin {plugin_name:?} ships no client file {:?} (it ships {shipped:?})",
                truncated(name)
            ))
        })?;
        let url = asset_url(plugin_name, &plugin.record.hash, name);
        self.with_code(plugin, block, usage_id, |code| {
            let added = code.css.len() + code.js.len();
            let list = match asset.kind {
                AssetKind::Css => &mut code.css,
                AssetKind::Js => &mut code.js,
            };
            if list.contains(&url) {
                return Ok(());
            }
            if added >= MAX_CLIENT_FILES {
                return Err(HostError::LimitExceeded(format!(
                    "block {usage_id:?} added {MAX_CLIENT_FILES} client files, the most one render may add"
                )));
            }
            list.push(url);
            Ok(())
        })
    }

    /// Sets the function `block`'s frame calls and its arguments (JSON text).
    pub fn initialize(
        &self,
        plugin: &LoadedPlugin,
        block: usize,
        usage_id: &str,
        function: &str,
        args_json: &str,
    ) -> Result<(), HostError> {
        if !is_js_identifier(function) {
            return Err(HostError::InvalidInput(format!(
                "block {usage_id:?}: the client function {:?} is not a JavaScript identifier \
                 (ASCII letters, digits, `_`, `$`, at most 64)",
                truncated(function)
            )));
        }
        if args_json.len() > MAX_CLIENT_ARGS_BYTES {
            return Err(HostError::LimitExceeded(format!(
                "block {usage_id:?}: client arguments are {} bytes, over the limit of {MAX_CLIENT_ARGS_BYTES}",
                args_json.len()
            )));
        }
        let args: Value = serde_json::from_str(args_json).map_err(|e| {
            HostError::InvalidInput(format!(
                "block {usage_id:?}: client arguments are not JSON: {e}"
            ))
        })?;
        self.with_code(plugin, block, usage_id, |code| {
            code.init = Some(function.to_string());
            code.args = Some(args);
        });
        Ok(())
    }

    /// What `block`'s render added, taken (a block rendered again starts afresh).
    pub fn take(&self, block: usize) -> Option<ClientCode> {
        self.lock().remove(&block)
    }
}

/// At most 64 characters of a block-given name, for an error message.
fn truncated(s: &str) -> String {
    s.chars().take(64).collect()
}
