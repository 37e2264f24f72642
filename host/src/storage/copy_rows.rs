//! The rows `store copy` moves and checks, the same on both sides: each table's columns,
//! a row as a list of fields, batches of rows as the column arrays a bulk insert takes,
//! and the per-table check (row count and a blake3 over the rows in key order) computed
//! from the database through a cursor, a bounded page at a time. Imports only `pg_open`
//! (its database errors); what the source side reads is in `copy_sled` and `copy_events`.

use anyhow::{Context as _, Result};
use deadpool_postgres::ClientWrapper;
use tokio_postgres::types::ToSql;

use super::pg_open::db_error;

/// One field of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Text(String),
    Bytes(Vec<u8>),
    Int(i64),
}

impl Field {
    fn size(&self) -> usize {
        match self {
            Field::Text(s) => s.len(),
            Field::Bytes(b) => b.len(),
            Field::Int(_) => 8,
        }
    }
}

pub type Row = Vec<Field>;

/// The kind of a column, as the database holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Bytes,
    Int,
}

/// A table `store copy` fills: its columns in row order, how its rows are ordered for the
/// check (by key, bytewise, as sled orders its keys: `COLLATE "C"`), and how many rows
/// the check reads at a time (few where a row can be megabytes).
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    pub order: &'static str,
    pub fetch: u32,
}

const T: Kind = Kind::Text;

/// Every table but `events` (see [`EVENTS`]), in the order rows can be inserted (a plugin
/// names its stored wasm).
pub const TABLES: &[Table] = &[
    Table {
        name: "user_course_tags",
        columns: &[("course_id", T), ("user_id", T), ("key", T), ("value", T)],
        order: r#"course_id COLLATE "C", user_id COLLATE "C", key COLLATE "C""#,
        fetch: 1000,
    },
    Table {
        name: "user_global_tags",
        columns: &[("user_id", T), ("key", T), ("value", T)],
        order: r#"user_id COLLATE "C", key COLLATE "C""#,
        fetch: 1000,
    },
    Table {
        name: "user_state",
        columns: &[
            ("course_id", T),
            ("user_id", T),
            ("usage_id", T),
            ("state", T),
        ],
        order: r#"course_id COLLATE "C", user_id COLLATE "C", usage_id COLLATE "C""#,
        fetch: 500,
    },
    Table {
        name: "courses",
        columns: &[("course_id", T), ("version", Kind::Int), ("doc", T)],
        order: r#"course_id COLLATE "C""#,
        fetch: 4,
    },
    Table {
        name: "plugin_wasm",
        columns: &[("hash", T), ("wasm", Kind::Bytes)],
        order: r#"hash COLLATE "C""#,
        fetch: 4,
    },
    Table {
        name: "plugins",
        columns: &[("name", T), ("record", T), ("hash", T)],
        order: r#"name COLLATE "C""#,
        fetch: 500,
    },
    Table {
        name: "enrollments",
        columns: &[("course_id", T), ("user_id", T), ("enrolled", T)],
        order: r#"course_id COLLATE "C", user_id COLLATE "C""#,
        fetch: 1000,
    },
    Table {
        name: "store_meta",
        columns: &[("name", T), ("value", Kind::Bytes)],
        order: r#"name COLLATE "C""#,
        fetch: 1000,
    },
    Table {
        name: "block_tallies",
        columns: &[
            ("course_id", T),
            ("usage_id", T),
            ("key", T),
            ("value", Kind::Int),
        ],
        order: r#"course_id COLLATE "C", usage_id COLLATE "C", key COLLATE "C""#,
        fetch: 1000,
    },
];

/// The events table as the check reads it: in stored order, the time as milliseconds
/// since 1970 (the text of a time is the line's; the column is what queries filter on).
pub const EVENTS: Table = Table {
    name: "events",
    columns: &[
        ("id", T),
        ("course_id", T),
        ("user_id", T),
        ("name", T),
        ("time", Kind::Int),
        ("line", T),
    ],
    order: "seq",
    fetch: 64,
};

/// Rows gathered for one insert: at most this many, or this many bytes.
pub const BATCH_ROWS: usize = 1000;
pub const BATCH_BYTES: usize = 8 << 20;

/// A table's rows as column arrays (what `unnest` takes), filled a batch at a time.
pub struct Batch {
    columns: Vec<Column>,
    rows: usize,
    bytes: usize,
}

enum Column {
    Text(Vec<String>),
    Bytes(Vec<Vec<u8>>),
    Int(Vec<i64>),
}

impl Batch {
    pub fn new(kinds: impl IntoIterator<Item = Kind>) -> Batch {
        let columns = kinds
            .into_iter()
            .map(|k| match k {
                Kind::Text => Column::Text(Vec::new()),
                Kind::Bytes => Column::Bytes(Vec::new()),
                Kind::Int => Column::Int(Vec::new()),
            })
            .collect();
        Batch {
            columns,
            rows: 0,
            bytes: 0,
        }
    }

    /// Adds a row (its fields in column order and of the columns' kinds).
    pub fn push(&mut self, row: Row) {
        self.rows += 1;
        for (column, field) in self.columns.iter_mut().zip(row) {
            self.bytes += field.size();
            match (column, field) {
                (Column::Text(v), Field::Text(s)) => v.push(s),
                (Column::Bytes(v), Field::Bytes(b)) => v.push(b),
                (Column::Int(v), Field::Int(i)) => v.push(i),
                _ => unreachable!("a row's fields have its table's kinds"),
            }
        }
    }

    pub fn is_full(&self) -> bool {
        self.rows >= BATCH_ROWS || self.bytes >= BATCH_BYTES
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The column arrays, as statement parameters.
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.columns
            .iter()
            .map(|c| -> &(dyn ToSql + Sync) {
                match c {
                    Column::Text(v) => v,
                    Column::Bytes(v) => v,
                    Column::Int(v) => v,
                }
            })
            .collect()
    }

    pub fn clear(&mut self) {
        for column in &mut self.columns {
            match column {
                Column::Text(v) => v.clear(),
                Column::Bytes(v) => v.clear(),
                Column::Int(v) => v.clear(),
            }
        }
        self.rows = 0;
        self.bytes = 0;
    }
}

fn array_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "text[]",
        Kind::Bytes => "bytea[]",
        Kind::Int => "int8[]",
    }
}

/// Inserts a batch of `table`'s rows in one statement.
pub async fn insert(c: &ClientWrapper, table: &Table, batch: &Batch) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
    let arrays: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, k))| format!("${}::{}", i + 1, array_type(*k)))
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) SELECT * FROM unnest({})",
        table.name,
        names.join(", "),
        arrays.join(", ")
    );
    c.execute(&sql, &batch.params())
        .await
        .map_err(db_error)
        .with_context(|| format!("inserting {} rows into {}", batch.len(), table.name))?;
    Ok(())
}

/// A table's rows counted and hashed in order: the figure both sides of a copy must agree
/// on. Each field is hashed with its kind and length, so no two different rows hash alike.
#[derive(Debug, Clone)]
pub struct Check {
    pub rows: u64,
    hasher: blake3::Hasher,
}

impl Default for Check {
    fn default() -> Self {
        Check {
            rows: 0,
            hasher: blake3::Hasher::new(),
        }
    }
}

impl Check {
    pub fn add(&mut self, row: &[Field]) {
        for field in row {
            let int;
            let (tag, bytes): (u8, &[u8]) = match field {
                Field::Text(s) => (0, s.as_bytes()),
                Field::Bytes(b) => (1, b),
                Field::Int(i) => {
                    int = i.to_le_bytes();
                    (2, &int)
                }
            };
            self.hasher.update(&[tag]);
            self.hasher.update(&(bytes.len() as u64).to_le_bytes());
            self.hasher.update(bytes);
        }
        self.hasher.update(&[0xff]);
        self.rows += 1;
    }

    /// The checksum, hex.
    pub fn checksum(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}

/// The select list of a table's check: the events' time as milliseconds.
fn select_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|(name, kind)| match (table.name, *name, kind) {
            ("events", "time", _) => "floor(extract(epoch FROM time) * 1000)::int8".to_string(),
            _ => name.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads `table`'s rows in its order through a cursor, `table.fetch` rows at a time,
/// handing each to `each`. Runs inside the caller's transaction (a cursor needs one).
pub async fn read_table(
    c: &ClientWrapper,
    table: &Table,
    each: &mut dyn FnMut(Row) -> Result<()>,
) -> Result<()> {
    let what = || format!("reading the table {} to check it", table.name);
    let cursor = format!("xbhost_check_{}", table.name);
    let declare = format!(
        "DECLARE {cursor} NO SCROLL CURSOR FOR SELECT {} FROM {} ORDER BY {}",
        select_list(table),
        table.name,
        table.order
    );
    c.batch_execute(&declare)
        .await
        .map_err(db_error)
        .with_context(what)?;
    let fetch = format!("FETCH {} FROM {cursor}", table.fetch);
    loop {
        let rows = c
            .query(&fetch, &[])
            .await
            .map_err(db_error)
            .with_context(what)?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let fields = table
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| match kind {
                    Kind::Text => Field::Text(row.get(i)),
                    Kind::Bytes => Field::Bytes(row.get(i)),
                    Kind::Int => Field::Int(row.get(i)),
                })
                .collect();
            each(fields)?;
        }
    }
    c.batch_execute(&format!("CLOSE {cursor}"))
        .await
        .map_err(db_error)
        .with_context(what)?;
    Ok(())
}
