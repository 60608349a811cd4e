//! The tidy tests: rules of the codebase's shape that no compiler checks, held by `cargo test`
//! (rust-analyzer's `tidy.rs` is the model). Each failure says which rule broke and where.
//!
//! - core depends on no async runtime, thread pool or channel crate, and steno-async on no
//!   runtime;
//! - only steno-async-std depends on async-std (discontinued upstream, RUSTSEC-2025-0052);
//! - the fast conformance suite and core without its default features need no C/C++ build
//!   (no whisper-rs, no cmake);
//! - every Rust file opens with a `//!` line saying what it is for;
//! - no Rust file is over [`LONG_FILE_LINES`] lines unless ARCHITECTURE.md says why;
//! - the README shows what `cargo xtask demo` prints: the `session` snapshot's text.

#![cfg(test)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A file longer than this needs its reason in ARCHITECTURE.md's "Long files" section.
const LONG_FILE_LINES: usize = 600;

/// Crates that schedule work (runtimes, pools, executors) or move it between threads: the
/// backends' business, never core's.
const SCHEDULING_CRATES: &[&str] = &[
    "async-channel",
    "async-executor",
    "async-io",
    "async-std",
    "async-task",
    "blocking",
    "crossbeam",
    "crossbeam-channel",
    "event-listener",
    "flume",
    "futures",
    "futures-channel",
    "futures-executor",
    "futures-lite",
    "futures-util",
    "rayon",
    "rayon-core",
    "smol",
    "tokio",
];

/// The runtimes steno-async must stay independent of (its bindings live in their own crates).
const RUNTIMES: &[&str] = &["async-executor", "async-std", "smol", "tokio"];

fn root() -> PathBuf {
    crate::workspace_root()
}

/// The workspace's packages as `cargo metadata --no-deps` describes them.
fn packages() -> Vec<Value> {
    let output = crate::cargo(&root())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .expect("cannot run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata: not JSON");
    metadata["packages"]
        .as_array()
        .expect("cargo metadata: no packages")
        .clone()
}

fn package<'a>(packages: &'a [Value], name: &str) -> &'a Value {
    packages
        .iter()
        .find(|package| package["name"] == name)
        .unwrap_or_else(|| panic!("the workspace has no package {name}"))
}

/// The names of `package`'s dependencies; with `all_kinds`, dev-dependencies too.
fn dependencies(package: &Value, all_kinds: bool) -> BTreeSet<String> {
    package["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|dependency| all_kinds || dependency["kind"] != "dev")
        .filter_map(|dependency| dependency["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn core_has_no_runtime_pool_or_channel_and_steno_async_no_runtime() {
    let packages = packages();
    let core = dependencies(package(&packages, "steno-core"), false);
    let scheduling: Vec<_> = SCHEDULING_CRATES
        .iter()
        .filter(|name| core.contains(**name))
        .collect();
    assert!(
        scheduling.is_empty(),
        "steno-core depends on {scheduling:?}: core is synchronous stage logic; scheduling \
         belongs in a backend (ARCHITECTURE.md)"
    );
    let driver = dependencies(package(&packages, "steno-async"), false);
    let runtimes: Vec<_> = RUNTIMES
        .iter()
        .filter(|name| driver.contains(**name))
        .collect();
    assert!(
        runtimes.is_empty(),
        "steno-async depends on {runtimes:?}: the driver is runtime-agnostic; a runtime's \
         binding lives in its own crate"
    );
}

#[test]
fn only_steno_async_std_depends_on_async_std() {
    let offenders: Vec<String> = packages()
        .iter()
        .filter(|package| package["name"] != "steno-async-std")
        .filter(|package| dependencies(package, true).contains("async-std"))
        .filter_map(|package| package["name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        offenders.is_empty(),
        "{offenders:?} depend on async-std, which is discontinued (RUSTSEC-2025-0052): only \
         steno-async-std may, as deny.toml's ignore promises"
    );
}

/// The crates in `package`'s dependency tree without its default features, for the given
/// dependency kinds.
fn tree_without_defaults(package: &str, kinds: &str) -> String {
    let output = crate::cargo(&root())
        .args([
            "tree",
            "--offline",
            "--locked",
            "--no-default-features",
            "--prefix",
            "none",
        ])
        .args(["-p", package, "-e", kinds])
        .output()
        .expect("cannot run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn core_and_the_fast_suite_build_without_whisper_cpp() {
    for (package, kinds) in [
        ("steno-core", "normal,build"),
        ("steno-conformance", "normal,build,dev"),
    ] {
        let tree = tree_without_defaults(package, kinds);
        let native: Vec<&str> = tree
            .lines()
            .filter(|line| line.starts_with("whisper-rs") || line.starts_with("cmake "))
            .collect();
        assert!(
            native.is_empty(),
            "{package} without default features still builds {native:?}: whisper.cpp (cmake, \
             C++) must stay behind the `whisper` feature of steno-core"
        );
    }
}

/// Every Rust file the repository tracks, relative to the root, but those of vendored crates
/// (`vendor/`), which keep their upstream form.
fn rust_files() -> Vec<PathBuf> {
    let output = Command::new("git")
        .args(["ls-files", "--", "*.rs", ":!vendor/"])
        .current_dir(root())
        .output()
        .expect("cannot run git ls-files");
    assert!(output.status.success(), "git ls-files failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(root().join(path))
        .unwrap_or_else(|error| panic!("{}: cannot read: {error}", path.display()))
}

#[test]
fn every_rust_file_opens_with_a_doc_line() {
    let missing: Vec<PathBuf> = rust_files()
        .into_iter()
        .filter(|path| !read(path).trim_start().starts_with("//!"))
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not open with a `//!` line saying what they are for: {missing:?}"
    );
}

/// The paths ARCHITECTURE.md's "Long files" section gives a reason for: its list items that
/// start with a path in backquotes.
fn long_files_explained() -> BTreeSet<PathBuf> {
    let architecture = read(Path::new("ARCHITECTURE.md"));
    let section = architecture
        .split_once("## Long files")
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or(rest))
        .expect("ARCHITECTURE.md has no \"## Long files\" section");
    section
        .lines()
        .filter_map(|line| line.strip_prefix("- `"))
        .filter_map(|line| line.split_once('`'))
        .map(|(path, _)| PathBuf::from(path))
        .collect()
}

#[test]
fn long_files_have_a_reason_in_architecture_md() {
    let explained = long_files_explained();
    let files = rust_files();
    let unexplained: Vec<String> = files
        .iter()
        .map(|path| (path, read(path).lines().count()))
        .filter(|(path, lines)| *lines > LONG_FILE_LINES && !explained.contains(*path))
        .map(|(path, lines)| format!("{} ({lines} lines)", path.display()))
        .collect();
    assert!(
        unexplained.is_empty(),
        "over {LONG_FILE_LINES} lines with no reason in ARCHITECTURE.md's \"Long files\": \
         {unexplained:?}; split the file, or say there why it is one"
    );
    let stale: Vec<&PathBuf> = explained
        .iter()
        .filter(|path| !files.contains(path))
        .collect();
    assert!(
        stale.is_empty(),
        "ARCHITECTURE.md's \"Long files\" names files that do not exist: {stale:?}"
    );
}

/// The sample output the README shows for `cargo xtask demo`: the first `text` block after it
/// says what the demo transcribes.
fn readme_demo_output() -> Vec<String> {
    let readme = read(Path::new("README.md"));
    let (_, after) = readme
        .split_once("transcribes `conformance/inputs/session.wav`")
        .expect("README.md no longer says what `cargo xtask demo` transcribes");
    let (_, block) = after
        .split_once("```text\n")
        .expect("README.md shows no output after `cargo xtask demo`");
    let (block, _) = block.split_once("```").expect("unclosed block");
    block.lines().map(str::to_owned).collect()
}

#[test]
fn the_readme_shows_what_the_demo_prints() {
    // The demo transcribes session.wav with the defaults, as the conformance suite's `session`
    // case does on every backend; its snapshot changes whenever that text does.
    let snapshot = read(Path::new("conformance/tests/snapshots/session.snap"));
    let texts: Vec<String> = snapshot
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| {
            let segment: Value = serde_json::from_str(line).expect("a JSON segment");
            segment["text"].as_str().expect("a text").to_owned()
        })
        .collect();
    assert!(!texts.is_empty(), "session.snap holds no segments");
    assert_eq!(
        readme_demo_output(),
        texts,
        "README.md's output of `cargo xtask demo` is not what it prints (the text of \
         conformance/tests/snapshots/session.snap)"
    );
}
