//! The help the command line shows beyond each option's own text. Global options (`--data`,
//! `--database`, `--bots`, ...) are accepted before or after any command, but a command's
//! help lists only those it uses: `xbhost token --help` does not offer `--data`. And the
//! checks the tests make of the whole command tree: every option described, every command
//! with an example.

use clap::{Arg, Command};

/// The event log's rotation and deferral flags (`event_log::EventLogArgs`).
const EVENT_LOG: [&str; 3] = [
    "event_log_max_bytes",
    "event_log_keep",
    "event_log_max_deferred",
];

/// The global options (by id) that a top-level command ignores.
fn ignored_globals(command: &str) -> Vec<&'static str> {
    let mut ignored = Vec::new();
    match command {
        // They sign with the key alone, or write a project: they open nothing.
        "token" | "new-block" | "block" => ignored.extend([
            "data",
            "database",
            "database_wait_ms",
            "database_lock_timeout_ms",
            "database_statement_timeout_ms",
            "database_ca",
            "events",
        ]),
        // Reads the data directory's sled store and log; names the database with --to or
        // --against (and refuses --database).
        "store" => ignored.push("database"),
        _ => {}
    }
    if matches!(
        command,
        "token" | "new-block" | "block" | "store" | "events"
    ) {
        // They write no events.
        ignored.extend(EVENT_LOG);
    }
    if !matches!(command, "render" | "serve") {
        // Only these see a user agent.
        ignored.push("bots");
    }
    ignored
}

/// `cli` with each global option hidden from the help of the commands that ignore it. A
/// command gets its own hidden copy of the option (clap then propagates the parent's copy
/// to it no more), which parses as before: values given on either side still reach `Cli`.
pub fn hide_ignored_globals(mut cli: Command) -> Command {
    let globals: Vec<Arg> = cli
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    let names: Vec<String> = cli
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in names {
        let ignored = ignored_globals(&name);
        for id in &ignored {
            // The table names options that exist: a renamed flag must be renamed here too.
            debug_assert!(
                globals.iter().any(|a| a.get_id() == id),
                "no global option {id}"
            );
        }
        cli = cli.mut_subcommand(&name, |mut sub| {
            for arg in globals
                .iter()
                .filter(|a| ignored.contains(&a.get_id().as_str()))
            {
                sub = sub.arg(arg.clone().hide(true));
            }
            sub
        });
    }
    cli
}

/// What is missing from the help of `cli` and every command under it: an option or
/// argument without a description, a command without one, a command (without
/// subcommands of its own) without an example in its after-help. Empty when complete.
#[cfg(test)]
pub fn problems(cli: &mut Command) -> Vec<String> {
    cli.build();
    let mut found = Vec::new();
    walk(cli, "xbhost", &mut found);
    found
}

#[cfg(test)]
fn walk(cmd: &Command, path: &str, found: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set() || id == "help" || id == "version" {
            continue;
        }
        if arg.get_help().is_none() && arg.get_long_help().is_none() {
            found.push(format!("{path}: {id} has no help text"));
        }
        if arg.is_hide_possible_values_set() {
            found.push(format!("{path}: {id} hides its allowed values"));
        }
    }
    let subcommands: Vec<&Command> = cmd
        .get_subcommands()
        .filter(|c| c.get_name() != "help")
        .collect();
    if path != "xbhost" && cmd.get_about().is_none() {
        found.push(format!("{path}: the command has no description"));
    }
    let example = cmd
        .get_after_help()
        .is_some_and(|h| h.to_string().contains("xbhost "));
    if subcommands.is_empty() && !example {
        found.push(format!("{path}: the command has no example (after_help)"));
    }
    for sub in subcommands {
        walk(sub, &format!("{path} {}", sub.get_name()), found);
    }
}

/// The long help (`--help`) of the command at `path` under `cli`, as plain text.
#[cfg(test)]
pub fn long_help(cli: &mut Command, path: &[&str]) -> String {
    cli.build();
    let mut cmd = cli;
    for name in path {
        cmd = cmd
            .find_subcommand_mut(name)
            .unwrap_or_else(|| panic!("no command {name}"));
    }
    cmd.render_long_help().to_string()
}
