//! Where each input of `steno transcribe` writes its text and its report: the `-o` / `--report`
//! naming scheme for several inputs, and the destinations prepared before any work starts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use steno_core::{Format, LineLimits, Sink};

use crate::cli::{FormatName, TranscribeArgs};
use crate::output::{Output, ReportFile};

/// Where one input's text and report go, prepared before the run.
pub(crate) struct Destination {
    output: Output,
    sink: Box<dyn Sink>,
    report: Option<ReportFile>,
}

impl Destination {
    /// The output (stdout, or a temporary file next to `-o`'s target; `held` keeps stdout
    /// output in memory until its turn) and the report's temporary file.
    pub(crate) fn create(
        target: &Target,
        format: Format,
        limits: LineLimits,
        held: bool,
    ) -> anyhow::Result<Self> {
        let label = target.label.as_deref();
        let (output, sink) = match &target.output {
            None if held => Output::buffered(format, limits, label),
            path => Output::create(path.as_deref(), format, limits, label)?,
        };
        let report = target
            .report
            .as_deref()
            .map(ReportFile::create)
            .transpose()?;
        Ok(Destination {
            output,
            sink,
            report,
        })
    }

    /// The output, the sink that writes to it, and the report file.
    pub(crate) fn into_parts(self) -> (Output, Box<dyn Sink>, Option<ReportFile>) {
        (self.output, self.sink, self.report)
    }
}

/// Where one input's output and report go (`None`: stdout, and no report).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    output: Option<PathBuf>,
    report: Option<PathBuf>,
    /// What its JSON lines call the input when several inputs share stdout (else `None`).
    label: Option<String>,
}

/// The `-o` / `--report` naming scheme. A path that names a directory (an existing one, or
/// one ending in `/`, created if missing) gets one file per input in it:
/// `DIR/<input file name without its extension>.<txt|jsonl|srt|vtt>` for `-o` and
/// `DIR/<input name>.report.json` for `--report` (stdin is called `stdin`). Any other path is
/// one file, for a single input only. Two inputs that would write the same file are refused.
pub(crate) fn targets(args: &TranscribeArgs) -> anyhow::Result<Vec<Target>> {
    let outputs = per_input(
        args.output.as_deref(),
        "-o",
        extension(args.pipeline.format),
        &args.inputs,
    )?;
    let reports = per_input(
        args.report.as_deref(),
        "--report",
        "report.json",
        &args.inputs,
    )?;
    let shared_stdout = args.output.is_none() && args.inputs.len() > 1;
    let format = args.pipeline.format;
    if shared_stdout && matches!(format, FormatName::Srt | FormatName::Vtt) {
        bail!(
            "--format {}: {} inputs cannot share stdout in one subtitle file (its cues would \
             overlap); give -o DIR/ for one file per input",
            extension(format),
            args.inputs.len()
        );
    }
    let label = |input: &PathBuf| {
        (shared_stdout && format == FormatName::Jsonl).then(|| input.display().to_string())
    };
    Ok(outputs
        .into_iter()
        .zip(reports)
        .zip(&args.inputs)
        .map(|((output, report), input)| Target {
            output,
            report,
            label: label(input),
        })
        .collect())
}

/// The one output and report of a `--source` run: its tracks make one transcript, so `-o`
/// and `--report` name files, not directories.
pub(crate) fn single_target(args: &TranscribeArgs) -> anyhow::Result<Target> {
    for (path, flag) in [(&args.output, "-o"), (&args.report, "--report")] {
        if let Some(path) = path
            && names_directory(path)
        {
            bail!(
                "{flag} {}: the tracks given with --source make one transcript: name a file",
                path.display()
            );
        }
    }
    Ok(Target {
        output: args.output.clone(),
        report: args.report.clone(),
        label: None,
    })
}

fn per_input(
    path: Option<&Path>,
    flag: &str,
    extension: &str,
    inputs: &[PathBuf],
) -> anyhow::Result<Vec<Option<PathBuf>>> {
    let Some(path) = path else {
        return Ok(vec![None; inputs.len()]);
    };
    if !names_directory(path) {
        if inputs.len() > 1 {
            bail!(
                "{flag} {}: {} inputs need a directory; end it with `/` (or name an existing \
                 directory) to get one <input name>.{extension} per input in it",
                path.display(),
                inputs.len()
            );
        }
        return Ok(vec![Some(path.to_path_buf())]);
    }
    let mut taken: HashMap<PathBuf, &Path> = HashMap::new();
    inputs
        .iter()
        .map(|input| {
            let file = path.join(format!("{}.{extension}", input_name(input)));
            if let Some(other) = taken.insert(file.clone(), input) {
                bail!(
                    "{flag} {}: inputs {} and {} would both write {}",
                    path.display(),
                    other.display(),
                    input.display(),
                    file.display()
                );
            }
            Ok(Some(file))
        })
        .collect()
}

/// Whether `-o`/`--report` names a directory: an existing one, or a path ending in `/`.
fn names_directory(path: &Path) -> bool {
    path.is_dir()
        || path
            .as_os_str()
            .to_string_lossy()
            .ends_with(std::path::MAIN_SEPARATOR)
}

/// An input's name in output file names: its file name without the extension.
fn input_name(input: &Path) -> String {
    if input == Path::new("-") {
        return "stdin".to_owned();
    }
    input
        .file_stem()
        .map_or_else(|| "input".to_owned(), |s| s.to_string_lossy().into_owned())
}

fn extension(format: FormatName) -> &'static str {
    match format {
        FormatName::Text => "txt",
        FormatName::Jsonl => "jsonl",
        FormatName::Srt => "srt",
        FormatName::Vtt => "vtt",
    }
}

/// Creates the directories `-o DIR/` and `--report DIR/` name, once the inputs are known good.
pub(crate) fn create_target_dirs(args: &TranscribeArgs) -> anyhow::Result<()> {
    for path in [&args.output, &args.report].into_iter().flatten() {
        if names_directory(path) && !path.is_dir() {
            std::fs::create_dir_all(path)
                .with_context(|| format!("{}: cannot create the directory", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::transcribe_args as args;

    #[test]
    fn several_inputs_write_one_file_each_into_a_directory() {
        let targets = targets(&args(&[
            "--format",
            "srt",
            "-o",
            "subs/",
            "--report",
            "runs/",
            "a/one.wav",
            "b/two.flac",
            "-",
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let files: Vec<(Option<PathBuf>, Option<PathBuf>)> =
            targets.into_iter().map(|t| (t.output, t.report)).collect();
        assert_eq!(
            files,
            [
                (
                    Some("subs/one.srt".into()),
                    Some("runs/one.report.json".into())
                ),
                (
                    Some("subs/two.srt".into()),
                    Some("runs/two.report.json".into())
                ),
                (
                    Some("subs/stdin.srt".into()),
                    Some("runs/stdin.report.json".into())
                ),
            ]
        );
    }

    #[test]
    fn one_input_keeps_its_file_and_stdout_stays_stdout() {
        let one = targets(&args(&["-o", "out.txt", "a.wav"])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            one,
            [Target {
                output: Some("out.txt".into()),
                report: None,
                label: None,
            }]
        );
        let two = targets(&args(&["a.wav", "b.wav"])).unwrap_or_else(|e| panic!("{e}"));
        assert!(two.iter().all(|t| t.output.is_none() && t.report.is_none()));
    }

    #[test]
    fn several_inputs_on_stdout_are_named_in_jsonl_and_refused_as_subtitles() {
        let jsonl = targets(&args(&["--format", "jsonl", "a.wav", "b/c.wav"]))
            .unwrap_or_else(|e| panic!("{e}"));
        let labels: Vec<Option<&str>> = jsonl.iter().map(|t| t.label.as_deref()).collect();
        assert_eq!(labels, [Some("a.wav"), Some("b/c.wav")]);
        let one = targets(&args(&["--format", "jsonl", "a.wav"])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one[0].label, None, "one input needs no name on its lines");
        for format in ["srt", "vtt"] {
            let err = targets(&args(&["--format", format, "a.wav", "b.wav"]))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains(&format!("--format {format}: 2 inputs cannot share stdout")),
                "{err}"
            );
        }
        assert!(targets(&args(&["--format", "vtt", "-o", "subs/", "a.wav", "b.wav"])).is_ok());
    }

    #[test]
    fn a_file_for_several_inputs_or_two_inputs_with_one_name_are_refused() {
        let err = targets(&args(&["-o", "out.txt", "a.wav", "b.wav"]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("-o out.txt: 2 inputs need a directory"),
            "{err}"
        );
        let err = targets(&args(&["-o", "out/", "x/a.wav", "y/a.flac"]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("would both write out/a.txt"), "{err}");
    }
}
