//! The sled side of `store copy`: each table's rows read from its sled tree, lazily and in
//! key order (sled orders keys bytewise; a key's parts are joined with NUL, which sorts
//! first, so this is the order of the parts), as the rows of `copy_rows`. Text PostgreSQL
//! cannot hold (not UTF-8, or holding NUL) fails the copy, naming the table and the row.

use anyhow::{Context as _, Result, anyhow, bail};

use super::contract::PluginRecord;
use super::copy_rows::{Field, Row, Table};
use super::sled_store::SledStorage;

/// Entries of sled's `meta` tree that are the sled store's own bookkeeping (its flush
/// generation and write probe, `storage::health`), not store metadata a database keeps.
const SLED_ONLY_META: &[&str] = &["generation", "probe"];

/// The sled tree holding a table's rows, and how many NUL-joined parts its keys have.
fn source(table: &str) -> (&'static str, usize) {
    match table {
        "user_course_tags" => ("course_tags", 3),
        "user_global_tags" => ("user_tags", 2),
        "user_state" => ("user_state", 3),
        "courses" => ("courses", 1),
        "plugin_wasm" => ("plugin_wasm", 1),
        "plugins" => ("plugins", 1),
        "enrollments" => ("enrollments", 2),
        "store_meta" => ("meta", 1),
        "block_tallies" => ("block_tallies", 3),
        other => unreachable!("no sled tree for table {other}"),
    }
}

/// Stored bytes as text PostgreSQL can hold.
fn text(table: &str, key: &[String], what: &str, bytes: &[u8]) -> Result<String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| anyhow!("{table} row {key:?}: its {what} is not UTF-8"))?;
    if text.contains('\0') {
        bail!("{table} row {key:?}: its {what} holds NUL, which PostgreSQL text cannot hold");
    }
    Ok(text.to_string())
}

/// A course's stored version (`sled_courses`): a course stored before versions existed
/// is at version 1.
fn course_version(store: &SledStorage, key: &[u8], course: &str) -> Result<i64> {
    let versions = store
        .tree("course_versions")
        .context("the sled store has no course_versions tree")?;
    let Some(bytes) = versions
        .get(key)
        .context("reading sled's course_versions tree")?
    else {
        return Ok(1);
    };
    let bytes: [u8; 8] = bytes
        .as_ref()
        .try_into()
        .map_err(|_| anyhow!("the stored version of course {course:?} is not 8 bytes"))?;
    i64::try_from(u64::from_be_bytes(bytes))
        .map_err(|_| anyhow!("the stored version of course {course:?} is out of range"))
}

/// Every row of `table` in key order.
pub fn rows<'a>(
    store: &'a SledStorage,
    table: &'a Table,
) -> Result<impl Iterator<Item = Result<Row>> + 'a> {
    let (tree_name, parts) = source(table.name);
    let tree = store
        .tree(tree_name)
        .with_context(|| format!("the sled store has no tree {tree_name}"))?;
    let name = table.name;
    let rows = tree.iter().filter_map(move |item| {
        let row = (|| -> Result<Option<Row>> {
            let (k, v) = item.with_context(|| format!("reading sled's {tree_name} tree"))?;
            let key = k
                .split(|&b| b == 0)
                .map(|part| text(name, &[], "key", part))
                .collect::<Result<Vec<String>>>()?;
            if key.len() != parts {
                bail!(
                    "{name}: a sled key of {} parts, {key:?}, where {parts} were expected",
                    key.len()
                );
            }
            let mut row: Row = key.iter().cloned().map(Field::Text).collect();
            match name {
                "courses" => {
                    row.push(Field::Int(course_version(store, &k, &key[0])?));
                    row.push(Field::Text(text(name, &key, "document", &v)?));
                }
                "plugin_wasm" => row.push(Field::Bytes(v.to_vec())),
                "plugins" => {
                    let record = text(name, &key, "record", &v)?;
                    let parsed: PluginRecord =
                        serde_json::from_str(&record).with_context(|| {
                            format!("the stored record of plugin {:?} does not parse", key[0])
                        })?;
                    row.push(Field::Text(record));
                    row.push(Field::Text(parsed.hash));
                }
                "store_meta" if SLED_ONLY_META.contains(&key[0].as_str()) => return Ok(None),
                "store_meta" => row.push(Field::Bytes(v.to_vec())),
                "block_tallies" => row.push(Field::Int(
                    super::sled_tallies::count(&v)
                        .with_context(|| format!("{name} row {key:?}"))?,
                )),
                _ => row.push(Field::Text(text(name, &key, "value", &v)?)),
            }
            Ok(Some(row))
        })();
        row.transpose()
    });
    Ok(rows)
}
