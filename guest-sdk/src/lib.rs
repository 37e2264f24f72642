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
pub mod testing;
mod types;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm;

pub use block::{Block, BlockError, BlockResult};
pub use context::Context;
pub use host::HostApi;
pub use types::{
    Condition, Fragment, Group, HostError, Severity, Source, TagScope, User, UserPartition,
    ValidationMessage, View,
};

/// The contract version as a literal, for `concat!` in [`export_block!`]. Must equal the
/// version of the `xbhost:block` package in `wit/block.wit`.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_version {
    () => {
        "0.1.1"
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
