//! `cargo xtask`: build, demo and test, with nothing installed by hand beyond rustup.
//!
//! - `cargo xtask build`: the release host and every plugin: the shipped ones (`plugins/*`)
//!   copied to `target/plugins/`, the test-only ones (`plugins/testing/*`) to
//!   `target/plugins/testing/`, so `xbhost plugin add target/plugins` installs exactly the
//!   shipped plugins.
//! - `cargo xtask demo [--listen ADDRESS]`: build, then a fresh data directory with the
//!   plugins and the demo course, `unit_1` rendered for a few learners and as staff into
//!   HTML files, and the server started on it with the development sign-in (the URL of
//!   the workbench is printed; Ctrl-C stops it).
//! - `cargo xtask test`: everything CI runs (fmt check, clippy, all tests), the tests on a
//!   throwaway PostgreSQL unless `XBHOST_TEST_DATABASE_URL` names a server (see `pg`).
//! - `cargo xtask bench [--quick] [--soak SECONDS] [--postgres]`: the benchmark table of
//!   BENCHMARKS.md, likewise on a throwaway PostgreSQL unless `XBHOST_BENCH_DATABASE_URL`
//!   names one (`--postgres`: only the rows comparing PostgreSQL with sled, wrk included);
//!   Debian's `wrk` is installed first when missing (the HTTP rows measured from outside).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod pg;
/// The throwaway cluster, the same file the tests use for their private clusters (which
/// they also stop and start again; xtask only starts and drops one).
#[allow(dead_code)]
#[path = "../../tests/src/pg_cluster.rs"]
mod pg_cluster;
mod python;

const WASM_TARGET: &str = "wasm32-wasip2";
const DEMO_COURSE: &str = "course-v1:xbhost+demo+2026";
const DEMO_LEARNERS: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank"];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("build") => build(&root).map(|_| ()),
        Some("demo") => demo(&root, &args[1..]),
        Some("test") => test(&root),
        Some("bench") => bench(&root, &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <build|demo [--listen ADDRESS]|test|bench [--quick] [--soak SECONDS] [--postgres]>"
            );
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    // Cargo sets CARGO_MANIFEST_DIR when it runs us too; prefer that over the path baked
    // in at compile time, which is stale when a clone shares this target directory.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// rustup does not add targets on demand: add the wasm target if it is missing.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to add the wasm32-wasip2 target")?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        run(Command::new("rustup").args(["target", "add", WASM_TARGET]))?;
    }
    Ok(())
}

/// The plugin crates of `dir`: its subdirectories with a Cargo.toml, by name.
fn plugin_crates(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.join("Cargo.toml").is_file() {
                names.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Builds the host (release) and every plugin; returns the directory holding the shipped
/// plugins (`plugins/*`, what course authors get). The test-only plugins
/// (`plugins/testing/*`) go to its `testing/` subdirectory, which `plugin add DIR` does not
/// read; a `.wasm` left in it by an older build that is no shipped plugin is removed.
fn build(root: &Path) -> Result<PathBuf> {
    ensure_wasm_target()?;
    // The whole workspace selected (only the xbhost binary built): its dependencies get the
    // features `cargo test --workspace` and clippy unify, so the test build reuses this
    // build's wasmtime and cranelift instead of compiling them again for `-p xbhost`'s.
    run(cargo().args(["build", "--release", "--workspace", "--bin", "xbhost"]))?;
    let shipped = plugin_crates(&root.join("plugins"))?;
    let testing = plugin_crates(&root.join("plugins/testing"))?;
    let mut cmd = cargo();
    cmd.args(["build", "--profile", "plugin", "--target", WASM_TARGET]);
    for p in shipped.iter().chain(&testing) {
        cmd.args(["-p", p]);
    }
    run(&mut cmd)?;
    let target = target_dir(root);
    let out = target.join("plugins");
    for (names, dir) in [(&shipped, out.clone()), (&testing, out.join("testing"))] {
        std::fs::create_dir_all(&dir)?;
        for p in names {
            let built = target
                .join(WASM_TARGET)
                .join("plugin")
                .join(format!("{p}.wasm"));
            std::fs::copy(&built, dir.join(format!("{p}.wasm")))
                .with_context(|| format!("copying {}", built.display()))?;
        }
    }
    for entry in std::fs::read_dir(&out)? {
        let path = entry?.path();
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        if path.extension().is_some_and(|e| e == "wasm")
            && stem.is_some_and(|s| !shipped.contains(&s))
        {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the stale {}", path.display()))?;
        }
    }
    // The Python blocks (`plugins/python/*`, `plugins/testing/python/*`), with the pinned
    // componentize-py. Their time is printed: CI's share for Python blocks is kept small.
    let started = std::time::Instant::now();
    let tools = python::venv(root, &target)?;
    for (projects, dir) in python::PROJECT_DIRS {
        python::build_blocks(
            root,
            &target.join("release/xbhost"),
            &tools,
            projects,
            &out.join(dir),
        )?;
    }
    eprintln!(
        "xtask: Python tools and blocks ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "xtask: host at {}, shipped plugins in {} (Python ones in python/, test-only ones in {})",
        target.join("release/xbhost").display(),
        out.display(),
        out.join("testing").display()
    );
    Ok(out)
}

fn demo(root: &Path, args: &[String]) -> Result<()> {
    let listen = match args {
        [] => "127.0.0.1:8080",
        [flag, address] if flag == "--listen" => address.as_str(),
        _ => bail!("usage: cargo xtask demo [--listen ADDRESS]"),
    };
    let plugins = build(root)?;
    let target = target_dir(root);
    let xbhost = target.join("release/xbhost");
    let data = target.join("demo-data");
    let pages = target.join("demo");
    if data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    std::fs::create_dir_all(&pages)?;
    let xb = |args: &[&str]| -> Result<String> {
        let out = Command::new(&xbhost)
            .arg("--data")
            .arg(&data)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {}", xbhost.display()))?;
        if !out.status.success() {
            bail!(
                "xbhost {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    };
    // Every shipped plugin in one command (the test-only ones are in plugins/testing/).
    print!("{}", xb(&["plugin", "add", &plugins.to_string_lossy()])?);
    let course = root.join("examples/demo-course/course.json");
    print!("{}", xb(&["course", "load", &course.to_string_lossy()])?);
    println!();
    let mut written = Vec::new();
    for learner in DEMO_LEARNERS {
        let line = xb(&[
            "render",
            "--course",
            DEMO_COURSE,
            "--block",
            "unit_1",
            "--user",
            learner,
            "--json",
        ])?;
        let page: serde_json::Value = serde_json::from_str(&line)?;
        let path = pages.join(format!("unit_1-{learner}.html"));
        std::fs::write(
            &path,
            page_html(
                &format!("unit_1 as {learner}"),
                page["html"].as_str().unwrap_or_default(),
            ),
        )?;
        println!(
            "{learner:>6}: groups {}  ->  {}",
            page["assignments"],
            path.display()
        );
        written.push(path);
    }
    let staff = xb(&[
        "render",
        "--course",
        DEMO_COURSE,
        "--block",
        "unit_1",
        "--user",
        "staff_sam",
        "--view",
        "staff",
    ])?;
    let path = pages.join("unit_1-staff.html");
    std::fs::write(&path, page_html("unit_1, staff view", &staff))?;
    println!(
        "{:>6}: every condition, marked  ->  {}",
        "staff",
        path.display()
    );
    println!(
        "\nStatic pages written (open them without a server). Data directory: {}",
        data.display()
    );
    serve_demo(&xbhost, &data, listen)
}

/// Starts `xbhost serve --dev-login` on the demo data with a key made for this run, says
/// which URL to open, and runs until Ctrl-C. If the address is taken, any free port.
fn serve_demo(xbhost: &Path, data: &Path, listen: &str) -> Result<()> {
    use std::io::{BufRead, BufReader, Read};
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    let key: String = key.iter().map(|b| format!("{b:02x}")).collect();
    for address in [listen, "127.0.0.1:0"] {
        let mut child = Command::new(xbhost)
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", address, "--dev-login"])
            .env("XBHOST_TOKEN_SECRET", &key)
            .env(
                "XBHOST_LOG",
                std::env::var("XBHOST_LOG").unwrap_or_else(|_| "xbhost=info".into()),
            )
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", xbhost.display()))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let Some(Ok(first)) = lines.next() else {
            let status = child.wait()?;
            eprintln!(
                "xtask: the server did not start on {address} ({status}); trying another port"
            );
            continue;
        };
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or("http://127.0.0.1:8080/")
            .to_string();
        println!("\n{first}");
        for line in lines.by_ref().take(1).map_while(Result::ok) {
            println!("{line}");
        }
        println!(
            "\nOpen {url}workbench in a browser: sign in as a new learner, as an existing one \
             ({}), or as staff or admin to see every condition and load plugins.\n\
             The signing key was made for this run (development only). Ctrl-C stops the server.",
            DEMO_LEARNERS.join(", ")
        );
        for line in lines.map_while(Result::ok) {
            println!("{line}");
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("the server exited with {status}");
        }
        return Ok(());
    }
    bail!("the demo server did not start (see its messages above)")
}

/// A standalone page around rendered blocks, with enough style to see the conditions.
fn page_html(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; line-height: 1.5; }}
[data-group-id] {{ border: 2px solid #4a7ab5; border-radius: 6px; margin: .5rem 0; padding: .5rem; }}
[data-own-group] {{ border-color: #2e8b57; background: #f0fff4; }}
[data-inactive] {{ border-style: dashed; border-color: #999; opacity: .7; }}
.xbhost-condition-label {{ font-size: .8rem; font-weight: 600; color: #4a7ab5; }}
.split-test-heading {{ font-weight: 700; margin-bottom: 0; }}
.split-test-empty-group {{ font-style: italic; color: #666; border: 1px dotted #999; padding: .5rem; }}
.hint {{ background: #fffbe6; padding: .25rem .75rem; }}
</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"#
    )
}

/// Builds everything, then runs the benchmark binary (release) and its table.
fn bench(root: &Path, args: &[String]) -> Result<()> {
    let plugins = build(root)?;
    ensure_wrk();
    let database = pg::Server::for_var("XBHOST_BENCH_DATABASE_URL")?;
    run(database.export_to(
        cargo()
            .args(["run", "--release", "--quiet", "-p", "xbhost-bench", "--"])
            .args(args)
            .env("XBHOST_PLUGIN_DIR", &plugins),
    ))
}

/// The bench's HTTP rows measure from outside the server with `wrk` (Debian's package):
/// installed here when missing, as `.ci/run` installs PostgreSQL. Without it (no apt, no
/// root, no network to the package mirror) the rows say they were not measured.
fn ensure_wrk() {
    let found = |name: &str| {
        Command::new(name)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok()
    };
    if found("wrk") || !found("apt-get") {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        eprintln!("xtask: installing Debian's wrk for the benchmark's HTTP rows: {command:?}");
        command.status().is_ok_and(|s| s.success())
    };
    if !(apt(&["update", "-qq"])
        && apt(&["install", "-y", "-qq", "--no-install-recommends", "wrk"]))
    {
        eprintln!("xtask: could not install wrk; the wrk rows will say they were not measured");
    }
}

fn test(root: &Path) -> Result<()> {
    let plugins = build(root)?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--release",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut wasm_clippy = cargo();
    wasm_clippy.args([
        "clippy",
        "--profile",
        "plugin",
        "--target",
        WASM_TARGET,
        "-p",
        "xbhost-sdk",
    ]);
    for p in plugin_crates(&root.join("plugins"))?
        .into_iter()
        .chain(plugin_crates(&root.join("plugins/testing"))?)
    {
        wasm_clippy.args(["-p", &p]);
    }
    run(wasm_clippy.args(["--", "-D", "warnings"]))?;
    let target = target_dir(root);
    // Tests that need PostgreSQL fail without it: a throwaway server unless one is named.
    let database = pg::Server::for_var("XBHOST_TEST_DATABASE_URL")?;
    let mut cmd = cargo();
    cmd.args(["test", "--release", "--workspace", "--no-fail-fast"])
        .env("XBHOST_PLUGIN_DIR", &plugins)
        .env("XBHOST_BIN", target.join("release/xbhost"));
    database.export_to(&mut cmd);
    let (mut passed, mut failed) = run_counting_tests(&mut cmd)?;
    // The Python SDK's and the Python blocks' native tests.
    let started = std::time::Instant::now();
    let (py_passed, py_failed) = python::test(root, &python::venv(root, &target)?)?;
    eprintln!(
        "xtask: Python native tests in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    passed += py_passed;
    failed += py_failed;
    // cargo's own last line is often a doc-test run of a crate with none: close with the total.
    println!("\ntests: {passed} passed, {failed} failed");
    if py_failed > 0 {
        bail!("{py_failed} of the Python tests failed");
    }
    Ok(())
}

/// Runs `cargo test`, echoing its output, and adds up its `test result:` lines.
fn run_counting_tests(cmd: &mut Command) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: {cmd:?}");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split([';', '.']) {
                let mut words = part.split_whitespace();
                match (
                    words.next().and_then(|n| n.parse::<u64>().ok()),
                    words.next(),
                ) {
                    (Some(n), Some("passed")) => passed += n,
                    (Some(n), Some("failed")) => failed += n,
                    _ => {}
                }
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        println!("\ntests: {passed} passed, {failed} failed");
        bail!("{cmd:?} failed with {status}");
    }
    Ok((passed, failed))
}
