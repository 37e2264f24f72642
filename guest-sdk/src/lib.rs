//! The guest SDK for xbhost blocks. Inside the sandbox, the host's services are backed by
//! the generated WIT bindings (private to this crate); natively, by
//! [`testing::TestHost`]. The walk-through below is the crate README, compiled as a doctest.
#![doc = include_str!("../README.md")]

// Lets the generated export macro name this crate by its absolute path from inside it, too.
extern crate self as xbhost_sdk;

mod block;
pub mod containers;
mod context;
mod host;
pub mod html;
pub mod native;
pub mod scenarios;
pub mod testing;
mod types;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm;

pub use block::{Block, BlockError, BlockResult};
pub use context::Context;
pub use host::HostApi;
pub use types::{
    ClientCode, Condition, Fragment, Group, HostError, Severity, Source, TagScope, User,
    UserPartition, ValidationMessage, View,
};

/// The contract version as a literal, for `concat!` in [`export_block!`]. Must equal the
/// version of the `xbhost:block` package in `wit/block.wit`.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_version {
    () => {
        "0.1.2"
    };
}

/// The contract (WIT package) version this SDK builds blocks against.
pub const CONTRACT_VERSION: &str = __contract_version!();

/// The SDK's own version, recorded in every plugin it builds.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The words every error about a block's authored fields not matching its `Fields` type
/// contains (from [`Context::new`], so from `validate` too). The host refuses to load a
/// course whose block's `validate` gives an error with them, naming the block and field,
/// instead of storing a block that could only ever render as "unavailable".
pub const FIELDS_MISMATCH: &str = "do not match its schema";

/// Name of the custom section in which [`export_block!`] records the plugin's name, its
/// version and the contract version it was built against. The host reads it on `plugin add`.
pub const METADATA_SECTION: &str = "xbhost-plugin";

/// Name of the custom section in which [`client_assets!`] ships the plugin's client-side
/// files (contract 0.1.2). The host reads it when the plugin is installed and serves the
/// files to the block's frame.
pub const ASSETS_SECTION: &str = "xbhost-assets";

/// Name of the custom section in which [`scenarios!`] ships the plugin's example scenarios
/// (the JSON file's bytes as they are; [`scenarios::parse`] reads them). The host reads it
/// when the plugin is installed and loads the scenarios as a course of their own.
pub const SCENARIOS_SECTION: &str = "xbhost-scenarios";

/// Most client files one render adds (contract 0.1.2 `client`).
pub const MAX_CLIENT_FILES: usize = 16;
/// Largest `initialize_js` args, as JSON text, in bytes.
pub const MAX_CLIENT_ARGS_BYTES: usize = 16 << 10;
/// Longest `initialize_js` function name, in characters.
pub const MAX_CLIENT_FUNCTION_CHARS: usize = 64;

/// Whether `name` may name the function a block's frame calls: an ASCII JavaScript
/// identifier (letters, digits, `_`, `$`, not starting with a digit) of at most
/// [`MAX_CLIENT_FUNCTION_CHARS`] characters. The host and [`testing::TestHost`] check it.
pub fn is_js_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_CLIENT_FUNCTION_CHARS
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Re-exports the macro output needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use serde_json;

    /// Copies a string into a fixed-size array at compile time, for the metadata section.
    pub const fn bytes<const N: usize>(s: &str) -> [u8; N] {
        let src = s.as_bytes();
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N {
            out[i] = src[i];
            i += 1;
        }
        out
    }

    /// Copies bytes into a fixed-size array at compile time, for the scenarios section.
    pub const fn bytes_of<const N: usize>(src: &[u8]) -> [u8; N] {
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N {
            out[i] = src[i];
            i += 1;
        }
        out
    }

    /// Bytes [`assets_section`] writes for `files`.
    pub const fn assets_len(files: &[(&str, &[u8])]) -> usize {
        let mut len = 1;
        let mut i = 0;
        while i < files.len() {
            len += 8 + files[i].0.len() + files[i].1.len();
            i += 1;
        }
        len
    }

    /// The `xbhost-assets` section for `files` (name, content), at compile time: a version
    /// byte (1), then per file its name's length (u32 LE), the name, its content's length
    /// (u32 LE) and the content. `N` must be [`assets_len`] of `files`.
    pub const fn assets_section<const N: usize>(files: &[(&str, &[u8])]) -> [u8; N] {
        let mut out = [0u8; N];
        out[0] = 1;
        let mut at = 1;
        let mut i = 0;
        while i < files.len() {
            let name = files[i].0.as_bytes();
            let data = files[i].1;
            at = put(&mut out, at, &(name.len() as u32).to_le_bytes());
            at = put(&mut out, at, name);
            at = put(&mut out, at, &(data.len() as u32).to_le_bytes());
            at = put(&mut out, at, data);
            i += 1;
        }
        assert!(at == N, "assets_section: N is not assets_len(files)");
        out
    }

    const fn put<const N: usize>(out: &mut [u8; N], mut at: usize, bytes: &[u8]) -> usize {
        let mut i = 0;
        while i < bytes.len() {
            out[at] = bytes[i];
            at += 1;
            i += 1;
        }
        at
    }
}

/// Ships client-side files with the plugin (contract 0.1.2): style sheets and scripts from
/// the crate's `static/` folder, named as paths under it, compiled into the plugin's
/// `xbhost-assets` section. A render adds them to its fragment by name
/// ([`Fragment::add_css`], [`Fragment::add_javascript`], [`Fragment::initialize_js`]);
/// the host then draws the block in a sandboxed frame with them (see the README,
/// "Client-side code").
///
/// ```ignore
/// xbhost_sdk::client_assets!("thumbs.css", "thumbs.js");
/// ```
///
/// It also defines `CLIENT_ASSETS`, the files as (name, bytes), for native tests
/// ([`testing::TestHost::with_client_assets`] checks a render names only these).
#[macro_export]
macro_rules! client_assets {
    ($($file:literal),+ $(,)?) => {
        /// The client-side files this plugin ships (its `static/` folder), as (name, bytes).
        pub const CLIENT_ASSETS: &[(&str, &[u8])] = &[$((
            $file,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/static/", $file)),
        )),+];
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            const LEN: usize = $crate::__private::assets_len(CLIENT_ASSETS);
            #[used]
            #[unsafe(link_section = "xbhost-assets")]
            static CLIENT_ASSETS_SECTION: [u8; LEN] =
                $crate::__private::assets_section(CLIENT_ASSETS);
        };
    };
}

/// Ships example scenarios with the plugin (like XBlock's `workbench_scenarios`): a JSON
/// file of the crate (path relative to its `Cargo.toml`), compiled as it is into the
/// plugin's `xbhost-scenarios` section. When the plugin is installed, the host loads them
/// as a course of their own that the workbench lists under "Scenarios"; the format is
/// [the `scenarios` module](mod@crate::scenarios)'s.
///
/// ```ignore
/// xbhost_sdk::scenarios!("scenarios.json");
/// ```
///
/// It also defines `SCENARIOS`, the file's bytes, so a native test can check the file:
/// `xbhost_sdk::scenarios::parse(SCENARIOS).unwrap()`.
#[macro_export]
macro_rules! scenarios {
    ($file:literal) => {
        /// The scenarios this plugin ships, as the JSON text of its scenarios file.
        pub const SCENARIOS: &[u8] =
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $file));
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[used]
            #[unsafe(link_section = "xbhost-scenarios")]
            static SCENARIOS_SECTION: [u8; SCENARIOS.len()] =
                $crate::__private::bytes_of(SCENARIOS);
        };
    };
}

/// Exports a [`Block`] implementation as this crate's component.
///
/// ```ignore
/// struct Html;
/// impl xbhost_sdk::Block for Html { /* ... */ }
/// xbhost_sdk::export_block!(Html);
/// ```
///
/// It also writes the plugin's name (the Cargo package name), version and contract version
/// into the `xbhost-plugin` custom section. On non-wasm targets it expands to nothing, so
/// the crate still builds and tests natively.
#[macro_export]
macro_rules! export_block {
    ($block:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            const METADATA: &str = concat!(
                "{\"name\":\"",
                env!("CARGO_PKG_NAME"),
                "\",\"version\":\"",
                env!("CARGO_PKG_VERSION"),
                "\",\"contract\":\"",
                $crate::__contract_version!(),
                "\"}"
            );
            #[used]
            #[unsafe(link_section = "xbhost-plugin")]
            static PLUGIN_METADATA: [u8; METADATA.len()] = $crate::__private::bytes(METADATA);

            struct Export;
            impl $crate::wasm::Guest for Export {
                fn render(
                    view: $crate::wasm::WitView,
                ) -> ::core::result::Result<$crate::wasm::WitFragment, ::std::string::String>
                {
                    $crate::wasm::render::<$block>(view)
                }
                fn visible_children() -> ::core::result::Result<
                    ::std::vec::Vec<::std::string::String>,
                    ::std::string::String,
                > {
                    $crate::wasm::visible_children::<$block>()
                }
                fn validate() -> ::std::vec::Vec<$crate::wasm::WitValidationMessage> {
                    $crate::wasm::validate::<$block>()
                }
                fn handle(
                    name: ::std::string::String,
                    payload: ::std::string::String,
                ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                    $crate::wasm::handle::<$block>(name, payload)
                }
            }
    $crate::wasm::export_impl!(Export with_types_in $crate::wasm::bindings);
        };
    };
}
