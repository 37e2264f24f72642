//! Test plugin: built against contract 0.1.0 as it shipped (`wit/block.wit` here is that
//! contract, frozen), without the SDK. A host of a later 0.1.x contract must still load
//! and run it: its imports are named `xbhost:block/...@0.1.0`, which wasmtime's
//! semver-aware linker resolves to the host's 0.1.x definitions. It renders its user,
//! its state and a tag it wrote, so the test sees every kind of import answer.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "wit", world: "block-plugin" });

    use exports::xbhost::block::block::Guest;
    use xbhost::block::types::{Fragment, ValidationMessage, View};
    use xbhost::block::user_tags::Scope;
    use xbhost::block::{context, user_state, user_tags};

    struct OldButCompatible;

    impl Guest for OldButCompatible {
        fn render(_view: View) -> Result<Fragment, String> {
            let user = context::current_user();
            let tag = user_tags::get(Scope::Course, "contract_0_1_0.seen")
                .map_err(|e| format!("{e:?}"))?;
            let state = user_state::get().map_err(|e| format!("{e:?}"))?;
            Ok(Fragment {
                html: format!(
                    "<p>0.1.0 block for {} (tag {:?}, state {:?})</p>",
                    user.username, tag, state
                ),
                hidden: false,
                title: None,
                icon: None,
                tooltip: None,
            })
        }

        fn visible_children() -> Result<Vec<String>, String> {
            Ok(Vec::new())
        }

        fn validate() -> Vec<ValidationMessage> {
            Vec::new()
        }

        fn handle(name: String, _payload: String) -> Result<String, String> {
            user_tags::set(Scope::Course, "contract_0_1_0.seen", "yes")
                .map_err(|e| format!("{e:?}"))?;
            user_state::set("{\"handled\":true}").map_err(|e| format!("{e:?}"))?;
            Ok(format!("{{\"handled\":{name:?}}}"))
        }
    }

    export!(OldButCompatible);

    const METADATA: &[u8] = br#"{"name":"contract_0_1_0","version":"0.1.0","contract":"0.1.0"}"#;
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
