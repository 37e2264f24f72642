//! Compiled components on disk, so a restart loads plugins without recompiling them.
//!
//! A file is named by blake3(wasm) and a hash of the engine's compatibility settings, and
//! holds a header, the blake3 of the payload, and the payload (`Component::serialize`).
//! Loading checks the header and the checksum before wasmtime sees a byte; wasmtime then
//! checks that the artifact was made by a compatible engine. A corrupted, truncated or
//! foreign file is removed and the plugin recompiled. (Whoever can write the data
//! directory could forge a file with a valid checksum: the data directory is trusted.)

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use tracing::warn;
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"xbhost-cwasm-v1\n";

/// Feeds `Hash` into blake3, so the engine hash is stable across Rust versions.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let mut out = [0u8; 8];
        out.copy_from_slice(&self.0.finalize().as_bytes()[..8]);
        u64::from_le_bytes(out)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

pub struct CompiledCache {
    dir: PathBuf,
    engine_hash: String,
}

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Compiled,
    Cache,
}

impl CompiledCache {
    pub fn new(dir: &Path, engine: &Engine) -> Result<CompiledCache> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the compiled cache {}", dir.display()))?;
        let mut h = Blake3Hasher(blake3::Hasher::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        Ok(CompiledCache {
            dir: dir.to_path_buf(),
            engine_hash: format!("{:016x}", h.finish()),
        })
    }

    pub fn path(&self, wasm_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{wasm_hash}-{}.cwasm", self.engine_hash))
    }

    /// The cached component, if there is a sound one; a bad file is removed.
    pub fn load(&self, engine: &Engine, plugin: &str, wasm_hash: &str) -> Option<Component> {
        let path = self.path(wasm_hash);
        let bytes = std::fs::read(&path).ok()?;
        match Self::verify(&bytes) {
            Ok(payload) => {
                // SAFETY: the payload is byte for byte what `Component::serialize` wrote for
                // this plugin (the checksum says so), and wasmtime checks that it was made by
                // an engine compatible with this one before using it.
                match unsafe { Component::deserialize(engine, payload) } {
                    Ok(component) => return Some(component),
                    Err(e) => {
                        warn!(plugin, path = %path.display(), error = %e, "compiled cache file was made by another engine; recompiling")
                    }
                }
            }
            Err(why) => {
                warn!(plugin, path = %path.display(), why, "compiled cache file is corrupt; recompiling")
            }
        }
        let _ = std::fs::remove_file(&path);
        None
    }

    fn verify(bytes: &[u8]) -> Result<&[u8], &'static str> {
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or("bad header")?;
        if rest.len() < 32 {
            return Err("truncated");
        }
        let (sum, payload) = rest.split_at(32);
        if blake3::hash(payload).as_bytes() != sum {
            return Err("checksum mismatch");
        }
        Ok(payload)
    }

    /// Writes a compiled component (to a temporary file, then renamed into place).
    pub fn store(&self, wasm_hash: &str, component: &Component) -> Result<()> {
        let payload = component.serialize().map_err(anyhow::Error::from)?;
        let mut bytes = Vec::with_capacity(MAGIC.len() + 32 + payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(blake3::hash(&payload).as_bytes());
        bytes.extend_from_slice(&payload);
        let path = self.path(wasm_hash);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("renaming into {}", path.display()))?;
        Ok(())
    }
}
