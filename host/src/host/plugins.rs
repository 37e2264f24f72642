//! Plugins: checking and installing a plugin (component, metadata, contract, name), the
//! installed list, and loading one now.

use anyhow::{Result, bail};
use tracing::info;

use super::Host;
use crate::errors::InvalidId;
use crate::runtime::cache::Origin;
use crate::runtime::plugin::{CONTRACT_VERSION, contract_compatible, read_metadata};
use crate::storage::PluginRecord;

/// The plugins xbhost ships (`plugins/*` of the repository; `cargo xtask build` puts them,
/// and only them, in `target/plugins/`): what `new-block` will not name a new block
/// (installing it would replace one of these), and what the tests install as "the shipped
/// plugins". A unit test keeps it equal to the repository's `plugins/` directory.
pub const SHIPPED_PLUGINS: &[&str] = &[
    "annotatable",
    "chapter",
    "conditional",
    "course",
    "done",
    "google_calendar",
    "google_document",
    "html",
    "library_content",
    "library_sourced",
    "lti",
    "lti_consumer",
    "poll",
    "problem",
    "rate",
    "sequential",
    "split_test",
    "survey",
    "thumbs",
    "unsupported",
    "vertical",
    "video",
];

/// Longest plugin name, in characters.
pub const MAX_PLUGIN_NAME_CHARS: usize = 64;

/// A plugin's name is a block type: it goes into course documents, store keys, metrics
/// labels, the page's `data-block-type` and the workbench, so it is kept to 1 to 64 of
/// `a-z`, `0-9`, `_` and `-`, starting with a letter or digit (no markup, no spaces, no
/// case to confuse). The error names the name, escaped.
pub fn check_plugin_name(name: &str) -> Result<()> {
    let shown = crate::ids::truncate(name, 40);
    let problem = if name.is_empty() {
        "is empty".to_string()
    } else if name.chars().count() > MAX_PLUGIN_NAME_CHARS {
        format!("is over {MAX_PLUGIN_NAME_CHARS} characters")
    } else if let Some(c) = name
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
    {
        format!("contains {c:?}")
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        "does not start with a letter or digit".to_string()
    } else {
        return Ok(());
    };
    Err(InvalidId(format!(
        "plugin name {shown:?} {problem}: a plugin name is 1 to {MAX_PLUGIN_NAME_CHARS} of a-z, \
         0-9, `_` and `-`, starting with a letter or digit (give another with --name, or ?name= over HTTP)"
    ))
    .into())
}

impl Host {
    pub fn plugins(&self) -> Result<Vec<PluginRecord>> {
        self.storage().plugins()
    }

    /// Checks and stores a plugin. Nothing is stored unless the plugin is a component built
    /// with the SDK for a compatible contract that compiles and links.
    pub fn add_plugin(&self, wasm: &[u8], name: Option<&str>) -> Result<PluginRecord> {
        let record = record_for(wasm, name)?;
        self.inner.handle.plugins.install(record.clone(), wasm)?;
        info!(plugin = %record.name, version = %record.version, hash = %record.hash, "plugin added");
        Ok(record)
    }

    /// Checks a plugin as [`Host::add_plugin`] does (metadata, contract, name; compiled and
    /// linked) and stores nothing: what it would store. `plugin add` of several files checks
    /// them all first, so a bad one among them stores none (the compiled cache keeps what
    /// this compiled, so adding it next compiles nothing again).
    pub fn check_plugin(&self, wasm: &[u8], name: Option<&str>) -> Result<PluginRecord> {
        let record = record_for(wasm, name)?;
        self.inner.handle.plugins.check(&record, wasm)?;
        Ok(record)
    }

    /// The client-side file `file` of plugin `name` as installed with wasm hash `hash`
    /// (contract 0.1.2), for the block frames that load it; `None` when the plugin, that
    /// version of it or the file is not there (a page of an older version: reloading gets
    /// the new URL).
    pub fn client_asset(
        &self,
        name: &str,
        hash: &str,
        file: &str,
    ) -> Result<Option<crate::runtime::assets::Asset>> {
        check_plugin_name(name)?;
        match self.storage().plugin(name)? {
            Some(record) if record.hash == hash => {}
            _ => return Ok(None),
        }
        let plugin = self.inner.handle.plugin(name)?;
        if plugin.record.hash != hash {
            return Ok(None);
        }
        Ok(plugin.assets.get(file).cloned())
    }

    /// Loads (compiling, or from the compiled cache) a plugin now, and says from where.
    pub fn load_plugin(&self, name: &str) -> Result<Origin> {
        Ok(self.inner.handle.plugin(name)?.origin)
    }
}

/// The record of a plugin that may be installed (a component built with the SDK for a
/// compatible contract, under a valid name), or why it may not be.
fn record_for(wasm: &[u8], name: Option<&str>) -> Result<PluginRecord> {
    let metadata = read_metadata(wasm)?;
    if !contract_compatible(&metadata.contract) {
        bail!(
            "plugin {:?} {} was built for contract {}, but this host implements contract {CONTRACT_VERSION} \
             (a plugin must match the host's MAJOR.MINOR): rebuild it against a matching xbhost-sdk",
            metadata.name,
            metadata.version,
            metadata.contract
        );
    }
    let name = name.unwrap_or(&metadata.name);
    check_plugin_name(name)?;
    Ok(PluginRecord {
        name: name.to_string(),
        version: metadata.version,
        contract: metadata.contract,
        hash: blake3::hash(wasm).to_hex().to_string(),
        size: wasm.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::{SHIPPED_PLUGINS, check_plugin_name};

    #[test]
    fn the_shipped_list_is_the_plugins_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
        let mut found: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("Cargo.toml").is_file())
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(
            found, SHIPPED_PLUGINS,
            "plugins/ and SHIPPED_PLUGINS differ"
        );
    }

    #[test]
    fn plugin_names_are_short_lowercase_words() {
        for good in [
            "html",
            "split_test",
            "lti-consumer",
            "a",
            "block2",
            &"x".repeat(64),
        ] {
            check_plugin_name(good).unwrap();
        }
        for (bad, why) in [
            ("'<script>'", "contains '\\''"),
            ("", "is empty"),
            ("Html", "contains 'H'"),
            ("two words", "contains ' '"),
            ("-x", "does not start"),
            ("_x", "does not start"),
            (&"x".repeat(65), "over 64"),
            ("caf\u{e9}", "contains '\u{e9}'"),
        ] {
            let err = check_plugin_name(bad).unwrap_err().to_string();
            assert!(
                err.contains(why) && err.contains("plugin name"),
                "{bad}: {err}"
            );
        }
    }
}
