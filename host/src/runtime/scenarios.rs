//! The example scenarios a plugin ships (the SDK's `scenarios!`): the `xbhost-scenarios`
//! custom section, read once when the plugin is checked or loaded. The section is the
//! plugin author's; `xbhost_sdk::scenarios::parse` bounds and checks all of it (size,
//! count, blocks, depth, names), so an ill-formed section refuses the plugin as an
//! ill-formed `xbhost-assets` section does.

use anyhow::{Result, bail};
use wasmparser::{Parser, Payload};

pub use xbhost_sdk::scenarios::{
    MAX_BLOCKS_PER_SCENARIO, MAX_DEPTH, MAX_SCENARIOS, MAX_SECTION_BYTES, Scenario, ScenarioBlock,
};

/// The custom section's name (the SDK's `SCENARIOS_SECTION`).
pub const SCENARIOS_SECTION: &str = xbhost_sdk::SCENARIOS_SECTION;

/// The scenarios of a component (none when it has no `xbhost-scenarios` section). An error
/// says what is wrong with the section, naming the scenario at fault.
pub fn read_scenarios(wasm: &[u8]) -> Result<Vec<Scenario>> {
    let mut found = None;
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(Payload::CustomSection(section)) = payload else {
            // A malformed component is refused by its metadata and compilation already.
            continue;
        };
        if section.name() != SCENARIOS_SECTION {
            continue;
        }
        if found.is_some() {
            bail!("it has two {SCENARIOS_SECTION} sections");
        }
        match xbhost_sdk::scenarios::parse(section.data()) {
            Ok(scenarios) => found = Some(scenarios),
            Err(e) => bail!("its {SCENARIOS_SECTION} section is refused: {e}"),
        }
    }
    Ok(found.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component-shaped module with these custom sections (enough for the reader, which
    /// looks only at custom sections).
    fn with_sections(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut wasm = b"\0asm\x0d\0\x01\0".to_vec();
        for (name, data) in sections {
            crate::runtime::plugin::append_custom_section(&mut wasm, name, data);
        }
        wasm
    }

    #[test]
    fn reads_the_section_and_refuses_a_bad_or_second_one() {
        let good = br#"[{"name": "a", "title": "A", "blocks": [{"type": "html"}]}]"#;
        let read = read_scenarios(&with_sections(&[(SCENARIOS_SECTION, good)])).unwrap();
        assert_eq!(read[0].name, "a");
        assert!(read_scenarios(&with_sections(&[])).unwrap().is_empty());
        let err = read_scenarios(&with_sections(&[
            (SCENARIOS_SECTION, good),
            (SCENARIOS_SECTION, good),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("two xbhost-scenarios"), "{err}");
        let big = vec![b' '; xbhost_sdk::scenarios::MAX_SECTION_BYTES + 1];
        let err = read_scenarios(&with_sections(&[(SCENARIOS_SECTION, &big)])).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
        let bad = br#"[{"name": "x y", "title": "A", "blocks": [{"type": "html"}]}]"#;
        let err = read_scenarios(&with_sections(&[(SCENARIOS_SECTION, bad)])).unwrap_err();
        assert!(err.to_string().contains("scenario \"x y\""), "{err}");
    }
}
