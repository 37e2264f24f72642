//! Compiled components on disk, so a restart loads plugins without recompiling them.
//!
//! Loading a compiled component runs native code, so only artifacts this store compiled are
//! ever deserialized. A file is named by blake3(wasm) and a hash of the engine's
//! compatibility settings, and holds a versioned header, a MAC, and the payload
//! (`Component::serialize`). The MAC is a keyed blake3 over the header, the blake3 of the
//! stored wasm, the engine's compatibility hash and the payload; its 32-byte key belongs to
//! the store (made from the OS random source on first need, see [`CompiledCache::keyed_by`]),
//! not to the cache directory. Loading checks the header and the MAC before wasmtime sees a
//! byte, so a file that was altered, truncated, written by another store (another key) or
//! for another engine configuration is never deserialized: it is removed, logged, and the
//! plugin recompiled (which rewrites the file). wasmtime then checks on its own that the
//! artifact suits this engine. Files of an older format (version 1 had an unkeyed checksum
//! that anyone could recompute) are stale and recompiled the same way.
//!
//! Whoever can read the store can read the key: the store is trusted, the cache directory
//! need not be.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context as _, Result, anyhow};
use tracing::{info, warn};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::storage::Storage;

/// The header of every cache file: its format and version.
const MAGIC: &[u8; 16] = b"xbhost-cwasm-v2\n";
/// What every version's header starts with, to tell an older file from a foreign one.
const MAGIC_FAMILY: &[u8] = b"xbhost-cwasm-v";
/// The length of the MAC that follows the header.
const MAC_LEN: usize = 32;
/// The name of the MAC key in the store's metadata ([`Storage::meta_or_insert`]).
pub const KEY_NAME: &str = "compiled-cache-mac-key";

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

/// Where the MAC key comes from.
enum MacKey {
    /// Made by this cache from the OS random source: its files verify in this process only.
    Own([u8; 32]),
    /// The store's, read (and made there on first need) when the cache is first used.
    Store {
        storage: Arc<dyn Storage>,
        key: OnceLock<[u8; 32]>,
    },
}

pub struct CompiledCache {
    dir: PathBuf,
    /// blake3 of the engine's compatibility hash, bound into every MAC.
    engine_hash: [u8; 32],
    /// Its first 8 bytes, in hex: part of every file name.
    engine_tag: String,
    key: MacKey,
}

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Compiled,
    Cache,
}

/// Why a cache file is not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Written in an older format (before the MAC): stale, not suspicious.
    OldFormat,
    /// Not something this store wrote for this wasm and engine.
    Bad(&'static str),
}

/// A fresh 32-byte key from the OS random source.
fn random_key() -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow!("the OS random source failed: {e}"))?;
    Ok(key)
}

/// The store's MAC key, made and stored (first writer wins) if it has none yet.
fn store_key(storage: &dyn Storage) -> Result<[u8; 32]> {
    let stored = storage.meta_or_insert(KEY_NAME, &random_key()?)?;
    stored.as_slice().try_into().map_err(|_| {
        anyhow!(
            "the store's compiled-cache key is {} bytes long, not 32",
            stored.len()
        )
    })
}

impl CompiledCache {
    /// A cache in `dir` for components of `engine`, with a key of its own: what it writes
    /// verifies only for this value. [`CompiledCache::keyed_by`] gives it the store's key,
    /// so its files also verify after a restart.
    pub fn new(dir: &Path, engine: &Engine) -> Result<CompiledCache> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the compiled cache {}", dir.display()))?;
        let mut h = Blake3Hasher(blake3::Hasher::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        Ok(CompiledCache {
            dir: dir.to_path_buf(),
            engine_hash: *h.0.finalize().as_bytes(),
            engine_tag: format!("{:016x}", h.finish()),
            key: MacKey::Own(random_key()?),
        })
    }

    /// The same cache, its files MACed with the store's key (read, or made and stored, on
    /// first use): files another store wrote do not verify, files this one wrote do.
    pub fn keyed_by(self, storage: Arc<dyn Storage>) -> CompiledCache {
        CompiledCache {
            key: MacKey::Store {
                storage,
                key: OnceLock::new(),
            },
            ..self
        }
    }

    pub fn path(&self, wasm_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{wasm_hash}-{}.cwasm", self.engine_tag))
    }

    fn key(&self) -> Result<[u8; 32]> {
        match &self.key {
            MacKey::Own(key) => Ok(*key),
            MacKey::Store { storage, key } => {
                if let Some(key) = key.get() {
                    return Ok(*key);
                }
                let stored = store_key(storage.as_ref())?;
                // Racing first uses read the same stored key.
                Ok(*key.get_or_init(|| stored))
            }
        }
    }

    /// The MAC of a payload compiled from the wasm whose blake3 (hex) is `wasm_hash`.
    fn mac(&self, key: &[u8; 32], wasm_hash: &str, payload: &[u8]) -> blake3::Hash {
        let mut mac = blake3::Hasher::new_keyed(key);
        mac.update(MAGIC);
        mac.update(&(wasm_hash.len() as u64).to_le_bytes());
        mac.update(wasm_hash.as_bytes());
        mac.update(&self.engine_hash);
        mac.update(&(payload.len() as u64).to_le_bytes());
        mac.update(payload);
        mac.finalize()
    }

    /// The cached component, if this store wrote a sound one for this wasm and engine; any
    /// other file is removed (and the caller recompiles and rewrites it).
    pub fn load(&self, engine: &Engine, plugin: &str, wasm_hash: &str) -> Option<Component> {
        let path = self.path(wasm_hash);
        // Only a regular file is read: a FIFO or device planted in the cache directory
        // would otherwise block or feed the host (a link is not followed either).
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                warn!(plugin, path = %path.display(), "the compiled cache entry is not a regular file; removing it and recompiling");
                let _ = std::fs::remove_file(&path);
                return None;
            }
            Err(_) => return None,
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                warn!(plugin, path = %path.display(), error = %e, "cannot read the compiled cache file; recompiling");
                return None;
            }
        };
        let key = match self.key() {
            Ok(key) => key,
            Err(e) => {
                warn!(plugin, path = %path.display(), error = %format!("{e:#}"), "cannot get the compiled cache's key from the store; compiling without the cache");
                return None;
            }
        };
        match self.verify(&key, wasm_hash, &bytes) {
            Ok(payload) => {
                // SAFETY: the MAC says this store's key made this file for this wasm and this
                // engine's compatibility hash, and only `store` below writes with that key:
                // the payload is byte for byte what `Component::serialize` wrote here. wasmtime
                // also checks that it was made by an engine compatible with this one.
                match unsafe { Component::deserialize(engine, payload) } {
                    Ok(component) => return Some(component),
                    Err(e) => {
                        warn!(plugin, path = %path.display(), error = %e, "compiled cache file was made by another engine; recompiling")
                    }
                }
            }
            Err(Refusal::OldFormat) => {
                info!(plugin, path = %path.display(), "compiled cache file has an older format (no MAC); recompiling")
            }
            Err(Refusal::Bad(why)) => {
                warn!(plugin, path = %path.display(), why, "compiled cache file refused before loading; recompiling")
            }
        }
        let _ = std::fs::remove_file(&path);
        None
    }

    /// The payload, if the header is this version's and the MAC verifies. Nothing is
    /// deserialized before this says yes.
    fn verify<'a>(
        &self,
        key: &[u8; 32],
        wasm_hash: &str,
        bytes: &'a [u8],
    ) -> Result<&'a [u8], Refusal> {
        let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
            return Err(if bytes.starts_with(MAGIC_FAMILY) {
                Refusal::OldFormat
            } else {
                Refusal::Bad("bad header")
            });
        };
        if rest.len() < MAC_LEN {
            return Err(Refusal::Bad("truncated"));
        }
        let (mac, payload) = rest.split_at(MAC_LEN);
        let mac: [u8; MAC_LEN] = mac.try_into().expect("split at MAC_LEN");
        // blake3::Hash compares in constant time.
        if blake3::Hash::from_bytes(mac) != self.mac(key, wasm_hash, payload) {
            return Err(Refusal::Bad(
                "its MAC does not verify: altered, truncated, or written by another store",
            ));
        }
        Ok(payload)
    }

    /// Writes a compiled component (to a fresh temporary file, then renamed into place).
    pub fn store(&self, wasm_hash: &str, component: &Component) -> Result<()> {
        let key = self
            .key()
            .context("cannot get the compiled cache's key from the store")?;
        let payload = component.serialize().map_err(anyhow::Error::from)?;
        let mut bytes = Vec::with_capacity(MAGIC.len() + MAC_LEN + payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(self.mac(&key, wasm_hash, &payload).as_bytes());
        bytes.extend_from_slice(&payload);
        let path = self.path(wasm_hash);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        // A new file, never one found in place (a link there must not redirect the write).
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        if let Err(e) = file.write_all(&bytes) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("writing {}", tmp.display()));
        }
        drop(file);
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("renaming into {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SledStorage;

    /// The smallest component: a header and nothing else.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";
    /// The payload offset of a cache file of this format: header, then MAC.
    const PAYLOAD_AT: usize = MAGIC.len() + MAC_LEN;
    const WASM_HASH: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn component(engine: &Engine) -> Component {
        Component::new(engine, EMPTY_COMPONENT).unwrap()
    }

    fn cache(dir: &Path, engine: &Engine, storage: &Arc<SledStorage>) -> CompiledCache {
        CompiledCache::new(dir, engine)
            .unwrap()
            .keyed_by(storage.clone())
    }

    #[test]
    fn what_this_store_wrote_loads_and_the_key_is_the_stores() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(SledStorage::temporary().unwrap());
        cache(dir.path(), &engine, &storage)
            .store(WASM_HASH, &component(&engine))
            .unwrap();
        // Another cache value on the same store (a restart) has the same key.
        let again = cache(dir.path(), &engine, &storage);
        assert!(again.load(&engine, "p", WASM_HASH).is_some());
        let key = storage.meta_or_insert(KEY_NAME, &[0; 32]).unwrap();
        assert_eq!(key, again.key().unwrap(), "the key is the one in the store");
        assert_ne!(key, [0; 32], "the key is random, not the caller's default");
    }

    #[test]
    fn the_mac_binds_key_wasm_engine_and_every_payload_byte() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(SledStorage::temporary().unwrap());
        let c = cache(dir.path(), &engine, &storage);
        c.store(WASM_HASH, &component(&engine)).unwrap();
        let good = std::fs::read(c.path(WASM_HASH)).unwrap();
        let key = c.key().unwrap();
        assert!(c.verify(&key, WASM_HASH, &good).is_ok());

        let bad = Refusal::Bad(
            "its MAC does not verify: altered, truncated, or written by another store",
        );
        assert_eq!(c.verify(&random_key().unwrap(), WASM_HASH, &good), Err(bad));
        let other_wasm = WASM_HASH.replace('0', "f");
        assert_eq!(c.verify(&key, &other_wasm, &good), Err(bad));
        let other_engine = CompiledCache {
            engine_hash: [9; 32],
            ..cache(dir.path(), &engine, &storage)
        };
        assert_eq!(other_engine.verify(&key, WASM_HASH, &good), Err(bad));
        for i in [0, PAYLOAD_AT - 1, PAYLOAD_AT, good.len() - 1] {
            let mut flipped = good.clone();
            flipped[i] ^= 1;
            assert!(c.verify(&key, WASM_HASH, &flipped).is_err(), "byte {i}");
        }
        assert_eq!(c.verify(&key, WASM_HASH, &good[..good.len() - 1]), Err(bad));
        assert_eq!(
            c.verify(&key, WASM_HASH, &good[..PAYLOAD_AT - 1]),
            Err(Refusal::Bad("truncated"))
        );
        // Version 1: the same layout with an unkeyed checksum anyone can recompute.
        let payload = &good[PAYLOAD_AT..];
        let mut v1 = b"xbhost-cwasm-v1\n".to_vec();
        v1.extend_from_slice(blake3::hash(payload).as_bytes());
        v1.extend_from_slice(payload);
        assert_eq!(c.verify(&key, WASM_HASH, &v1), Err(Refusal::OldFormat));
        // ... and that checksum in this version's place is no MAC.
        let mut forged = good.clone();
        forged[MAGIC.len()..PAYLOAD_AT].copy_from_slice(blake3::hash(payload).as_bytes());
        assert_eq!(c.verify(&key, WASM_HASH, &forged), Err(bad));
        assert_eq!(
            c.verify(&key, WASM_HASH, b"garbage"),
            Err(Refusal::Bad("bad header"))
        );
    }

    /// Log lines, captured.
    #[derive(Clone, Default)]
    struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_file_of_another_store_is_refused_removed_and_logged_naming_plugin_and_file() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let ours = Arc::new(SledStorage::temporary().unwrap());
        let theirs = Arc::new(SledStorage::temporary().unwrap());
        cache(dir.path(), &engine, &theirs)
            .store(WASM_HASH, &component(&engine))
            .unwrap();
        let c = cache(dir.path(), &engine, &ours);
        let path = c.path(WASM_HASH);
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let loaded =
            tracing::subscriber::with_default(subscriber, || c.load(&engine, "html", WASM_HASH));
        assert!(loaded.is_none());
        assert!(!path.exists(), "the refused file is removed");
        let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert!(
            logs.contains("WARN")
                && logs.contains("plugin=\"html\"")
                && logs.contains(&path.display().to_string())
                && logs.contains("MAC does not verify"),
            "{logs}"
        );

        // A cache without a store has a key of its own: its files verify for it alone.
        let own = CompiledCache::new(dir.path(), &engine).unwrap();
        own.store(WASM_HASH, &component(&engine)).unwrap();
        assert!(own.load(&engine, "p", WASM_HASH).is_some());
        assert!(
            CompiledCache::new(dir.path(), &engine)
                .unwrap()
                .load(&engine, "p", WASM_HASH)
                .is_none()
        );
    }

    #[test]
    fn a_stored_key_of_the_wrong_length_is_an_error_not_a_weak_key() {
        let storage = SledStorage::temporary().unwrap();
        storage.meta_or_insert(KEY_NAME, b"short").unwrap();
        let err = format!("{:#}", store_key(&storage).unwrap_err());
        assert!(err.contains("5 bytes long"), "{err}");
    }
}
