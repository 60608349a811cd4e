//! The pipeline an embedder builds and a backend runs: where audio comes from, how it is cut,
//! what transcribes it and where text goes, with the run's options. Its cancel token and its
//! progress are in `control.rs`; the stages a backend schedules in [`crate::stage`].

use std::sync::Arc;
use std::time::Duration;

use crate::stage::{
    ChunkLane, ChunkStage, Emitter, MAX_MERGE_WAIT, PreparedRun, RunControl, SourceCounters,
    SourceLane, SourceStage,
};
use crate::{
    CancelToken, ChunkerConfig, Error, Progress, Result, RunReport, SAMPLE_RATE, Sink, Source,
    TranscriberFactory,
};

/// Runs a [`Pipeline`]: the one thing every scheduling backend implements.
pub trait Backend: Send + Sync {
    /// The backend's name (`threads`, `tokio`, ...), as used on the command line.
    fn name(&self) -> &'static str;

    /// Runs the pipeline to the end of its input and reports on the run.
    ///
    /// Segments reach the sink in chunk order. On success the sink's `finish` has been
    /// called; on error it has not, so the sink can tell a complete output from a partial one.
    ///
    /// # Errors
    /// The first error of any stage ([`Error::Input`], [`Error::Transcribe`],
    /// [`Error::Sink`], ...), [`Error::Cancelled`] when the run was cancelled, or
    /// [`Error::Unsupported`] when the backend cannot run this pipeline.
    fn run(&self, pipeline: Pipeline) -> Result<RunReport>;
}

/// Everything a run needs: where audio comes from, how it is cut, what transcribes it and
/// where text goes. Build one with [`Pipeline::builder`] (or [`Pipeline::new`] for the
/// defaults) and hand it to a [`Backend`].
///
/// ```
/// use std::sync::Arc;
/// use steno_core::{ChunkerConfig, CollectingSink, Pipeline, ScriptedTranscriber, VadKind, VecSource};
///
/// let builder = Pipeline::builder(
///     VecSource::new(vec![0.0; 16_000]),
///     Arc::new(ScriptedTranscriber::new()),
///     CollectingSink::new(),
/// )
/// .chunker(ChunkerConfig::default().with_vad(VadKind::Energy))
/// .realtime(true);
/// // Take the cancel handle before the pipeline moves into a backend.
/// let cancel = builder.cancel_token();
/// let pipeline = builder.build()?;
/// assert!(pipeline.options().realtime);
/// cancel.cancel();
/// assert!(pipeline.cancel_token().is_cancelled());
/// # Ok::<(), steno_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Pipeline {
    /// Validated: a `Pipeline` only comes from `new` (defaults) or from validated parts.
    parts: PipelineParts,
}

impl Pipeline {
    /// A pipeline with default chunking and options: the same as
    /// `Pipeline::builder(source, transcriber, sink).build()`, which cannot fail on defaults.
    pub fn new(
        source: impl Source + 'static,
        transcriber: Arc<dyn TranscriberFactory>,
        sink: impl Sink + 'static,
    ) -> Self {
        Pipeline {
            parts: Self::builder(source, transcriber, sink).parts,
        }
    }

    /// Starts building a pipeline from its three parts; chunking and run options start at
    /// their defaults.
    pub fn builder(
        source: impl Source + 'static,
        transcriber: Arc<dyn TranscriberFactory>,
        sink: impl Sink + 'static,
    ) -> PipelineBuilder {
        PipelineBuilder {
            parts: PipelineParts {
                source: Box::new(source),
                label: None,
                more_sources: Vec::new(),
                chunker: ChunkerConfig::default(),
                transcriber,
                sink: Box::new(sink),
                options: RunOptions::default(),
            },
        }
    }

    /// How the audio is cut into utterances.
    pub fn chunker(&self) -> &ChunkerConfig {
        &self.parts.chunker
    }

    /// Pacing, queue sizes, cancellation and progress.
    pub fn options(&self) -> &RunOptions {
        &self.parts.options
    }

    /// What makes the run's transcribers.
    pub fn transcriber(&self) -> &Arc<dyn TranscriberFactory> {
        &self.parts.transcriber
    }

    /// The input's name, as errors and reports give it.
    pub fn source_name(&self) -> &str {
        self.parts.source.name()
    }

    /// A handle that cancels this run from anywhere; the run ends with [`Error::Cancelled`].
    pub fn cancel_token(&self) -> CancelToken {
        self.parts.options.cancel.clone()
    }

    /// Takes the pipeline apart, for a backend (or a test double) that needs its stage objects
    /// directly; [`Pipeline::from_parts`] puts it back together.
    pub fn into_parts(self) -> PipelineParts {
        self.parts
    }

    /// A pipeline from its parts, validated as [`PipelineBuilder::build`] validates.
    ///
    /// # Errors
    /// As [`PipelineBuilder::build`].
    pub fn from_parts(parts: PipelineParts) -> Result<Self> {
        parts.validate()?;
        Ok(Pipeline { parts })
    }

    /// Starts the run's clock and builds its stages: the ring between source and chunker, the
    /// chunker, the emitter over the sink. What every backend does first.
    ///
    /// # Errors
    /// [`Error::Config`] when the chunker's options are invalid.
    pub fn prepare(self) -> Result<PreparedRun> {
        let start = crate::stage::RunStart::now();
        let echo_near = self
            .parts
            .options
            .echo_guard
            .as_deref()
            .and_then(|near| self.parts.echo_source(near));
        let PipelineParts {
            source,
            label,
            more_sources,
            chunker,
            transcriber,
            sink,
            options,
        } = self.parts;
        let control = RunControl::new(&options);
        let stage_options = control.options(&options);
        // Labelled sources are counted and reported one by one (validated: with several
        // sources, every one has a label).
        let sources: Vec<_> = std::iter::once((label, source))
            .chain(more_sources.into_iter().map(|(l, s)| (Some(l), s)))
            .collect();
        let counters: Vec<Arc<SourceCounters>> = sources
            .iter()
            .map_while(|(label, _)| label.clone())
            .map(|label| Arc::new(SourceCounters::new(label)))
            .collect();
        // A capture device is real time without being paced: partials go as in real time.
        let live = options.realtime || sources.iter().any(|(_, source)| source.is_live());
        let (mut source_lanes, mut chunk_lanes) = (Vec::new(), Vec::new());
        for (_, source) in sources {
            let (writer, reader) = crate::ring(options.ring_capacity);
            let mut lane = ChunkLane::new(reader, &chunker, &stage_options, start.at)?;
            if live {
                lane = lane.with_overtaking();
            }
            chunk_lanes.push(lane);
            source_lanes.push(SourceLane::new(source, writer, &stage_options, start.at));
        }
        let mut chunker = ChunkStage::new(
            chunk_lanes,
            counters.clone(),
            live.then_some(MAX_MERGE_WAIT),
        );
        if let Some(near) = echo_near {
            chunker = chunker.with_lag(near, crate::echo::lag_samples());
        }
        let source = SourceStage::new(source_lanes, counters.clone(), options.progress.clone());
        let emitter = Emitter::new(sink, start.at)
            .with_progress(options.progress.clone())
            .with_realtime_partials(live)
            .with_sources(counters)
            .with_echo_guard(echo_near);
        Ok(PreparedRun {
            start,
            control,
            source,
            chunker,
            transcriber,
            emitter,
            options,
        })
    }
}

/// A pipeline taken apart ([`Pipeline::into_parts`]): its stage objects and options, for a
/// backend or test double that rearranges them. Most code never needs this.
#[non_exhaustive]
pub struct PipelineParts {
    /// The audio input (the first, when there are several).
    pub source: Box<dyn Source>,
    /// The first source's label, written with each of its segments.
    pub label: Option<String>,
    /// The other sources, each with its label ([`PipelineBuilder::source`]).
    pub more_sources: Vec<(String, Box<dyn Source>)>,
    /// How the audio is cut into utterances.
    pub chunker: ChunkerConfig,
    /// Makes one transcriber per worker.
    pub transcriber: Arc<dyn TranscriberFactory>,
    /// Where segments go.
    pub sink: Box<dyn Sink>,
    /// Pacing, queue sizes, cancellation and progress.
    pub options: RunOptions,
}

impl std::fmt::Debug for PipelineParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineParts")
            .field("source", &self.source.name())
            .field("label", &self.label)
            .field(
                "more_sources",
                &self
                    .more_sources
                    .iter()
                    .map(|(label, source)| (label, source.name()))
                    .collect::<Vec<_>>(),
            )
            .field("chunker", &self.chunker)
            .field("transcriber", &self.transcriber.name())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PipelineParts {
    fn validate(&self) -> Result<()> {
        if let Some(step) = self.options.interim_step
            && step < RunOptions::MIN_INTERIM_STEP
        {
            return Err(Error::Config(format!(
                "interim step {step:?} is under the shortest, {:?}",
                RunOptions::MIN_INTERIM_STEP
            )));
        }
        if !self.more_sources.is_empty() {
            self.validate_sources()?;
        }
        if let Some(near) = &self.options.echo_guard
            && self.echo_source(near).is_none()
        {
            return Err(Error::Config(if self.more_sources.is_empty() {
                format!(
                    "the echo guard compares {near:?} with other sources, and there are none: \
                     add the source it hears"
                )
            } else {
                format!("the echo guard names {near:?}, and no source has that label")
            }));
        }
        if self.options.ring_capacity == 0 {
            return Err(Error::Config(
                "the ring between source and chunker must hold at least one sample".into(),
            ));
        }
        // The chunker checks its own options (durations, thresholds, the detector).
        crate::Chunker::new(&self.chunker).map(drop)
    }

    /// The number of the source labelled `near`, when there are other sources to compare it
    /// with.
    fn echo_source(&self, near: &str) -> Option<usize> {
        if self.more_sources.is_empty() {
            return None;
        }
        std::iter::once(self.label.as_deref())
            .chain(
                self.more_sources
                    .iter()
                    .map(|(label, _)| Some(label.as_str())),
            )
            .position(|label| label == Some(near))
    }

    /// Several sources: each labelled once, and options that work per utterance only.
    fn validate_sources(&self) -> Result<()> {
        let Some(first) = &self.label else {
            return Err(Error::Config(format!(
                "with several sources each needs a label, and the first ({}) has none",
                self.source.name()
            )));
        };
        let mut seen = std::collections::HashSet::new();
        for label in std::iter::once(first).chain(self.more_sources.iter().map(|(l, _)| l)) {
            if label.trim().is_empty() {
                return Err(Error::Config("a source's label is empty".into()));
            }
            if !seen.insert(label) {
                return Err(Error::Config(format!(
                    "two sources are labelled {label:?}: labels tell their text apart"
                )));
            }
        }
        if self.options.interim_step.is_some() {
            return Err(Error::Config(
                "interim results are not supported with several sources yet".into(),
            ));
        }
        if self.options.pack {
            return Err(Error::Config(
                "packing decodes one source's consecutive utterances together; with several \
                 sources, turn it off"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Builds a [`Pipeline`] ([`Pipeline::builder`]): each method sets one option and returns the
/// builder, and [`build`](Self::build) checks them all.
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct PipelineBuilder {
    parts: PipelineParts,
}

impl PipelineBuilder {
    /// How the audio is cut into utterances (voice detector, silence, padding, lengths).
    pub fn chunker(mut self, config: ChunkerConfig) -> Self {
        self.parts.chunker = config;
        self
    }

    /// Every run option at once, replacing those set so far (a caller that keeps its options
    /// in a [`RunOptions`]).
    pub fn options(mut self, options: RunOptions) -> Self {
        self.parts.options = options;
        self
    }

    /// Feed the input at real-time speed, as a microphone would ([`RunOptions::realtime`]).
    pub fn realtime(mut self, on: bool) -> Self {
        self.parts.options.realtime = on;
        self
    }

    /// Samples the ring between the source and the chunker holds
    /// ([`RunOptions::ring_capacity`]).
    pub fn ring_capacity(mut self, samples: usize) -> Self {
        self.parts.options.ring_capacity = samples;
        self
    }

    /// Chunks that may wait for a transcriber at once ([`RunOptions::queue_capacity`]).
    pub fn queue_capacity(mut self, chunks: usize) -> Self {
        self.parts.options.queue_capacity = chunks;
        self
    }

    /// Start decoding an utterance before its hangover ends ([`RunOptions::early_start`]).
    pub fn early_start(mut self, on: bool) -> Self {
        self.parts.options.early_start = on;
        self
    }

    /// Write partial hypotheses of the utterance being spoken every `step` of its audio
    /// ([`RunOptions::interim_step`]); `None` (the default) writes final segments only.
    pub fn interim_step(mut self, step: Option<Duration>) -> Self {
        self.parts.options.interim_step = step;
        self
    }

    /// Labels the first source: its segments carry `label` ([`Segment::source`](crate::Segment::source)),
    /// and the report counts it apart. Needed when there are several sources.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.parts.label = Some(label.into());
        self
    }

    /// Adds another source, labelled `label`: a meeting's microphone and its speakers, or a
    /// call recorder's separate tracks. Each source is cut into utterances on its own (one
    /// speaker's silence never cuts another's utterance), all share the run's transcribers
    /// and sink, and segments are written in order of their end of speech, each with its
    /// source's label. Every source needs a label ([`label`](Self::label) for the first);
    /// interim results and packing are refused with several sources.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use steno_core::{CollectingSink, Pipeline, ScriptedTranscriber, VecSource};
    ///
    /// let sink = CollectingSink::new();
    /// let pipeline = Pipeline::builder(
    ///     VecSource::new(vec![0.0; 16_000]),
    ///     Arc::new(ScriptedTranscriber::new()),
    ///     sink.clone(),
    /// )
    /// .label("mic")
    /// .source("them", VecSource::new(vec![0.0; 16_000]))
    /// .build()?;
    /// # Ok::<(), steno_core::Error>(())
    /// ```
    pub fn source(mut self, label: impl Into<String>, source: impl Source + 'static) -> Self {
        self.parts
            .more_sources
            .push((label.into(), Box::new(source)));
        self
    }

    /// Drops the segments of the source labelled `label` (a microphone) that repeat what
    /// another source said at the same time: its echo of the speakers
    /// ([`RunOptions::echo_guard`], [`crate::echo`]).
    pub fn echo_guard(mut self, label: impl Into<String>) -> Self {
        self.parts.options.echo_guard = Some(label.into());
        self
    }

    /// Decode consecutive utterances together ([`RunOptions::pack`]).
    pub fn pack(mut self, on: bool) -> Self {
        self.parts.options.pack = on;
        self
    }

    /// The handle that cancels the run this builds: take it before the pipeline moves into a
    /// backend.
    pub fn cancel_token(&self) -> CancelToken {
        self.parts.options.cancel.clone()
    }

    /// The counter of samples read by the run this builds, to show progress from another
    /// thread.
    pub fn progress(&self) -> Progress {
        self.parts.options.progress.clone()
    }

    /// The pipeline, once its options are checked.
    ///
    /// # Errors
    /// [`Error::Config`] when an option is out of range: the chunker's (see
    /// [`Chunker::new`](crate::Chunker::new)), or a ring of no samples.
    pub fn build(self) -> Result<Pipeline> {
        Pipeline::from_parts(self.parts)
    }
}

/// How a run is paced, buffered and controlled; [`PipelineBuilder`] sets each option.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// Feed the input at real-time speed, as a microphone would; samples that do not fit in
    /// the ring are then dropped and counted instead of waited for.
    pub realtime: bool,
    /// Ring capacity between the source and the chunker, in samples.
    pub ring_capacity: usize,
    /// Chunks that may wait for a transcriber (and transcripts for the sink) at once.
    pub queue_capacity: usize,
    /// Start transcribing an utterance as soon as the trailing padding after its speech has
    /// arrived, while the rest of the hangover confirms the speaker stopped; if speech resumes
    /// first, the early result is dropped (see [`crate::early`]). Output is the same either
    /// way; text arrives up to the hangover minus that padding (0.2 s by default) sooner. Worth it
    /// when audio arrives in real time (a microphone, `realtime`); off by default because a
    /// file read at full speed rarely gains and may decode some utterances twice.
    pub early_start: bool,
    /// Decode consecutive utterances together, in windows of up to 12 s (see
    /// [`window_parts`](crate::stage::window_parts)): fewer, more accurate Whisper calls when the
    /// whole input is available (a file, not real time). Each utterance is still written as
    /// a segment of its own, but text appears a window at a time, so leave it off for live
    /// input. The text can differ from unpacked decoding: Whisper hears more context.
    pub pack: bool,
    /// Interim results: while an utterance is spoken, decode it every `step` of audio after its
    /// first voiced frame (unless the speaker is silent at that moment) and write each hypothesis as a [`Partial`](crate::Partial) through
    /// [`Sink::partial`], with the prefix later ones keep (see
    /// [`crate::interim`] for the order and the stability contract).
    /// [`DEFAULT_INTERIM_STEP`](Self::DEFAULT_INTERIM_STEP) suits live captions. Final
    /// segments are the same with or without. `None` (the default): finals only.
    pub interim_step: Option<Duration>,
    /// With several sources: the label of the one whose segments are dropped when they repeat
    /// what another source said at the same time (the speakers leaking into a microphone; see
    /// [`crate::echo`]). `None` (the default): every segment is written.
    pub echo_guard: Option<String>,
    /// Stops the run from another thread.
    pub cancel: CancelToken,
    /// Counts samples read, for progress display.
    pub progress: Progress,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            realtime: false,
            ring_capacity: SAMPLE_RATE as usize * 4,
            queue_capacity: 4,
            early_start: false,
            pack: false,
            interim_step: None,
            echo_guard: None,
            cancel: CancelToken::new(),
            progress: Progress::default(),
        }
    }
}

impl RunOptions {
    /// The interim step `--interim` uses: a partial every half second of speech.
    pub const DEFAULT_INTERIM_STEP: Duration = Duration::from_millis(500);

    /// The shortest interim step: below it, partials only queue up behind each other.
    pub const MIN_INTERIM_STEP: Duration = Duration::from_millis(100);

    /// How many chunks a parallel backend with `transcribers` workers may have started but not
    /// yet written: one per worker, plus the queue. Backends hand out this many tokens, take
    /// one before each chunk and get one back per chunk written ([`Emitter::newly_written`]),
    /// so transcripts held for reordering cannot pile up behind a slow chunk.
    pub fn run_ahead(&self, transcribers: usize) -> usize {
        transcribers + self.queue_capacity.max(1)
    }
}
