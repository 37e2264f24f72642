//! Test plugin: built against contract 0.0.1 but claiming 0.1.0 in its metadata. The
//! host must refuse it because it does not export what the contract requires.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../old_contract/wit", world: "block-plugin" });

    struct OldBlock;

    impl exports::xbhost::block::block::Guest for OldBlock {
        fn render() -> String {
            "<p>from the past</p>".into()
        }
    }

    export!(OldBlock);

    const METADATA: &[u8] = br#"{"name":"imposter","version":"0.1.0","contract":"0.1.0"}"#;
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
