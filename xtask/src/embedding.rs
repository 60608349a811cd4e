//! `cargo xtask test`'s check that README's embedding example works as written in a project of
//! its own: the example is cut out of README.md, given a `main`, built against the workspace's
//! crates by path in a folder outside the workspace, and run from that folder on a fixture,
//! with the model found the way an application finds it (`STENO_MODEL`).

use std::fs;
use std::path::Path;

use anyhow::{Context, bail};

/// The README section whose first `rust` block is the example.
const SECTION: &str = "## Embedding steno";

/// Words of `session.wav`'s second sentence: the example must print them.
const EXPECTED: &str = "fresh air";

/// Builds and runs the example; fails unless it transcribes the session fixture.
pub(crate) fn check(root: &Path, model: &Path) -> anyhow::Result<()> {
    let readme = fs::read_to_string(root.join("README.md")).context("README.md: cannot read")?;
    let example = example(&readme)?;
    // Under target/, which git ignores; its own `[workspace]` keeps it out of steno's.
    let dir = root.join("target/embedding-example");
    fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("{}: cannot create", dir.display()))?;
    fs::write(dir.join("Cargo.toml"), manifest(root))?;
    // The workspace's versions, so the build shares the workspace's compiled dependencies.
    fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    let main = format!(
        "//! README's embedding example, as written, with a main.\n\n{example}\n\
         fn main() -> steno_core::Result<()> {{\n    \
         let input = std::env::args().nth(1).expect(\"an audio file\");\n    \
         transcribe(&input)\n}}\n"
    );
    fs::write(dir.join("src/main.rs"), main)?;
    eprintln!(
        "xtask: building and running README's embedding example in {}",
        dir.display()
    );
    let output = crate::cargo(&dir)
        .args(["run", "--quiet", "--offline", "--"])
        .arg(root.join("conformance/inputs/session.wav"))
        .env("CARGO_TARGET_DIR", root.join("target"))
        .env("STENO_MODEL", model)
        .output()
        .context("cannot run cargo")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !stdout.to_lowercase().contains(EXPECTED) {
        bail!(
            "README's embedding example failed in {} ({}):\n{stdout}\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    eprint!("{stdout}");
    Ok(())
}

/// The first `rust` code block after the embedding section's heading.
fn example(readme: &str) -> anyhow::Result<&str> {
    let section = readme
        .split_once(SECTION)
        .map(|(_, rest)| rest)
        .with_context(|| format!("README.md has no '{SECTION}' section"))?;
    let code = section
        .split_once("```rust\n")
        .map(|(_, rest)| rest)
        .context("README's embedding section has no rust example")?;
    code.split_once("```")
        .map(|(code, _)| code)
        .context("README's embedding example is not closed")
}

/// A manifest that depends on the workspace's crates by path, with the workspace's patched
/// whisper.cpp (README's embedding section says to add that line) and its dev profile
/// (whisper.cpp built at release speed), so whisper.cpp is built once for both.
fn manifest(root: &Path) -> String {
    format!(
        "[package]\n\
         name = \"steno-embedding-example\"\n\
         version = \"0.0.0\"\n\
         edition = \"2024\"\n\
         publish = false\n\n\
         [dependencies]\n\
         steno-core = {{ path = {core:?} }}\n\
         steno-threads = {{ path = {threads:?} }}\n\n\
         [patch.crates-io]\n\
         whisper-rs-sys = {{ path = {whisper:?} }}\n\n\
         [workspace]\n\n\
         [profile.dev.build-override]\n\
         debug-assertions = false\n\
         opt-level = 3\n\n\
         [profile.dev.package.\"*\"]\n\
         opt-level = 2\n",
        core = root.join("core").display().to_string(),
        threads = root.join("backends/threads").display().to_string(),
        whisper = root.join("vendor/whisper-rs-sys").display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_the_first_rust_block_of_its_section() -> anyhow::Result<()> {
        let readme = "# x\n```rust\nnot this\n```\n## Embedding steno\ntext\n```rust\nfn a() {}\n```\n```rust\nnor this\n```\n";
        assert_eq!(example(readme)?, "fn a() {}\n");
        assert!(example("# nothing here").is_err());
        Ok(())
    }

    #[test]
    fn the_readme_has_the_example() -> anyhow::Result<()> {
        let readme = include_str!("../../README.md");
        assert!(example(readme)?.contains("fn transcribe("));
        Ok(())
    }
}
