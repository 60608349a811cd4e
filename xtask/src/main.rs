//! `cargo xtask`: project automation (set-up, model, tests), one subcommand per task.

mod clients;
mod compare;
mod compare_plot;
mod conformance_table;
mod deps;
mod embedding;
mod model;
mod serve_load;
mod tidy;
mod wer;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  demo      install what is missing, build steno in release and transcribe a sample
  test      install what is missing, then fmt check, clippy, the whole test suite and
            README's embedding example built outside the workspace
  model [NAME]
            install a Whisper model by name into models/, as `steno model install NAME`
            does (default: tiny.en-q8_0, quantized from the float16 tiny.en)
  conformance-table [FILE]
            run the conformance suite and write its table into README.md (or FILE)
  compare [--inputs FILES] [--backends LIST] [--models LIST] [--realtime] [--simulated] [--interim]
          [--anchors] [--reference TEXT_FILE] [--runs N] [--json OUT.json] [--plot OUT.svg]
            build steno in release and compare every backend side by side (--interim:
            each also with interim results, against issue 14's targets)
  deps      install what steno builds and tests with: system packages (apt-get, when root)
            and the server tests' Python clients (target/serve-venv)
  serve-load [--streams N] [--idle N] [--interim] [--json OUT.json] ...
            steno serve under load on loopback: idle connections' memory, concurrent
            real-time streams' latency, a misbehaving client alongside (see --help)
  embedding build README's embedding example as a project of its own and run it
  convert <ct2-model-dir> <out.bin>
            convert a CTranslate2 Whisper model to whisper.cpp's ggml format
  quantize <float16-model.bin> <out.bin>
            quantize a float16 ggml Whisper model to q8_0 (faster, same words)";

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run_task(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_task(args: &[String]) -> anyhow::Result<()> {
    let root = workspace_root();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["demo"] => demo(&root),
        ["test"] => test(&root),
        ["model"] => model::ensure(&root).map(drop),
        ["model", name] => model::install(&root, name).map(drop),
        ["conformance-table"] => conformance_table::generate(&root, &root.join("README.md")),
        ["conformance-table", readme] => conformance_table::generate(&root, Path::new(readme)),
        ["compare", "help" | "--help" | "-h"] => {
            println!("{}", compare::USAGE);
            Ok(())
        }
        ["compare", rest @ ..] => {
            compare::run(&root, &compare::Options::parse(&root, &rest_owned(rest))?)
        }
        ["serve-load", "help" | "--help" | "-h"] => {
            println!("{}", serve_load::USAGE);
            Ok(())
        }
        ["serve-load", rest @ ..] => serve_load::run(
            &root,
            &serve_load::Options::parse(&root, &rest_owned(rest))?,
        ),
        ["deps"] => deps::ensure()
            .and_then(|()| deps::ensure_test_packages())
            .and_then(|()| clients::ensure(&root).map(drop)),
        ["embedding"] => embedding::check(&root, &model::ensure(&root)?),
        ["convert", from, to] => steno_model_store::convert(Path::new(from), Path::new(to)),
        ["quantize", from, to] => {
            steno_model_store::quantize_q8_0(Path::new(from), Path::new(to)).map(drop)
        }
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown or incomplete task\n{USAGE}"),
    }
}

fn demo(root: &Path) -> anyhow::Result<()> {
    deps::ensure()?;
    let model = model::ensure(root)?;
    run(cargo(root).args(["build", "--release", "--locked", "-p", "steno"]))?;
    let sample = root.join("conformance/inputs/session.wav");
    eprintln!("xtask: transcribing {}", sample.display());
    run(Command::new(root.join("target/release/steno"))
        .arg("transcribe")
        .arg("--model")
        .arg(&model)
        .arg(&sample))
}

fn test(root: &Path) -> anyhow::Result<()> {
    deps::ensure()?;
    deps::ensure_test_packages()?;
    clients::ensure(root)?;
    let model = model::ensure(root)?;
    let converted = model::ensure_converted(root)?;
    // The multilingual model of the language and translation tests.
    model::install(root, "base")?;
    run(cargo(root).args(["fmt", "--all", "--check"]))?;
    run(cargo(root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The docs build without a warning (a broken intra-doc link, say), private items'
    // included: most of the codebase's links are in its modules' own docs. Their examples
    // run with the tests below.
    run(cargo(root)
        .args([
            "doc",
            "--workspace",
            "--no-deps",
            "--document-private-items",
            "--locked",
        ])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    // Core without Whisper and the file decoders: what an application with its own
    // transcriber builds (the tidy tests check that nothing else pulls whisper.cpp in).
    run(cargo(root).args([
        "test",
        "-p",
        "steno-core",
        "--no-default-features",
        "--locked",
    ]))?;
    // insta in check mode: a changed or new snapshot fails instead of being written (the
    // conformance suite itself rejects unreferenced ones). The suite records each case's
    // outcome, and the README's generated table must match them.
    let results = conformance_table::clear_results(root)?;
    run(cargo(root)
        .args(["test", "--workspace", "--locked"])
        .env("STENO_CONVERTED_MODEL", converted)
        .env("INSTA_UPDATE", "no")
        .env("CI", "true")
        .env(conformance_table::RESULTS_ENV, &results))?;
    conformance_table::check(root)?;
    embedding::check(root, &model)
}

fn rest_owned(rest: &[&str]) -> Vec<String> {
    rest.iter().map(|s| (*s).to_owned()).collect()
}

/// `cargo` as invoked us (`$CARGO`), run at the workspace root.
pub(crate) fn cargo(root: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root);
    command
}

/// Runs `command`, failing with its exit status.
pub(crate) fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{:?} failed ({status})", command.get_program());
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
