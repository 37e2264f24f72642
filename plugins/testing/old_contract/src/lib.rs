//! Test plugin: built against contract 0.0.1 without the SDK, and says so in its metadata.
//! The host must refuse it, naming both versions.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "wit", world: "block-plugin" });

    struct OldBlock;

    impl exports::xbhost::block::block::Guest for OldBlock {
        fn render() -> String {
            "<p>from the past</p>".into()
        }
    }

    export!(OldBlock);

    const METADATA: &[u8] = br#"{"name":"old_contract","version":"0.1.0","contract":"0.0.1"}"#;
    #[used]
    #[unsafe(link_section = "xbhost-plugin")]
    static PLUGIN_METADATA: [u8; METADATA.len()] = {
        let mut out = [0u8; METADATA.len()];
        let mut i = 0;
        while i < out.len() {
            out[i] = METADATA[i];
            i += 1;
        }
        out
    };
}
