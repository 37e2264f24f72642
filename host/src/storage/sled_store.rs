//! The embedded store: sled, one tree per kind of data.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use sled::Transactional;

use super::contract::{
    BlockWrites, CarriedTag, CourseWrite, FirstWrite, OutboxEntry, PluginRecord, Storage,
};
use super::group_commit::GroupCommit;
use super::sled_courses::{CourseTrees, Expect};
use super::sled_outbox;
use super::sled_sync::SyncError;
use super::sled_tallies;
use crate::model::CourseDoc;

/// Memory sled may use to cache pages of the store.
pub const CACHE_BYTES: u64 = 64 << 20;

/// sled-backed [`Storage`]. Keys join their parts with NUL, which ids never contain.
pub struct SledStorage {
    db: sled::Db,
    course_tags: sled::Tree,
    user_tags: sled::Tree,
    user_state: sled::Tree,
    courses: sled::Tree,
    /// Each course's version, beside its document (`sled_courses`).
    course_versions: sled::Tree,
    plugins: sled::Tree,
    plugin_wasm: sled::Tree,
    enrollments: sled::Tree,
    /// The store's own metadata ([`Storage::meta_or_insert`]).
    meta: sled::Tree,
    /// Events waiting until the event log holds them, by id (`sled_outbox`).
    outbox: sled::Tree,
    /// Counts shared by every learner of a block (`sled_tallies`).
    block_tallies: sled::Tree,
    /// Concurrent flushes share one sync of sled's log (`group_commit`).
    syncs: GroupCommit<SyncError>,
}

impl SledStorage {
    /// Opens (or creates) the store in `dir`, with a page cache of at most
    /// [`CACHE_BYTES`] (sled's default is 1 GiB).
    pub fn open(dir: &Path) -> Result<SledStorage> {
        super::sled_snapshots::remove_unfinished(dir)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|e| {
                // sled reports the lock as an I/O error whose message says so (its kind is Other).
                let locked = matches!(&e, sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("could not acquire lock"));
                if locked {
                    // Not chained: sled's text is the OS error's debug form (`Os { code: 11 ..`).
                    tracing::debug!(store = %dir.display(), "sled: {e}");
                    anyhow::Error::new(crate::errors::StoreInUse {
                        dir: dir.to_path_buf(),
                    })
                } else {
                    anyhow::Error::new(e)
                        .context(format!("cannot open the store in {}", dir.display()))
                }
            })?;
        Self::from_db(db)
    }

    /// The sled database and its `meta` tree, for `RecoveringStore`'s health checks
    /// and flush generation (`storage::health`).
    pub(super) fn db_and_meta(&self) -> (&sled::Db, &sled::Tree) {
        (&self.db, &self.meta)
    }

    /// Makes every write that completed before the call durable: a sync of sled's log
    /// that began after the call, shared with the flushes of other threads that arrive
    /// while one runs (`group_commit`).
    fn sync(&self) -> Result<(), sled::Error> {
        let sync = || self.db.flush().map(drop).map_err(SyncError);
        self.syncs.commit(sync).map_err(|e| e.0)
    }

    fn course_trees(&self) -> CourseTrees<'_> {
        CourseTrees {
            docs: &self.courses,
            versions: &self.course_versions,
        }
    }

    /// The tree `name` (`course_tags`, `user_tags`, `user_state`, `courses`,
    /// `course_versions`, `plugins`, `plugin_wasm`, `enrollments`, `meta`, `outbox`,
    /// `block_tallies`), for
    /// `store copy`, which reads every row of each in key order.
    pub(super) fn tree(&self, name: &str) -> Option<&sled::Tree> {
        Some(match name {
            "course_tags" => &self.course_tags,
            "user_tags" => &self.user_tags,
            "user_state" => &self.user_state,
            "courses" => &self.courses,
            "course_versions" => &self.course_versions,
            "plugins" => &self.plugins,
            "plugin_wasm" => &self.plugin_wasm,
            "enrollments" => &self.enrollments,
            "meta" => &self.meta,
            "outbox" => &self.outbox,
            "block_tallies" => &self.block_tallies,
            _ => return None,
        })
    }

    /// A store that lives in memory only, for tests.
    pub fn temporary() -> Result<SledStorage> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<SledStorage> {
        Ok(SledStorage {
            course_tags: db.open_tree("course_tags")?,
            user_tags: db.open_tree("user_tags")?,
            user_state: db.open_tree("user_state")?,
            courses: db.open_tree("courses")?,
            course_versions: db.open_tree("course_versions")?,
            plugins: db.open_tree("plugins")?,
            plugin_wasm: db.open_tree("plugin_wasm")?,
            enrollments: db.open_tree("enrollments")?,
            meta: db.open_tree("meta")?,
            outbox: db.open_tree("outbox")?,
            block_tallies: db.open_tree("block_tallies")?,
            db,
            syncs: GroupCommit::new(),
        })
    }
}

/// Joins key parts with NUL. Refuses a part that contains NUL, so keys never collide.
fn key(parts: &[&str]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if part.contains('\0') {
            bail!("storage key part {part:?} contains NUL");
        }
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part.as_bytes());
    }
    Ok(out)
}

/// The key prefix of everything under `parts` (with the trailing separator).
fn prefix(parts: &[&str]) -> Result<Vec<u8>> {
    let mut k = key(parts)?;
    k.push(0);
    Ok(k)
}

fn text(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).context("stored text is not UTF-8")
}

/// Every (suffix after prefix, value) under a prefix, as text.
fn scan(tree: &sled::Tree, prefix: &[u8]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in tree.scan_prefix(prefix) {
        let (k, v) = item?;
        out.insert(text(&k[prefix.len()..])?, text(&v)?);
    }
    Ok(out)
}

impl Storage for SledStorage {
    fn course_tags(&self, course: &str, user: &str) -> Result<BTreeMap<String, String>> {
        scan(&self.course_tags, &prefix(&[course, user])?)
    }

    fn course_tag(&self, course: &str, user: &str, tag: &str) -> Result<Option<String>> {
        self.course_tags
            .get(key(&[course, user, tag])?)?
            .map(|v| text(&v))
            .transpose()
    }

    fn set_course_tag(&self, course: &str, user: &str, tag: &str, value: &str) -> Result<()> {
        self.course_tags
            .insert(key(&[course, user, tag])?, value.as_bytes())?;
        Ok(())
    }

    fn set_course_tag_if_absent(
        &self,
        course: &str,
        user: &str,
        tag: &str,
        value: &str,
    ) -> Result<FirstWrite> {
        let k = key(&[course, user, tag])?;
        match self
            .course_tags
            .compare_and_swap(k, None as Option<&[u8]>, Some(value.as_bytes()))?
        {
            Ok(()) => Ok(FirstWrite::Written),
            Err(e) => Ok(FirstWrite::Existing(text(
                e.current
                    .as_deref()
                    .context("tag vanished during a first write")?,
            )?)),
        }
    }

    fn replace_course_tag(
        &self,
        course: &str,
        user: &str,
        tag: &str,
        expected: &str,
        value: &str,
    ) -> Result<FirstWrite> {
        let k = key(&[course, user, tag])?;
        match self.course_tags.compare_and_swap(
            k,
            Some(expected.as_bytes()),
            Some(value.as_bytes()),
        )? {
            Ok(()) => Ok(FirstWrite::Written),
            Err(e) => match e.current {
                Some(current) => Ok(FirstWrite::Existing(text(&current)?)),
                None => bail!("course tag {tag:?} of user {user:?} vanished during a replace"),
            },
        }
    }

    fn users_with_course_tag(&self, course: &str, tag: &str) -> Result<Vec<(String, String)>> {
        let p = prefix(&[course])?;
        let mut out = Vec::new();
        for item in self.course_tags.scan_prefix(&p) {
            let (k, v) = item?;
            let rest = &k[p.len()..];
            let Some(sep) = rest.iter().position(|&b| b == 0) else {
                continue;
            };
            if &rest[sep + 1..] == tag.as_bytes() {
                out.push((text(&rest[..sep])?, text(&v)?));
            }
        }
        Ok(out)
    }

    fn course_users(&self, course: &str) -> Result<Vec<String>> {
        let p = prefix(&[course])?;
        let mut users = std::collections::BTreeSet::new();
        for tree in [&self.course_tags, &self.user_state] {
            for item in tree.scan_prefix(&p) {
                let (k, _) = item?;
                let rest = &k[p.len()..];
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                users.insert(text(&rest[..end])?);
            }
        }
        Ok(users.into_iter().collect())
    }

    fn user_tags(&self, user: &str) -> Result<BTreeMap<String, String>> {
        scan(&self.user_tags, &prefix(&[user])?)
    }

    fn user_tag(&self, user: &str, tag: &str) -> Result<Option<String>> {
        self.user_tags
            .get(key(&[user, tag])?)?
            .map(|v| text(&v))
            .transpose()
    }

    fn set_user_tag(&self, user: &str, tag: &str, value: &str) -> Result<()> {
        self.user_tags
            .insert(key(&[user, tag])?, value.as_bytes())?;
        Ok(())
    }

    fn user_state(&self, course: &str, user: &str, usage: &str) -> Result<Option<String>> {
        self.user_state
            .get(key(&[course, user, usage])?)?
            .map(|v| text(&v))
            .transpose()
    }

    fn block_tallies(&self, course: &str, usage: &str) -> Result<BTreeMap<String, i64>> {
        sled_tallies::read(&self.block_tallies, &prefix(&[course, usage])?, usage)
    }

    fn set_user_state(&self, course: &str, user: &str, usage: &str, json: &str) -> Result<()> {
        self.user_state
            .insert(key(&[course, user, usage])?, json.as_bytes())?;
        Ok(())
    }

    fn course(&self, course_key: &str) -> Result<Option<CourseDoc>> {
        match self.courses.get(key(&[course_key])?)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("stored course {course_key:?} does not parse")),
        }
    }

    fn put_course(&self, doc: &CourseDoc) -> Result<()> {
        self.course_trees()
            .write(&key(&[&doc.course_key])?, doc, Expect::Any)?;
        Ok(())
    }

    fn course_with_version(&self, course_key: &str) -> Result<Option<(CourseDoc, u64)>> {
        self.course_trees().read(&key(&[course_key])?, course_key)
    }

    fn put_course_if_version(&self, doc: &CourseDoc, expected: Option<u64>) -> Result<CourseWrite> {
        self.course_trees()
            .write(&key(&[&doc.course_key])?, doc, Expect::Version(expected))
    }

    fn course_keys(&self) -> Result<Vec<String>> {
        self.courses.iter().keys().map(|k| text(&k?)).collect()
    }

    fn plugin(&self, name: &str) -> Result<Option<PluginRecord>> {
        match self.plugins.get(key(&[name])?)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("stored record of plugin {name:?} does not parse")),
        }
    }

    fn plugins(&self) -> Result<Vec<PluginRecord>> {
        self.plugins
            .iter()
            .values()
            .map(|v| Ok(serde_json::from_slice(&v?)?))
            .collect()
    }

    fn plugin_wasm(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.plugin_wasm.get(key(&[hash])?)?.map(|v| v.to_vec()))
    }

    fn put_plugin(&self, record: &PluginRecord, wasm: &[u8]) -> Result<()> {
        let name_key = key(&[&record.name])?;
        let hash_key = key(&[&record.hash])?;
        let record_json = serde_json::to_vec(record)?;
        (&self.plugins, &self.plugin_wasm)
            .transaction(|(plugins, blobs)| {
                blobs.insert(hash_key.as_slice(), wasm)?;
                plugins.insert(name_key.as_slice(), record_json.as_slice())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| {
                sled_outbox::transaction_error(e, &|| format!("storing plugin {:?}", record.name))
            })?;
        Ok(())
    }

    fn enrollment(&self, course: &str, user: &str) -> Result<Option<String>> {
        self.enrollments
            .get(key(&[course, user])?)?
            .map(|v| text(&v))
            .transpose()
    }

    fn set_enrollments(&self, course: &str, dates: &[(String, String)]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (user, date) in dates {
            batch.insert(key(&[course, user])?, date.as_bytes());
        }
        // A batch is applied atomically: a failed import leaves no partial set behind.
        self.enrollments
            .apply_batch(batch)
            .with_context(|| format!("storing enrollment dates of {course:?}"))
    }

    fn carry_over_course_tags(
        &self,
        course: &str,
        from: &str,
        to: &str,
        keys: &[String],
    ) -> Result<Vec<CarriedTag>> {
        self.carry_over_course_tags_with_outbox(course, from, to, keys, &|_, _| None)
    }

    fn commit(&self, course: &str, user: &str, writes: &BlockWrites) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut entries: Vec<(u8, Vec<u8>, &[u8])> = Vec::new();
        for (k, v) in &writes.course_tags {
            entries.push((0, key(&[course, user, k])?, v.as_bytes()));
        }
        for (k, v) in &writes.user_tags {
            entries.push((1, key(&[user, k])?, v.as_bytes()));
        }
        if let Some((usage, json)) = &writes.state {
            entries.push((2, key(&[course, user, usage])?, json.as_bytes()));
        }
        let tallies = sled_tallies::additions(writes, &|u, t| key(&[course, u, t]))?;
        let trees = (
            &self.course_tags,
            &self.user_tags,
            &self.user_state,
            &self.block_tallies,
        );
        // Tallies are read and added to inside the transaction: sled validates what it read
        // under its exclusive commit lock, so a concurrent addition makes this one retry.
        trees
            .transaction(|(course_tags, user_tags, user_state, block_tallies)| {
                for (tree, k, v) in &entries {
                    let tree = match tree {
                        0 => course_tags,
                        1 => user_tags,
                        _ => user_state,
                    };
                    tree.insert(k.as_slice(), *v)?;
                }
                sled_tallies::apply(block_tallies, &tallies)
            })
            .map_err(|e| {
                sled_tallies::commit_error(e, &|| {
                    format!("storing the writes of user {user:?} in {course:?}")
                })
            })
    }

    fn keeps_outbox(&self) -> bool {
        true
    }

    fn assign_course_tag(
        &self,
        course: &str,
        user: &str,
        tag: &str,
        expected: Option<&str>,
        value: &str,
        entry: &OutboxEntry,
    ) -> Result<FirstWrite> {
        let k = key(&[course, user, tag])?;
        let what = || format!("storing course tag {tag:?} of user {user:?} in {course:?}");
        sled_outbox::assign(
            &self.course_tags,
            &self.outbox,
            &k,
            expected,
            value,
            entry,
            &what,
        )
    }

    fn carry_over_course_tags_with_outbox(
        &self,
        course: &str,
        from: &str,
        to: &str,
        keys: &[String],
        entry_for: &dyn Fn(&str, &str) -> Option<OutboxEntry>,
    ) -> Result<Vec<CarriedTag>> {
        let pairs = keys
            .iter()
            .map(|k| Ok((k.clone(), key(&[course, from, k])?, key(&[course, to, k])?)))
            .collect::<Result<Vec<_>>>()?;
        let what = || format!("carrying tags of {from:?} over to {to:?} in {course:?}");
        sled_outbox::carry_over(&self.course_tags, &self.outbox, &pairs, entry_for, &what)
    }

    fn put_outbox(&self, entries: &[OutboxEntry]) -> Result<()> {
        sled_outbox::put(&self.outbox, entries)
    }

    fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        sled_outbox::all(&self.outbox)
    }

    fn remove_from_outbox(&self, ids: &[String]) -> Result<()> {
        sled_outbox::remove(&self.outbox, ids)
    }

    fn meta_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>> {
        match self
            .meta
            .compare_and_swap(key(&[name])?, None as Option<&[u8]>, Some(value))?
        {
            Ok(()) => {
                self.sync()
                    .with_context(|| format!("flushing the store's new {name:?}"))?;
                Ok(value.to_vec())
            }
            Err(e) => {
                // The winner's value may not be durable yet: answer with it only once it is.
                self.sync()
                    .with_context(|| format!("flushing the store's {name:?}"))?;
                Ok(e.current
                    .with_context(|| format!("the store's {name:?} vanished during a first write"))?
                    .to_vec())
            }
        }
    }

    fn flush(&self) -> Result<()> {
        self.sync().context("flushing the store to disk")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &to.join(entry.file_name()));
            } else {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }

    #[test]
    fn a_snapshot_left_half_written_by_a_crash_does_not_stop_the_store_opening() {
        // The store as a killed process leaves it: flushed, then copied (sled's background
        // thread may hold the original's lock for a moment after the handle is dropped).
        let original = tempfile::tempdir().unwrap();
        let s = SledStorage::open(original.path()).unwrap();
        s.set_course_tag_if_absent("c", "u", "k", "kept").unwrap();
        s.flush().unwrap();
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        drop(s);
        // What a process killed while sled wrote a snapshot leaves: a newer, partial file.
        std::fs::write(
            dir.path().join("snap.7FFFFFFFFFFFFFFF.generating"),
            b"half a snapshot, no checksum",
        )
        .unwrap();
        let s = SledStorage::open(dir.path()).unwrap();
        assert_eq!(
            s.course_tag("c", "u", "k").unwrap().as_deref(),
            Some("kept")
        );
        assert!(!dir.path().join("snap.7FFFFFFFFFFFFFFF.generating").exists());
    }

    #[test]
    fn metadata_is_written_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStorage::open(dir.path()).unwrap();
        assert_eq!(s.meta_or_insert("k", b"first").unwrap(), b"first");
        assert_eq!(s.meta_or_insert("k", b"second").unwrap(), b"first");
        assert_eq!(s.meta_or_insert("other", b"x").unwrap(), b"x");
        assert!(s.meta_or_insert("k\0", b"x").is_err());
        // A new value is durable at once: no flush here. The store is copied, as a killed
        // process leaves it (sled's background thread may hold the original's lock).
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        drop(s);
        let s = SledStorage::open(copy.path()).unwrap();
        assert_eq!(s.meta_or_insert("k", b"third").unwrap(), b"first");
    }

    #[test]
    fn first_writer_wins_and_replace_is_compare_and_swap() {
        let s = SledStorage::temporary().unwrap();
        assert_eq!(
            s.set_course_tag_if_absent("c", "u", "k", "1").unwrap(),
            FirstWrite::Written
        );
        assert_eq!(
            s.set_course_tag_if_absent("c", "u", "k", "2").unwrap(),
            FirstWrite::Existing("1".into())
        );
        assert_eq!(
            s.replace_course_tag("c", "u", "k", "9", "3").unwrap(),
            FirstWrite::Existing("1".into())
        );
        assert_eq!(
            s.replace_course_tag("c", "u", "k", "1", "3").unwrap(),
            FirstWrite::Written
        );
        // A second replacer with the same value did not replace anything.
        assert_eq!(
            s.replace_course_tag("c", "u", "k", "1", "3").unwrap(),
            FirstWrite::Existing("3".into())
        );
        assert_eq!(s.course_tag("c", "u", "k").unwrap().as_deref(), Some("3"));
    }

    #[test]
    fn tags_are_scoped_by_course_and_user() {
        let s = SledStorage::temporary().unwrap();
        s.set_course_tag("c1", "u", "k", "a").unwrap();
        s.set_course_tag("c2", "u", "k", "b").unwrap();
        s.set_course_tag("c1", "u2", "k", "c").unwrap();
        // A user id that is a prefix of another must not see the other's tags.
        s.set_course_tag("c1", "u1", "k", "d").unwrap();
        assert_eq!(s.course_tags("c1", "u").unwrap().len(), 1);
        assert_eq!(s.course_tag("c2", "u", "k").unwrap().as_deref(), Some("b"));
        let mut users = s.users_with_course_tag("c1", "k").unwrap();
        users.sort();
        assert_eq!(users.len(), 3);
        s.set_user_tag("u", "lang", "fr").unwrap();
        assert_eq!(
            s.user_tags("u").unwrap().get("lang").map(String::as_str),
            Some("fr")
        );
        assert!(s.user_tags("u1").unwrap().is_empty());
        assert!(s.course_tag("c1", "u\0x", "k").is_err());
    }
}
