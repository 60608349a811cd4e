//! `steno transcribe`: files or stdin through a pipeline to text, JSON Lines or subtitles.
//!
//! Several inputs run one after the other, except on `--backend rayon`, where their chunks
//! are transcribed in parallel; either way each input's output is published in input order.
//! With several inputs, `-o` and `--report` name a directory: see the `targets` module.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use steno_core::{
    Backend, CancelToken, ChunkerConfig, DEFAULT_THREADS_PER_STATE, DecodingOptions, FileSource,
    Format, Pipeline, RawPcmSource, RunOptions, RunReport, Source, TranscriberFactory, VadKind,
    WhisperModel, is_audio_container,
};

use crate::cli::{BackendName, DecodingArgs, FormatName, PipelineArgs, TranscribeArgs, VadName};
use crate::interrupt;
use crate::live_line::LiveLine;
use crate::model;
use crate::output::{Output, ReportFile};
use crate::progress::ProgressDisplay;
use crate::targets::{Destination, create_target_dirs, targets};
use crate::tracks;

pub(crate) fn run(args: &TranscribeArgs) -> anyhow::Result<()> {
    check_backend_options(args)?;
    if args.raw && !args.inputs.iter().any(|input| input == Path::new("-")) {
        bail!("--raw describes stdin: give `-` as an input (files are always decoded)");
    }
    let chunker = chunker_config(&args.pipeline, args.realtime)?;
    if !args.sources.is_empty() {
        return tracks::run(args, &chunker);
    }
    let targets = targets(args)?;
    // Every input is checked before the model loads, so bad input fails fast and first.
    let sources = args
        .inputs
        .iter()
        .map(|input| open_source(input, args))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let model_path = model::resolve(args.pipeline.decoding.model.as_deref())?;
    let sizing = Sizing::of(args);
    create_target_dirs(args)?;
    let format = format(args.pipeline.format);
    // Every destination is checked (its temporary file created) before any work: an
    // unwritable -o or --report fails now, not after the run.
    let parallel = args.pipeline.backend == BackendName::Rayon && sources.len() > 1;
    let destinations = targets
        .iter()
        .enumerate()
        .map(|(index, target)| {
            let held = parallel && index > 0;
            Destination::create(target, format, args.pipeline.line_limits(), held)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stop = CancelToken::new();
    interrupt::cancel_on_signal(stop.clone())?;
    if parallel {
        let model = Arc::new(load_model(args, &sizing, &model_path)?);
        return transcribe_in_parallel(
            args,
            sources,
            destinations,
            &chunker,
            model,
            &sizing,
            &stop,
        );
    }
    let backend = backend(args, &sizing, &model_path)?;
    let transcriber = run_transcriber(args, &sizing, &model_path)?;
    for (source, destination) in sources.into_iter().zip(destinations) {
        let (output, sink, report) = destination.into_parts();
        let options = run_options(args, source.as_ref(), &stop);
        let live_line = live_line(args, format, &output);
        // The live line shows how far the run is; a progress bar would fight it for the line.
        let progress = ProgressDisplay::start(
            options.progress.clone(),
            source
                .len_hint()
                .filter(|_| source.name() != "-" && live_line.is_none()),
            source.name(),
        );
        let sink = match live_line {
            Some(line) => Box::new(line),
            None if matches!(output, Output::Stdout) => progress.around_stdout(sink),
            None => sink,
        };
        let pipeline = Pipeline::builder(source, transcriber.clone(), sink)
            .chunker(chunker.clone())
            .options(options)
            .build()?;
        let run = backend.run(pipeline);
        drop(progress);
        publish(output, &run?, report)?;
    }
    Ok(())
}

/// Commits a successful input's output, writes its report, and warns about dropped audio.
pub(crate) fn publish(
    output: Output,
    report: &RunReport,
    report_file: Option<ReportFile>,
) -> anyhow::Result<()> {
    output.commit()?;
    if let Some(file) = report_file {
        file.write(report)?;
    }
    if report.dropped_samples > 0 {
        tracing::warn!(
            "{} samples ({:.2} s) were dropped because the pipeline fell behind",
            report.dropped_samples,
            report.dropped_samples as f64 / f64::from(steno_core::SAMPLE_RATE)
        );
    }
    Ok(())
}

/// The run options of one input: real-time pacing with early start (unless
/// `--no-early-start`), or packing. A whole file read at full speed is packed unless
/// `--no-pack`; not stdin (often a live capture: text would come a window at a time), nor
/// `--vad fixed`, the 5 s windows of the naive baseline it stands for.
/// Each run stops with `stop` (a signal) or on its own (an earlier input failed).
fn run_options(args: &TranscribeArgs, source: &dyn Source, stop: &CancelToken) -> RunOptions {
    let mut options = paced_options(args, stop);
    options.pack = !args.realtime
        && !args.no_pack
        && args.pipeline.decoding.vad != VadName::Fixed
        && source.name() != "-";
    options.interim_step = interim_step(&args.pipeline);
    options
}

/// What every run of `transcribe` sets: `--realtime` pacing with early start (unless
/// `--no-early-start`), stopped with `stop`.
pub(crate) fn paced_options(args: &TranscribeArgs, stop: &CancelToken) -> RunOptions {
    let mut options = RunOptions::default();
    options.cancel = stop.child();
    options.realtime = args.realtime;
    options.early_start = args.realtime && !args.pipeline.decoding.no_early_start;
    options
}

/// The interim step `--interim` asks for, if it does.
pub(crate) fn interim_step(args: &PipelineArgs) -> Option<Duration> {
    args.interim.then(|| step_of(&args.decoding))
}

/// The step between partial hypotheses, when they are asked for: `--interim-step-ms`, or the
/// library's default.
pub(crate) fn step_of(decoding: &DecodingArgs) -> Duration {
    decoding
        .interim_step_ms
        .map_or(RunOptions::DEFAULT_INTERIM_STEP, Duration::from_millis)
}

/// The terminal line partial hypotheses are shown on: with `--interim`, text on stdout, and
/// stdout a terminal. Elsewhere text holds finals only.
pub(crate) fn live_line(
    args: &TranscribeArgs,
    format: Format,
    output: &Output,
) -> Option<LiveLine<std::io::Stdout>> {
    let wanted =
        args.pipeline.interim && format == Format::Text && matches!(output, Output::Stdout);
    wanted.then(LiveLine::on_stdout).flatten()
}

/// Several inputs on the rayon backend: their chunks share the pool, and each output is
/// published as soon as it and every earlier input are done. Outputs for stdout after the
/// first are held in memory until their turn. The first failure ends the command: the
/// outputs of the inputs before it are published, later ones are not (as with the other
/// backends, which stop there).
fn transcribe_in_parallel(
    args: &TranscribeArgs,
    sources: Vec<Box<dyn Source>>,
    destinations: Vec<Destination>,
    chunker: &ChunkerConfig,
    model: Arc<WhisperModel>,
    sizing: &Sizing,
    stop: &CancelToken,
) -> anyhow::Result<()> {
    let backend = steno_rayon::RayonBackend::new().with_pool_size(sizing.parallel);
    let mut outputs = Vec::with_capacity(sources.len());
    let mut cancels = Vec::with_capacity(sources.len());
    let mut pipelines = Vec::with_capacity(sources.len());
    for (source, destination) in sources.into_iter().zip(destinations) {
        let (output, sink, report) = destination.into_parts();
        let options = run_options(args, source.as_ref(), stop);
        cancels.push(options.cancel.clone());
        outputs.push(Some((output, report)));
        pipelines.push(
            Pipeline::builder(source, model.clone(), sink)
                .chunker(chunker.clone())
                .options(options)
                .build()?,
        );
    }
    let mut failure = None;
    backend.run_all_with(pipelines, |index, report| {
        if failure.is_some() {
            // An earlier input failed: this output is discarded with its temporary file.
            return;
        }
        let published = report.map_err(anyhow::Error::from).and_then(|report| {
            let (output, report_file) = outputs[index]
                .take()
                .context("an output was published twice")?;
            publish(output, &report, report_file)
        });
        if let Err(error) = published {
            failure = Some(error);
            for cancel in &cancels[index + 1..] {
                cancel.cancel();
            }
        }
    });
    failure.map_or(Ok(()), Err)
}

/// How many transcribers run at once and how many threads each uses.
pub(crate) struct Sizing {
    /// Threads per Whisper state.
    pub(crate) threads: usize,
    /// Pool threads (rayon) or worker processes (process).
    pub(crate) parallel: usize,
}

impl Sizing {
    /// `--threads` if given, else `max(1, cores / N)` when `--workers N` or `--pool N` is
    /// given, else 1 for an offline run (except on NATS, whose fleet has threads of its own)
    /// and 2 otherwise; and `N` if given, else `max(1, cores / threads)`: so by default
    /// states x threads fills the cores without oversubscribing them.
    ///
    /// Offline, one 1-thread state per core: a file's windows are independent, and two
    /// 1-thread states were 11-24 % faster than one 2-thread state on two cores (ggml's threads
    /// spin while they wait for each other; BENCHMARKS.md). In real time one utterance at a
    /// time is decoded, and two threads finish it sooner.
    pub(crate) fn of(args: &TranscribeArgs) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let asked = args
            .pipeline
            .workers
            .or(args.pipeline.pool)
            .map(usize::from);
        let threads = match (args.pipeline.decoding.threads, asked) {
            (Some(threads), _) => usize::from(threads),
            (None, Some(n)) => (cores / n.max(1)).max(1),
            (None, None) if args.pipeline.backend != BackendName::Nats && !args.realtime => 1,
            (None, None) => DEFAULT_THREADS_PER_STATE,
        };
        Sizing {
            threads,
            parallel: asked.unwrap_or((cores / threads).max(1)),
        }
    }
}

pub(crate) fn check_backend_options(args: &TranscribeArgs) -> anyhow::Result<()> {
    if args.pipeline.workers.is_some() && args.pipeline.backend != BackendName::Process {
        bail!("--workers is an option of --backend process (the rayon pool is --pool)");
    }
    if args.worker_program.is_some() && args.pipeline.backend != BackendName::Process {
        bail!("--worker-program is an option of --backend process");
    }
    if args.pipeline.pool.is_some() && args.pipeline.backend != BackendName::Rayon {
        bail!("--pool is an option of --backend rayon (worker processes are --workers)");
    }
    if args.pipeline.nats.in_flight.is_some() && args.pipeline.backend != BackendName::Nats {
        bail!("--in-flight is an option of --backend nats");
    }
    if args.pipeline.backend == BackendName::Nats && args.pipeline.nats.nats.is_none() {
        bail!("--backend nats needs the NATS server: --nats nats://HOST:PORT (or $STENO_NATS_URL)");
    }
    Ok(())
}

/// The worker-process backend: each worker is this program's `steno worker`, loading the
/// model itself.
fn process_backend(
    args: &TranscribeArgs,
    sizing: &Sizing,
    model_path: &Path,
) -> anyhow::Result<steno_process::ProcessBackend> {
    let exe = match &args.worker_program {
        Some(program) => program.clone(),
        None => std::env::current_exe()
            .context("cannot find the steno executable to start worker processes")?,
    };
    let command = steno_process::WorkerCommand::new(exe).arg("worker");
    let command = match args.simulate_cost_ms {
        Some(ms) => command.args(["--scripted", "--cost-ms-per-s", &ms.to_string()]),
        None => command
            .arg("--model")
            .arg(model_path)
            .args(["--threads".to_owned(), sizing.threads.to_string()])
            .args(args.pipeline.decoding.whisper.options().worker_args()),
    };
    Ok(steno_process::ProcessBackend::new(command).with_workers(sizing.parallel))
}

/// The NATS backend: chunks go to the workers behind the broker (`steno worker --nats URL`).
fn nats_backend(args: &TranscribeArgs, sizing: &Sizing) -> anyhow::Result<steno_nats::NatsBackend> {
    let nats = &args.pipeline.nats;
    let url = nats
        .nats
        .as_deref()
        .context("--backend nats needs --nats URL")?;
    let in_flight = nats.in_flight.map_or(sizing.parallel, usize::from);
    Ok(
        steno_nats::NatsBackend::new(steno_nats::NatsTarget::from_env(url)?)
            .with_stream(&nats.nats_stream)?
            .with_in_flight(in_flight)
            .with_patience(Duration::from_secs(nats.nats_patience_secs)),
    )
}

/// The model of a run, loaded here, with the run's decoding options.
pub(crate) fn load_model(
    args: &TranscribeArgs,
    sizing: &Sizing,
    model_path: &Path,
) -> anyhow::Result<WhisperModel> {
    decoding_model(&args.pipeline.decoding, sizing.threads, model_path)
}

/// The model at `model_path` with `threads` per state and `decoding`'s options (beams,
/// prompt, language).
pub(crate) fn decoding_model(
    decoding: &DecodingArgs,
    threads: usize,
    model_path: &Path,
) -> anyhow::Result<WhisperModel> {
    Ok(WhisperModel::load(model_path, threads)?.with_options(decoding.whisper.options())?)
}

/// The transcriber of a run: the model, or with `--backend process` or `nats` only its name
/// (with the decoding options), which the workers load and must announce: its path for
/// process workers, its contents (`model::fleet_name`) for a NATS fleet.
pub(crate) fn model_transcriber(
    args: &TranscribeArgs,
    sizing: &Sizing,
    model_path: &Path,
) -> anyhow::Result<Arc<dyn TranscriberFactory>> {
    let decoding = &args.pipeline.decoding;
    let options = decoding.whisper.options();
    if args.pipeline.backend == BackendName::Nats {
        let name = model::fleet_name(model_path, &options)?;
        return Ok(Arc::new(steno_process::WorkerModel::new(
            name,
            sizing.threads,
        )));
    }
    if args.pipeline.backend == BackendName::Process {
        let name = WhisperModel::name_for(model_path, &options);
        return Ok(Arc::new(steno_process::WorkerModel::new(
            name,
            sizing.threads,
        )));
    }
    Ok(Arc::new(load_model(args, sizing, model_path)?))
}

/// The transcriber of a `transcribe` run: the scripted stand-in with `--simulate-cost-ms`,
/// else the model ([`model_transcriber`]).
pub(crate) fn run_transcriber(
    args: &TranscribeArgs,
    sizing: &Sizing,
    model_path: &Path,
) -> anyhow::Result<Arc<dyn TranscriberFactory>> {
    match args.simulate_cost_ms {
        Some(ms) => Ok(Arc::new(simulated(ms))),
        None => model_transcriber(args, sizing, model_path),
    }
}

/// The scripted stand-in for Whisper, costing `ms` per second of audio.
pub(crate) fn simulated(ms: u64) -> steno_core::ScriptedTranscriber {
    steno_core::ScriptedTranscriber::new().with_cost_per_audio_second(Duration::from_millis(ms))
}

pub(crate) fn backend(
    args: &TranscribeArgs,
    sizing: &Sizing,
    model_path: &Path,
) -> anyhow::Result<Box<dyn Backend>> {
    match args.pipeline.backend {
        BackendName::Threads => Ok(Box::new(steno_threads::ThreadsBackend::new())),
        BackendName::Tokio => Ok(Box::new(steno_tokio::TokioBackend::new())),
        BackendName::AsyncStd => Ok(Box::new(steno_async_std::AsyncStdBackend::new())),
        BackendName::Smol => Ok(Box::new(steno_smol::SmolBackend::new())),
        BackendName::Rayon => Ok(Box::new(
            steno_rayon::RayonBackend::new().with_pool_size(sizing.parallel),
        )),
        BackendName::Process => Ok(Box::new(process_backend(args, sizing, model_path)?)),
        BackendName::Nats => Ok(Box::new(nats_backend(args, sizing)?)),
    }
}

/// How speech is cut: `realtime` when audio arrives as it happens (then the trailing padding
/// is shorter, see `REALTIME_TRAILING_PADDING`).
pub(crate) fn chunker_config(args: &PipelineArgs, realtime: bool) -> anyhow::Result<ChunkerConfig> {
    if args.interim && args.decoding.vad == VadName::Fixed {
        bail!(
            "--interim shows the utterance being spoken, and --vad fixed finds no utterances: \
             use --vad earshot or energy"
        );
    }
    if args.interim && realtime && args.decoding.whisper.language == DecodingOptions::AUTO {
        bail!(
            "--interim in real time with --language auto: every partial would need a language \
             detection of its own (about 2 s for base on 2 cores), so none would arrive in time; \
             give the language (--language de)"
        );
    }
    if args.decoding.interim_step_ms.is_some() && !args.interim {
        bail!("--interim-step-ms is the step of --interim: add --interim");
    }
    decoding_chunker(&args.decoding, realtime)
}

/// The chunker `decoding` describes.
pub(crate) fn decoding_chunker(
    decoding: &DecodingArgs,
    realtime: bool,
) -> anyhow::Result<ChunkerConfig> {
    let vad = match decoding.vad {
        VadName::Energy => VadKind::Energy,
        VadName::Earshot => VadKind::Earshot,
        VadName::Fixed => VadKind::Fixed,
    };
    if !(decoding.max_chunk.is_finite() && decoding.max_chunk > 0.0) {
        bail!(
            "--max-chunk {}: must be a positive number of seconds",
            decoding.max_chunk
        );
    }
    let mut config = ChunkerConfig::default()
        .with_vad(vad)
        .with_min_silence(Duration::from_millis(decoding.min_silence_ms))
        .with_max_chunk(Duration::from_secs_f64(decoding.max_chunk));
    // Audio that arrives in real time waits for its trailing padding: less of it is latency
    // saved (see `REALTIME_TRAILING_PADDING`).
    let trailing_padding = match decoding.trailing_padding_ms {
        Some(ms) => Duration::from_millis(ms),
        None if realtime => ChunkerConfig::REALTIME_TRAILING_PADDING,
        None => config.trailing_padding,
    };
    config = config.with_trailing_padding(trailing_padding);
    config.validate()?;
    Ok(config)
}

pub(crate) fn format(name: FormatName) -> Format {
    match name {
        FormatName::Text => Format::Text,
        FormatName::Jsonl => Format::Jsonl,
        FormatName::Srt => Format::Srt,
        FormatName::Vtt => Format::Vtt,
    }
}

/// A file, or stdin for `-`: decoded when it starts like an audio container (arecord and
/// most tools write WAV), raw PCM otherwise or with `--raw`.
fn open_source(input: &Path, args: &TranscribeArgs) -> anyhow::Result<Box<dyn Source>> {
    if input != Path::new("-") {
        return Ok(Box::new(FileSource::open(input)?));
    }
    let mut stdin = std::io::stdin();
    if args.raw {
        let source =
            RawPcmSource::new("-", stdin).with_format(args.rate, usize::from(args.channels))?;
        return Ok(Box::new(source));
    }
    // Enough bytes to recognise any container; they go back in front of the rest.
    let mut prefix = Vec::with_capacity(12);
    (&mut stdin)
        .take(12)
        .read_to_end(&mut prefix)
        .context("-: cannot read stdin")?;
    let stream = std::io::Cursor::new(prefix.clone()).chain(stdin);
    if is_audio_container(&prefix) {
        Ok(Box::new(FileSource::from_stream("-", stream)?))
    } else {
        Ok(Box::new(RawPcmSource::new("-", stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::transcribe_args as args;

    #[test]
    fn every_backend_name_is_the_name_its_backend_reports() {
        use clap::ValueEnum;
        for name in BackendName::value_variants() {
            let nats = "nats://127.0.0.1:4222";
            let args = args(&["--backend", &name.name(), "--nats", nats, "in.wav"]);
            let backend = backend(&args, &Sizing::of(&args), Path::new("model.bin"))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(backend.name(), name.name());
        }
    }

    #[test]
    fn states_times_threads_fit_the_cores_by_default() {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let sizing = Sizing::of(&args(&["--backend", "process", "--realtime", "a.wav"]));
        assert_eq!((sizing.threads, sizing.parallel), (2, (cores / 2).max(1)));
        let sizing = Sizing::of(&args(&["--backend", "process", "--workers", "2", "a.wav"]));
        assert_eq!((sizing.threads, sizing.parallel), ((cores / 2).max(1), 2));
        let sizing = Sizing::of(&args(&["--backend", "rayon", "--threads", "1", "a.wav"]));
        assert_eq!((sizing.threads, sizing.parallel), (1, cores));
        // Offline: one 1-thread state per core; in real time, 2-thread states.
        for backend in ["threads", "tokio", "rayon", "process"] {
            let sizing = Sizing::of(&args(&["--backend", backend, "a.wav"]));
            assert_eq!((sizing.threads, sizing.parallel), (1, cores), "{backend}");
            let sizing = Sizing::of(&args(&["--backend", backend, "--realtime", "a.wav"]));
            assert_eq!(
                (sizing.threads, sizing.parallel),
                (2, (cores / 2).max(1)),
                "{backend}"
            );
        }
        // The NATS fleet's workers have their own threads: in flight as in real time.
        let nats = "nats://127.0.0.1:4222";
        let sizing = Sizing::of(&args(&["--backend", "nats", "--nats", nats, "a.wav"]));
        assert_eq!((sizing.threads, sizing.parallel), (2, (cores / 2).max(1)));
        let sizing = Sizing::of(&args(&[
            "--backend",
            "rayon",
            "--pool",
            "3",
            "--threads",
            "2",
            "a.wav",
        ]));
        assert_eq!((sizing.threads, sizing.parallel), (2, 3));
    }

    #[test]
    fn workers_and_pool_belong_to_their_backends() {
        let err = check_backend_options(&args(&["--workers", "2", "a.wav"]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("--workers is an option of --backend process"),
            "{err}"
        );
        let err = check_backend_options(&args(&["--backend", "process", "--pool", "2", "a.wav"]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("--pool is an option of --backend rayon"),
            "{err}"
        );
        assert!(check_backend_options(&args(&["--backend", "rayon", "--pool", "2", "a"])).is_ok());
    }

    #[test]
    fn nats_options_belong_to_the_nats_backend() {
        let problem = |argv: &[&str]| {
            check_backend_options(&args(argv))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(problem(&["--in-flight", "4", "a.wav"]).contains("--in-flight is an option"));
        // Unless the environment names the server, --backend nats needs --nats.
        if std::env::var_os("STENO_NATS_URL").is_none() {
            assert!(problem(&["--backend", "nats", "a.wav"]).contains("needs the NATS server"));
        }
        let url = "nats://127.0.0.1:4222";
        assert_eq!(problem(&["--backend", "nats", "--nats", url, "a.wav"]), "");
    }
}
