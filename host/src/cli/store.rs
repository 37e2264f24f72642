//! `store copy` and `store verify`: moving a data directory's sled store and event log
//! into an empty PostgreSQL database, and checking that a database holds exactly what the
//! store holds (see `storage::copy`). Both open the sled store themselves, so they refuse
//! to run while a server holds it.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;

use xbhost::events::ReadLimits;
use xbhost::storage::{PgOptions, PgStorage, SledStorage, copy, is_database_url};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy the data directory's store (tags, groups, state, courses, plugins, enrollments,
    /// metadata) and its event log into an empty PostgreSQL database, check the copy (rows
    /// and a checksum per table, printed) and commit it only if every table agrees.
    #[command(after_help = "Example:\n  \
        xbhost --data /var/lib/xbhost store copy --to postgres://xbhost@db.internal:5432/xbhost")]
    Copy {
        /// The database to copy into (`postgres://USER@HOST:PORT/NAME`); it must be empty.
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Check that a PostgreSQL database holds exactly what the data directory's store and
    /// event log hold (as `store copy` left it): rows and a checksum per table.
    #[command(after_help = "Example:\n  \
        xbhost --data /var/lib/xbhost store verify --against postgres://xbhost@db.internal:5432/xbhost")]
    Verify {
        /// The database to check (`postgres://USER@HOST:PORT/NAME`).
        #[arg(long, value_name = "URL")]
        against: String,
    },
}

/// Runs a `store` command on the sled store of `data` and the event log `events`.
/// `database` is the global `--database`, which these commands do not take.
pub fn run(
    data: &Path,
    database: Option<&str>,
    events: &Path,
    options: &PgOptions,
    cmd: StoreCommand,
    out: &mut impl Write,
) -> Result<()> {
    let (verb, flag, url) = match &cmd {
        StoreCommand::Copy { to } => ("store copy", "--to", to.as_str()),
        StoreCommand::Verify { against } => ("store verify", "--against", against.as_str()),
    };
    if database.is_some() {
        bail!(
            "{verb} reads the sled store of the data directory (--data); it does not take \
             --database (or XBHOST_DATABASE_URL): name the database with {flag}"
        );
    }
    if !is_database_url(url) {
        // Not the URL itself: it may carry a password.
        let scheme = url.split_once("://").map_or("(none)", |(scheme, _)| scheme);
        bail!(
            "{flag} is not a PostgreSQL URL (its scheme is {scheme:?}; expected \
             postgres://USER@HOST:PORT/NAME)"
        );
    }
    let dir = data.join("db");
    if !dir.is_dir() {
        bail!(
            "there is no store in {} for {verb} (--data names the data directory)",
            dir.display()
        );
    }
    let store = SledStorage::open(&dir).with_context(|| {
        format!(
            "{verb} needs the store to itself: stop every xbhost using {} first",
            data.display()
        )
    })?;
    let limits = ReadLimits::from_env()?;
    let dest = PgStorage::connect(url, options)?;
    match cmd {
        StoreCommand::Copy { .. } => {
            let verification = copy::copy(&store, events, &dest, &limits)?;
            write!(out, "{}", verification.to_text())?;
            writeln!(
                out,
                "copied into {}: every table agrees; start hosts with --database",
                dest.name()
            )?;
        }
        StoreCommand::Verify { .. } => {
            let verification = copy::verify(&store, events, &dest, &limits)?;
            write!(out, "{}", verification.to_text())?;
            verification.ensure_agrees()?;
            writeln!(out, "{} holds what the store holds", dest.name())?;
        }
    }
    Ok(())
}
