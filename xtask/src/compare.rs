//! `cargo xtask compare`: runs the release `steno` binary once per backend and run, on the same
//! inputs, interleaved, and compares wall time, real-time factor, latency, CPU, memory, drops
//! and output against a floor: the same chunks transcribed by a plain sequential loop. With
//! `--anchors`, offline runs also measure the tools steno is held to, in the same run:
//! faster-whisper (in a venv under `target/anchors/`, on the CTranslate2 copy of the weights
//! the converter starts from, as stored and as 8-bit `int8`) and whisper.cpp's own long-form
//! path on steno's model file (`steno floor --whisper-cli`: `whisper_full` over the whole file
//! with whisper-cli's defaults, `-mc 0`). With `--interim`, each backend also runs with
//! `steno transcribe --interim` next to every run without it (`compare/interim.rs`).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Value, json};

mod fleet;
mod interim;

pub(crate) const USAGE: &str =
    "usage: cargo xtask compare [--inputs FILES] [--backends LIST] [--models LIST] [--realtime] \
[--simulated] [--interim] [--anchors] [--reference TEXT_FILE] [--runs N] [--fleet N] \
[--json OUT.json] [--plot OUT.svg]

--models LIST: the models to run every backend with, by name (`steno model list`; installed
if missing; default: tiny.en-q8_0), interleaved; with several, rows are BACKEND/MODEL.

--fleet N: the nats backend's workers, each with cores / N threads (default: as every other
backend's states x threads, cores / 2 workers of 2 threads with --realtime, else one 1-thread
worker per core).

--interim: every round runs each backend without and with `steno transcribe --interim` and
adds a table of their partials (judged against issue 14's targets with --realtime and the real
model) and an \"interim\" key to the JSON (write it to benchmarks/realtime-interim.json).";

/// The anchor rows of `--anchors`: faster-whisper on the float16 weights as they are (its
/// default compute type), faster-whisper with its 8-bit weights (`int8`: its own counterpart of
/// steno's default q8_0 model), and whisper.cpp on steno's model file.
const FASTER_WHISPER: &str = "faster-whisper";
const FASTER_WHISPER_INT8: &str = "faster-whisper int8";
const WHISPER_CPP: &str = "whisper.cpp";
/// The backend that needs a broker and workers of its own (see `fleet`).
const NATS: &str = "nats";
/// The anchors in row order.
const ANCHORS: [&str; 3] = [FASTER_WHISPER, FASTER_WHISPER_INT8, WHISPER_CPP];

/// Threads every anchor and steno's Whisper state use: the cores of the reference machine.
const ANCHOR_THREADS: &str = "2";

/// Cost of the simulated transcriber, in milliseconds per second of audio (about tiny.en's
/// speed on two cores), so the pipeline's own overhead is measured without the model's noise.
const SIMULATED_COST_MS_PER_S: u64 = 150;

/// What to compare, from the command line.
#[derive(Debug)]
pub(crate) struct Options {
    inputs: Vec<PathBuf>,
    backends: Option<Vec<String>>,
    realtime: bool,
    simulated: bool,
    /// Each backend also with `--interim`, next to each of its runs without.
    interim: bool,
    anchors: bool,
    reference: Option<PathBuf>,
    runs: usize,
    /// Workers of the nats backend's fleet.
    fleet: Option<usize>,
    /// The models to run each backend with, by name (default: the default model). With more
    /// than one, each backend's rows are `BACKEND/MODEL`.
    models: Vec<String>,
    json: Option<PathBuf>,
    plot: Option<PathBuf>,
}

impl Options {
    /// Parses `compare`'s arguments; `root` supplies the default inputs.
    pub(crate) fn parse(root: &Path, args: &[String]) -> anyhow::Result<Self> {
        let mut options = Options {
            inputs: Vec::new(),
            backends: None,
            realtime: false,
            simulated: false,
            interim: false,
            anchors: false,
            reference: None,
            runs: 3,
            fleet: None,
            models: Vec::new(),
            json: None,
            plot: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                "--inputs" => {
                    let list = value("--inputs")?;
                    options.inputs.extend(list.split(',').map(PathBuf::from));
                }
                "--backends" => {
                    let list = value("--backends")?;
                    options.backends = Some(list.split(',').map(str::to_owned).collect());
                }
                "--realtime" => options.realtime = true,
                "--simulated" => options.simulated = true,
                "--interim" => options.interim = true,
                "--anchors" => options.anchors = true,
                "--reference" => options.reference = Some(value("--reference")?.into()),
                "--runs" => {
                    let runs = value("--runs")?;
                    options.runs =
                        runs.parse().ok().filter(|&n| n > 0).with_context(|| {
                            format!("--runs {runs}: expected a positive number")
                        })?;
                }
                "--fleet" => {
                    let fleet = value("--fleet")?;
                    options.fleet =
                        Some(fleet.parse().ok().filter(|&n| n > 0).with_context(|| {
                            format!("--fleet {fleet}: expected a positive number")
                        })?);
                }
                "--models" => {
                    let list = value("--models")?;
                    options.models.extend(list.split(',').map(str::to_owned));
                }
                "--json" => options.json = Some(value("--json")?.into()),
                "--plot" => options.plot = Some(value("--plot")?.into()),
                other => bail!("unknown option {other}\n{USAGE}"),
            }
        }
        if options.inputs.is_empty() {
            options
                .inputs
                .push(root.join("conformance/inputs/session.wav"));
            if options.reference.is_none() {
                options.reference = Some(root.join("conformance/inputs/session.txt"));
            }
        }
        for input in &options.inputs {
            if !input.is_file() {
                bail!("{}: no such input file", input.display());
            }
        }
        if options.models.is_empty() {
            options.models.push(steno_core::DEFAULT_MODEL.to_owned());
        }
        if options.models.len() > 1
            && options
                .backends
                .as_ref()
                .is_none_or(|b| b.iter().any(|b| b == NATS))
        {
            bail!(
                "--models with several models needs --backends without nats (its fleet serves one model)"
            );
        }
        if options.anchors && (options.realtime || options.simulated) {
            bail!("--anchors compares offline runs of the real model: drop --realtime/--simulated");
        }
        Ok(options)
    }
}

/// One run of one backend over every input.
#[derive(Debug, Clone)]
struct Measurement {
    backend: String,
    run: usize,
    wall_seconds: f64,
    audio_seconds: f64,
    cpu_seconds: f64,
    peak_rss_bytes: u64,
    dropped_samples: u64,
    restarts: u64,
    /// Full-window retries of the transcriber's loop guard.
    retries: u64,
    /// Restarted transcripts the loop guard cut after the first copy.
    cuts: u64,
    latencies_ms: Vec<f64>,
    /// From the end of speech to the text (real time only: there audio time is wall time,
    /// so it is `emitted_at - speech_end` of each segment).
    speech_end_latencies_ms: Vec<f64>,
    overhead_p99_ms: Option<f64>,
    /// JSON Lines with wall-clock fields removed, per input: what must be identical.
    output: Vec<String>,
    text: String,
    /// `Some` for a run with `--interim`: what its reports say about its partials.
    interim: Option<interim::Tally>,
}

impl Measurement {
    /// Nothing measured yet for `backend` in run `run`.
    fn new(backend: &str, run: usize) -> Self {
        Measurement {
            backend: backend.to_owned(),
            run,
            wall_seconds: 0.0,
            audio_seconds: 0.0,
            cpu_seconds: 0.0,
            peak_rss_bytes: 0,
            dropped_samples: 0,
            restarts: 0,
            retries: 0,
            cuts: 0,
            latencies_ms: Vec::new(),
            speech_end_latencies_ms: Vec::new(),
            overhead_p99_ms: None,
            output: Vec::new(),
            text: String::new(),
            interim: None,
        }
    }
}

pub(crate) fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    crate::deps::ensure()?;
    let mut models = Vec::new();
    for name in &options.models {
        models.push((name.clone(), crate::model::install(root, name)?));
    }
    let model = models[0].1.clone();
    crate::run(crate::cargo(root).args(["build", "--release", "--locked", "-p", "steno"]))?;
    let steno = root.join("target/release/steno");
    let backends = match &options.backends {
        Some(list) => list.clone(),
        None => available_backends(&steno)?,
    };
    // One variant per backend and model: `BACKEND/MODEL` when several models are compared.
    let mut variants = Vec::new();
    for backend in &backends {
        for (name, path) in &models {
            variants.push(Variant {
                label: if models.len() > 1 {
                    format!("{backend}/{name}")
                } else {
                    backend.clone()
                },
                backend: backend.clone(),
                model: path.clone(),
            });
        }
    }
    let labels: Vec<String> = variants.iter().map(|v| v.label.clone()).collect();
    let scratch = tempfile_dir(root)?;
    let anchors = if options.anchors {
        Some(Anchors::prepare(root)?)
    } else {
        None
    };
    // The NATS backend's broker and workers, started once and kept for every run.
    let fleet = if backends.iter().any(|backend| backend == NATS) {
        let cost = options.simulated.then_some(SIMULATED_COST_MS_PER_S);
        Some(fleet::Fleet::start(
            &steno,
            &model,
            cost,
            options.fleet,
            options.realtime,
        )?)
    } else {
        None
    };
    let rig = Rig {
        steno: &steno,
        scratch: &scratch,
        fleet: fleet.as_ref(),
    };
    let mut measurements = Vec::new();
    let with_floor = !options.realtime;
    let mut extra = Vec::new();
    if with_floor {
        extra.push("floor");
    }
    if anchors.is_some() {
        extra.extend(ANCHORS);
    }
    for run in 0..options.runs {
        let order = labels
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied());
        for backend in order {
            // Which of the pair goes first alternates by round, so that neither always runs
            // on the machine the other has just warmed.
            let kinds: &[bool] = if !options.interim || !labels.iter().any(|b| b == backend) {
                &[false]
            } else if run % 2 == 0 {
                &[false, true]
            } else {
                &[true, false]
            };
            for &with_interim in kinds {
                let flag = if with_interim { " --interim" } else { "" };
                eprintln!("xtask: run {}/{} {backend}{flag}", run + 1, options.runs);
                let measurement = match (&anchors, backend) {
                    (Some(anchors), FASTER_WHISPER) => {
                        anchors.faster_whisper(FASTER_WHISPER, "default", run, options)?
                    }
                    (Some(anchors), FASTER_WHISPER_INT8) => {
                        anchors.faster_whisper(FASTER_WHISPER_INT8, "int8", run, options)?
                    }
                    _ => {
                        let fallback = Variant {
                            label: backend.to_owned(),
                            backend: backend.to_owned(),
                            model: model.clone(),
                        };
                        let variant = variants.iter().find(|v| v.label == backend);
                        measure(
                            &rig,
                            variant.unwrap_or(&fallback),
                            run,
                            with_interim,
                            options,
                        )?
                    }
                };
                measurements.push(measurement);
            }
        }
    }
    // The workers and the broker stop here, before the tables are rendered.
    drop(fleet);
    let _ = fs::remove_dir_all(&scratch);
    // The simulated transcriber's text is not speech: a word error rate would mean nothing.
    let reference = match options.reference.as_ref().filter(|_| !options.simulated) {
        Some(path) => Some(
            fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?,
        ),
        None => None,
    };
    let rows = summarise(&labels, &extra, &measurements, reference.as_deref());
    print!("{}", render_table(&rows, options));
    if anchors.is_some() {
        print!("{}", render_anchor_ratios(&labels, &measurements));
    }
    // The targets are about what a listener sees live with the real model.
    let judged = options.realtime && !options.simulated;
    let interim_rows = options
        .interim
        .then(|| interim::summarise(&labels, &measurements, judged));
    if let Some(interim_rows) = &interim_rows {
        print!("{}", interim::render(interim_rows));
    }
    if let Some(path) = &options.json {
        let document = json!({
            "realtime": options.realtime,
            "simulated": options.simulated,
            "runs": options.runs,
            "models": options.models,
            "inputs": options.inputs,
            "rows": rows,
            "interim": interim_rows,
            "measurements": measurements.iter().map(measurement_json).collect::<Vec<_>>(),
        });
        fs::write(path, serde_json::to_vec_pretty(&document)?)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    if let Some(path) = &options.plot {
        crate::compare_plot::draw(path, &rows, &measurements_by_backend(&rows, &measurements))?;
    }
    Ok(())
}

fn tempfile_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = root.join("target/compare-runs");
    fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    Ok(dir)
}

/// The backends this `steno` build can run (`steno backends`).
fn available_backends(steno: &Path) -> anyhow::Result<Vec<String>> {
    let output = Command::new(steno)
        .arg("backends")
        .output()
        .context("cannot run steno backends")?;
    if !output.status.success() {
        bail!(
            "steno backends failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// What every steno run of a comparison uses.
/// What one row measures: a backend with a model.
struct Variant {
    /// The row's name.
    label: String,
    backend: String,
    model: PathBuf,
}

struct Rig<'a> {
    /// The release `steno`.
    steno: &'a Path,
    /// Where reports and outputs go.
    scratch: &'a Path,
    /// The NATS backend's broker and workers, when it is compared.
    fleet: Option<&'a fleet::Fleet>,
}

fn measure(
    rig: &Rig<'_>,
    variant: &Variant,
    run: usize,
    with_interim: bool,
    options: &Options,
) -> anyhow::Result<Measurement> {
    let Rig {
        steno,
        scratch,
        fleet,
    } = *rig;
    let (backend, model) = (variant.backend.as_str(), &variant.model);
    let label = variant.label.replace('/', "-");
    let mut measurement = Measurement::new(&variant.label, run);
    if with_interim {
        measurement.interim = Some(interim::Tally::default());
    }
    let name = if with_interim { "-interim" } else { "" };
    for (i, input) in options.inputs.iter().enumerate() {
        let report_path = scratch.join(format!("{label}-{run}-{i}{name}.json"));
        let output_path = scratch.join(format!("{label}-{run}-{i}{name}.jsonl"));
        let mut command = Command::new(steno);
        if backend == "floor" {
            command.arg("floor");
        } else if backend == WHISPER_CPP {
            command.args(["floor", "--whisper-cli", "--threads", ANCHOR_THREADS]);
        } else {
            command
                .args([
                    "transcribe",
                    "--format",
                    "jsonl",
                    "--backend",
                    backend,
                    "-o",
                ])
                .arg(&output_path);
            if options.realtime {
                command.arg("--realtime");
            }
            if with_interim {
                command.arg("--interim");
            }
            if let (NATS, Some(fleet)) = (backend, fleet) {
                command.args(fleet.transcribe_args());
            }
        }
        command
            .arg("--model")
            .arg(model)
            .arg("--report")
            .arg(&report_path);
        if options.simulated {
            command.args(["--simulate-cost-ms", &SIMULATED_COST_MS_PER_S.to_string()]);
        }
        command.arg(input);
        // The fleet's workers are not children of the run: their CPU is counted around it.
        let fleet_cpu = fleet
            .filter(|_| backend == NATS)
            .map(fleet::Fleet::cpu_seconds);
        let output = run_measured(&mut command, backend, input, &mut measurement)?;
        if let (Some(before), Some(fleet)) = (fleet_cpu, fleet) {
            measurement.cpu_seconds += fleet.cpu_seconds() - before;
        }
        let report: Value = serde_json::from_slice(
            &fs::read(&report_path)
                .with_context(|| format!("{}: missing", report_path.display()))?,
        )?;
        let number = |key: &str| report[key].as_f64().unwrap_or(0.0);
        measurement.wall_seconds += number("wall_seconds");
        measurement.audio_seconds += number("audio_seconds");
        let workers_rss = fleet
            .filter(|_| backend == NATS)
            .map_or(0, fleet::Fleet::peak_rss_bytes);
        measurement.peak_rss_bytes = measurement
            .peak_rss_bytes
            .max(report["peak_rss_bytes"].as_u64().unwrap_or(0) + workers_rss);
        measurement.dropped_samples += report["dropped_samples"].as_u64().unwrap_or(0);
        // Workers replaced (process) or chunks given to another worker (nats): work lost.
        measurement.restarts += report["worker_restarts"].as_u64().unwrap_or(0)
            + report["redeliveries"].as_u64().unwrap_or(0);
        measurement.retries += report["full_window_retries"].as_u64().unwrap_or(0);
        measurement.cuts += report["restarts_cut"].as_u64().unwrap_or(0);
        if let Some(p99) = report["overhead_ms"]["p99"].as_f64() {
            let previous = measurement.overhead_p99_ms.unwrap_or(0.0);
            measurement.overhead_p99_ms = Some(previous.max(p99));
        }
        if let Some(tally) = &mut measurement.interim {
            tally.add(&report);
        }
        if backend == "floor" || backend == WHISPER_CPP {
            measurement
                .text
                .push_str(&String::from_utf8_lossy(&output.stdout));
            continue;
        }
        let jsonl = fs::read_to_string(&output_path)
            .with_context(|| format!("{}: missing", output_path.display()))?;
        let mut canonical = String::new();
        for line in jsonl.lines() {
            let segment: Value = serde_json::from_str(line)
                .with_context(|| format!("{backend}: bad JSON line {line:?}"))?;
            // Partials are counted by the report; latency, text and sameness are the finals'.
            if segment["type"] == "partial" {
                continue;
            }
            measurement
                .latencies_ms
                .push(segment["latency_ms"].as_f64().unwrap_or(0.0));
            if options.realtime {
                let at = |key: &str| segment[key].as_f64().unwrap_or(0.0);
                measurement
                    .speech_end_latencies_ms
                    .push((at("emitted_at") - at("speech_end")) * 1000.0);
            }
            let text = segment["text"].as_str().unwrap_or("");
            measurement.text.push_str(text);
            measurement.text.push(' ');
            let _ = writeln!(
                canonical,
                "{} {} {} {}",
                segment["chunk"], segment["start"], segment["end"], text
            );
        }
        measurement.output.push(canonical);
    }
    Ok(measurement)
}

/// Runs `command` (`row` on `input`), failing with its stderr unless it succeeded, and adds
/// the CPU it and its children used to `measurement`.
fn run_measured(
    command: &mut Command,
    row: &str,
    input: &Path,
    measurement: &mut Measurement,
) -> anyhow::Result<std::process::Output> {
    let cpu_before = children_cpu_seconds();
    let output = command
        .output()
        .with_context(|| format!("cannot run {:?} for {row}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{row} on {}: {}",
            input.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    measurement.cpu_seconds += children_cpu_seconds() - cpu_before;
    Ok(output)
}

/// CPU seconds (user + system) of this process's finished children, from `/proc/self/stat`:
/// covers `steno` and any worker processes it waited for.
fn children_cpu_seconds() -> f64 {
    // After the command name: state is field 3, so cutime (16) and cstime (17) are 13 and 14.
    cpu_seconds_in("/proc/self/stat", 13)
}

/// The sum of two consecutive CPU-time fields of a `/proc/PID/stat` file (in clock ticks,
/// 100 per second), `first` counted from the state field after the command name; 0 when the
/// file cannot be read.
pub(crate) fn cpu_seconds_in(stat_path: &str, first: usize) -> f64 {
    let Ok(stat) = fs::read_to_string(stat_path) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    (fields.get(first).unwrap_or(&0.0) + fields.get(first + 1).unwrap_or(&0.0)) / 100.0
}

/// One row of the comparison table (medians over runs).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Row {
    pub(crate) backend: String,
    pub(crate) wall_seconds: f64,
    pub(crate) wall_min: f64,
    pub(crate) wall_max: f64,
    pub(crate) rtf: f64,
    pub(crate) ratio_to_floor: Option<f64>,
    pub(crate) latency_p50_ms: Option<f64>,
    pub(crate) latency_p95_ms: Option<f64>,
    pub(crate) latency_max_ms: Option<f64>,
    pub(crate) speech_end_p50_ms: Option<f64>,
    pub(crate) speech_end_p95_ms: Option<f64>,
    pub(crate) speech_end_max_ms: Option<f64>,
    pub(crate) overhead_p99_ms: Option<f64>,
    pub(crate) cpu_seconds: f64,
    pub(crate) peak_rss_bytes: u64,
    pub(crate) dropped_samples: u64,
    pub(crate) worker_restarts: u64,
    pub(crate) full_window_retries: u64,
    pub(crate) restarts_cut: u64,
    pub(crate) identical_to_threads: Option<bool>,
    pub(crate) wer: Option<f64>,
}

/// One row per backend, then one per `extra` row (the floor, the anchors) that was measured;
/// runs with `--interim` have rows of their own (`interim::summarise`).
fn summarise(
    backends: &[String],
    extra: &[&str],
    measurements: &[Measurement],
    reference: Option<&str>,
) -> Vec<Row> {
    let measurements = without_interim(measurements);
    // Each backend's output against the threads backend's with the same model.
    let threads_output = |name: &str| {
        let threads = match name.split_once('/') {
            Some((_, model)) => format!("threads/{model}"),
            None => "threads".to_owned(),
        };
        measurements
            .iter()
            .find(|m| m.backend == threads)
            .map(|m| m.output.clone())
    };
    let of = |name: &str| -> Vec<&Measurement> {
        measurements
            .iter()
            .copied()
            .filter(|m| m.backend == name)
            .collect()
    };
    let floor_wall = extra
        .contains(&"floor")
        .then(|| median(of("floor").iter().map(|m| m.wall_seconds).collect()));
    let mut names: Vec<&str> = backends.iter().map(String::as_str).collect();
    names.extend(extra);
    names
        .into_iter()
        .map(|name| {
            let runs = of(name);
            let walls: Vec<f64> = runs.iter().map(|m| m.wall_seconds).collect();
            let wall = median(walls.clone());
            let audio = runs.first().map_or(0.0, |m| m.audio_seconds);
            let latencies: Vec<f64> = runs.iter().flat_map(|m| m.latencies_ms.clone()).collect();
            let is_backend = backends.iter().any(|b| b == name);
            let has_latency = !latencies.is_empty() && is_backend;
            let speech_end: Vec<f64> = runs
                .iter()
                .flat_map(|m| m.speech_end_latencies_ms.clone())
                .collect();
            let has_speech_end = !speech_end.is_empty();
            Row {
                backend: name.to_owned(),
                wall_seconds: wall,
                wall_min: walls.iter().copied().fold(f64::INFINITY, f64::min),
                wall_max: walls.iter().copied().fold(0.0, f64::max),
                rtf: if audio > 0.0 { wall / audio } else { 0.0 },
                ratio_to_floor: floor_wall.filter(|&f| f > 0.0).map(|f| wall / f),
                latency_p50_ms: has_latency.then(|| percentile(&latencies, 0.50)),
                latency_p95_ms: has_latency.then(|| percentile(&latencies, 0.95)),
                latency_max_ms: has_latency.then(|| percentile(&latencies, 1.0)),
                speech_end_p50_ms: has_speech_end.then(|| percentile(&speech_end, 0.50)),
                speech_end_p95_ms: has_speech_end.then(|| percentile(&speech_end, 0.95)),
                speech_end_max_ms: has_speech_end.then(|| percentile(&speech_end, 1.0)),
                overhead_p99_ms: runs
                    .iter()
                    .filter_map(|m| m.overhead_p99_ms)
                    .reduce(f64::max),
                cpu_seconds: median(runs.iter().map(|m| m.cpu_seconds).collect()),
                peak_rss_bytes: runs.iter().map(|m| m.peak_rss_bytes).max().unwrap_or(0),
                dropped_samples: runs.iter().map(|m| m.dropped_samples).max().unwrap_or(0),
                worker_restarts: runs.iter().map(|m| m.restarts).sum(),
                full_window_retries: runs.iter().map(|m| m.retries).max().unwrap_or(0),
                restarts_cut: runs.iter().map(|m| m.cuts).max().unwrap_or(0),
                identical_to_threads: match threads_output(name) {
                    Some(expected) if is_backend => Some(runs.iter().all(|m| m.output == expected)),
                    _ => None,
                },
                wer: reference.and_then(|r| runs.first().map(|m| crate::wer::wer(r, &m.text))),
            }
        })
        .collect()
}

/// The runs without `--interim`: the rows every mode shows.
fn without_interim(measurements: &[Measurement]) -> Vec<&Measurement> {
    measurements
        .iter()
        .filter(|m| m.interim.is_none())
        .collect()
}

fn measurements_by_backend(rows: &[Row], measurements: &[Measurement]) -> Vec<(String, Vec<f64>)> {
    rows.iter()
        .map(|row| {
            let latencies = without_interim(measurements)
                .into_iter()
                .filter(|m| m.backend == row.backend)
                .flat_map(|m| m.latencies_ms.clone())
                .collect();
            (row.backend.clone(), latencies)
        })
        .collect()
}

fn measurement_json(m: &Measurement) -> Value {
    json!({
        "backend": m.backend, "run": m.run, "wall_seconds": m.wall_seconds,
        "audio_seconds": m.audio_seconds, "cpu_seconds": m.cpu_seconds,
        "peak_rss_bytes": m.peak_rss_bytes, "dropped_samples": m.dropped_samples,
        "worker_restarts": m.restarts, "full_window_retries": m.retries,
        "restarts_cut": m.cuts,
        "latencies_ms": m.latencies_ms, "speech_end_latencies_ms": m.speech_end_latencies_ms,
        "overhead_p99_ms": m.overhead_p99_ms, "interim": m.interim,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// Nearest-rank percentile (`p` in 0..=1).
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// What `--anchors` runs faster-whisper with: its venv, script and the CTranslate2 weights.
struct Anchors {
    python: PathBuf,
    script: PathBuf,
    ct2_model: PathBuf,
}

impl Anchors {
    /// Makes the venv under `target/anchors/` and installs faster-whisper into it from PyPI
    /// (once), and fetches the CTranslate2 copy of the model.
    fn prepare(root: &Path) -> anyhow::Result<Anchors> {
        let venv = root.join("target/anchors/venv");
        let python = venv.join("bin/python");
        if !python.is_file() {
            eprintln!("xtask: creating {}", venv.display());
            crate::run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
                .context("python3 -m venv failed (is python3-venv installed?)")?;
        }
        let installed = Command::new(&python)
            .args(["-c", "import faster_whisper"])
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            eprintln!("xtask: installing faster-whisper into {}", venv.display());
            crate::run(Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "faster-whisper",
            ]))
            .context("pip could not install faster-whisper")?;
        }
        Ok(Anchors {
            python,
            script: root.join("xtask/anchors/faster_whisper_anchor.py"),
            ct2_model: crate::model::ct2_model_dir(root)?,
        })
    }

    /// faster-whisper over every input with CTranslate2's `compute_type`, as one run of row
    /// `row`.
    fn faster_whisper(
        &self,
        row: &str,
        compute_type: &str,
        run: usize,
        options: &Options,
    ) -> anyhow::Result<Measurement> {
        let mut measurement = Measurement::new(row, run);
        for input in &options.inputs {
            let mut command = Command::new(&self.python);
            command
                .arg(&self.script)
                .arg(&self.ct2_model)
                .arg(input)
                .arg(ANCHOR_THREADS)
                .arg(compute_type)
                // OpenBLAS tuning meant for numpy on some CPUs: not CTranslate2's concern.
                .env_remove("OPENBLAS_CORETYPE")
                .env_remove("OPENBLAS_L2_SIZE");
            let output = run_measured(&mut command, row, input, &mut measurement)?;
            let result: Value = serde_json::from_slice(&output.stdout)
                .context("the faster-whisper anchor printed no JSON")?;
            measurement.wall_seconds += result["wall_seconds"].as_f64().unwrap_or(0.0);
            measurement.audio_seconds += result["audio_seconds"].as_f64().unwrap_or(0.0);
            measurement.peak_rss_bytes = measurement
                .peak_rss_bytes
                .max(result["peak_rss_bytes"].as_u64().unwrap_or(0));
            measurement
                .text
                .push_str(result["text"].as_str().unwrap_or(""));
            measurement.text.push(' ');
        }
        Ok(measurement)
    }
}

/// steno's backends against the anchors, as ratios of wall time run by run (the runs are
/// interleaved, so each ratio compares neighbours): median and range.
fn render_anchor_ratios(backends: &[String], measurements: &[Measurement]) -> String {
    let wall = |name: &str, run: usize| {
        without_interim(measurements)
            .into_iter()
            .find(|m| m.backend == name && m.run == run)
            .map(|m| m.wall_seconds)
    };
    let runs = measurements.iter().map(|m| m.run + 1).max().unwrap_or(0);
    let mut out = format!(
        "\n| backend | x {} |\n|---|---|---|---|\n",
        ANCHORS.join(" | x ")
    );
    for backend in backends {
        let ratios = |anchor: &str| -> String {
            let per_run: Vec<f64> = (0..runs)
                .filter_map(|run| Some(wall(backend, run)? / wall(anchor, run)?))
                .collect();
            if per_run.is_empty() {
                return "-".to_owned();
            }
            let (low, high) = per_run
                .iter()
                .fold((f64::INFINITY, 0.0_f64), |(l, h), &r| (l.min(r), h.max(r)));
            format!("{:.2} ({low:.2}-{high:.2})", median(per_run))
        };
        let columns: Vec<String> = ANCHORS.iter().map(|anchor| ratios(anchor)).collect();
        let _ = writeln!(out, "| {backend} | {} |", columns.join(" | "));
    }
    out
}

fn render_table(rows: &[Row], options: &Options) -> String {
    let mode = match (options.realtime, options.simulated) {
        (true, true) => "realtime, simulated transcriber",
        (true, false) => "realtime, real model",
        (false, true) => "offline, simulated transcriber",
        (false, false) => "offline, real model",
    };
    let without = if options.interim {
        ", the runs without --interim"
    } else {
        ""
    };
    let mut out = format!(
        "\n{mode}; {} run(s) each, interleaved{without}; medians (min-max)\n\n",
        options.runs
    );
    out.push_str("| backend | wall s | RTF | x floor | latency p50 / p95 / max ms | speech end to text p50 / p95 / max ms | overhead p99 ms | CPU s | peak RSS MB | dropped | restarts | retries / cuts | same as threads | WER |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let opt = |v: Option<f64>, digits: usize| v.map_or("-".to_owned(), |v| format!("{v:.digits$}"));
    for row in rows {
        let spread = |p50: Option<f64>, p95: Option<f64>, max: Option<f64>| match (p50, p95, max) {
            (Some(a), Some(b), Some(c)) => format!("{a:.0} / {b:.0} / {c:.0}"),
            _ => "-".to_owned(),
        };
        let latency = spread(row.latency_p50_ms, row.latency_p95_ms, row.latency_max_ms);
        let speech_end = spread(
            row.speech_end_p50_ms,
            row.speech_end_p95_ms,
            row.speech_end_max_ms,
        );
        let _ = writeln!(
            out,
            "| {} | {:.2} ({:.2}-{:.2}) | {:.3} | {} | {} | {} | {} | {:.2} | {:.0} | {} | {} | {} / {} | {} | {} |",
            row.backend,
            row.wall_seconds,
            row.wall_min,
            row.wall_max,
            row.rtf,
            opt(row.ratio_to_floor, 3),
            latency,
            speech_end,
            opt(row.overhead_p99_ms, 2),
            row.cpu_seconds,
            row.peak_rss_bytes as f64 / 1e6,
            row.dropped_samples,
            row.worker_restarts,
            row.full_window_retries,
            row.restarts_cut,
            row.identical_to_threads
                .map_or("-", |same| if same { "yes" } else { "NO" }),
            opt(row.wer, 3),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(percentile(&[5.0, 1.0, 3.0, 2.0, 4.0], 0.5), 3.0);
        assert_eq!(percentile(&[5.0, 1.0, 3.0, 2.0, 4.0], 1.0), 5.0);
    }

    #[test]
    fn bad_arguments_are_named() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let err = Options::parse(root, &["--runs".into(), "zero".into()]).unwrap_err();
        assert!(err.to_string().contains("--runs zero"), "{err}");
        let err = Options::parse(root, &["--inputs".into(), "nope.wav".into()]).unwrap_err();
        assert!(
            err.to_string().contains("nope.wav: no such input file"),
            "{err}"
        );
        let err = Options::parse(root, &["--fast".into()]).unwrap_err();
        assert!(err.to_string().contains("unknown option --fast"), "{err}");
    }

    #[test]
    fn rows_compare_with_the_floor_and_the_threads_output() {
        let m = |backend: &str, wall: f64, output: &str| Measurement {
            backend: backend.into(),
            run: 0,
            wall_seconds: wall,
            audio_seconds: 10.0,
            cpu_seconds: 1.0,
            peak_rss_bytes: 1,
            dropped_samples: 0,
            restarts: 0,
            retries: 0,
            cuts: 0,
            latencies_ms: vec![100.0, 200.0],
            speech_end_latencies_ms: vec![],
            overhead_p99_ms: None,
            output: vec![output.into()],
            text: "the quick brown fox".into(),
            interim: None,
        };
        let measurements = [
            m("threads", 2.2, "a"),
            m("tokio", 2.0, "b"),
            m("floor", 2.0, ""),
        ];
        let rows = summarise(
            &["threads".into(), "tokio".into()],
            &["floor"],
            &measurements,
            Some("the quick brown dog"),
        );
        assert_eq!(rows.len(), 3);
        assert!((rows[0].ratio_to_floor.unwrap() - 1.1).abs() < 1e-9);
        assert_eq!(rows[0].identical_to_threads, Some(true));
        assert_eq!(rows[1].identical_to_threads, Some(false));
        assert_eq!(rows[2].identical_to_threads, None);
        assert_eq!(rows[0].wer, Some(0.25));
        assert!((rows[1].rtf - 0.2).abs() < 1e-9);

        let with_interim = Measurement {
            wall_seconds: 9.0,
            output: vec!["c".into()],
            interim: Some(interim::Tally::default()),
            ..measurements[0].clone()
        };
        let mut all = measurements.to_vec();
        all.insert(0, with_interim);
        let again = summarise(&["threads".into(), "tokio".into()], &["floor"], &all, None);
        assert_eq!(
            again[0].wall_seconds, 2.2,
            "runs with --interim have rows of their own"
        );
        assert_eq!(again[0].identical_to_threads, Some(true));
    }
}
