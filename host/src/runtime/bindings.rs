//! Host-side bindings generated from `wit/` (the same files the guest SDK uses).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "block-plugin",
});

pub use self::exports::xbhost::block::block as exported;
pub use self::xbhost::block::types;

impl From<crate::request::View> for types::View {
    fn from(view: crate::request::View) -> Self {
        match view {
            crate::request::View::Student => types::View::Student,
            crate::request::View::Staff => types::View::Staff,
            crate::request::View::Author => types::View::Author,
        }
    }
}

impl From<types::View> for crate::request::View {
    fn from(view: types::View) -> Self {
        match view {
            types::View::Student => crate::request::View::Student,
            types::View::Staff => crate::request::View::Staff,
            types::View::Author => crate::request::View::Author,
        }
    }
}
