//! The run report: what a run did and what it cost, as written by `--report FILE`.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::SAMPLE_RATE;

/// Utterance latency percentiles in milliseconds (end of the utterance's audio being
/// available to the text being written).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    #[serde(default)]
    pub p99: f64,
    /// Worst.
    pub max: f64,
}

impl LatencySummary {
    /// Percentiles of `samples` (nearest rank); `None` when there are none, so that a run
    /// with nothing to measure reports `null`, not zeros that look like a measurement.
    pub fn from_samples(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index]
        };
        Some(LatencySummary {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// What a run did and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunReport {
    /// The backend that scheduled the run.
    pub backend: String,
    /// The transcriber (model path, or `scripted`).
    pub model: String,
    /// Seconds of audio read from the input.
    pub audio_seconds: f64,
    /// Wall-clock seconds from start to the last segment written.
    pub wall_seconds: f64,
    /// Real-time factor: wall seconds per second of audio (under 1 is faster than real time).
    pub rtf: f64,
    /// Chunks (utterances) transcribed.
    pub chunks: usize,
    /// Segments written (chunks whose text was not empty).
    pub segments: usize,
    /// Samples lost because the pipeline could not keep up with a real-time input.
    pub dropped_samples: u64,
    /// Utterance latency, from the chunk's last sample (its trailing padding included);
    /// `null` when no segment was written.
    pub latency_ms: Option<LatencySummary>,
    /// From the end of each utterance's speech (its last voiced frame: when the speaker
    /// stopped) to its text being written; `null` when no segment was written. The latency a
    /// listener feels.
    #[serde(default)]
    pub speech_end_latency_ms: Option<LatencySummary>,
    /// The pipeline's own share of each segment's latency: from the chunk being cut to its
    /// text being written, minus the time transcription took (queues, hand-offs,
    /// scheduling). With a transcriber faster than the input, it is the cost of the hand-offs.
    /// `null` when no segment was written.
    #[serde(default)]
    pub overhead_ms: Option<LatencySummary>,
    /// CPU time (user + system) the process spent during the run; the process backend adds
    /// the CPU time its worker processes spent.
    pub cpu_seconds: f64,
    /// Peak resident memory of the process, in bytes; the process backend adds the peak of
    /// each of its worker processes, so the cost of one model per process shows.
    pub peak_rss_bytes: u64,
    /// Whether the input was paced like a microphone.
    pub realtime: bool,
    /// Worker processes that died during the run and were replaced (the process backend);
    /// always 0 for backends that transcribe in-process.
    #[serde(default)]
    pub worker_restarts: u64,
    /// Chunks a message broker delivered to a worker again because the worker that had it
    /// died or was cut off before answering (the NATS backend); 0 for other backends.
    #[serde(default)]
    pub redeliveries: u64,
    /// Chunks decoded a second time with Whisper's full window because the decode with the
    /// window sized to the chunk looked degenerate (see `steno_core::window`).
    #[serde(default)]
    pub full_window_retries: u64,
    /// Chunks whose decode with the window sized to them wrote the transcript over again
    /// and was cut after the first copy instead of decoded again
    /// (`steno_core::window::first_copy`).
    #[serde(default)]
    pub restarts_cut: u64,
    /// Decodes at a raised temperature after a decode looked failed (with temperature
    /// fallback on; see `DecodingOptions::temperature_fallback`).
    #[serde(default)]
    pub temperature_fallbacks: u64,
    /// Chunks whose text came from a decode started before the hangover confirmed their end
    /// (`RunOptions::early_start`).
    #[serde(default)]
    pub early_starts_used: u64,
    /// Early decodes dropped because speech resumed inside the hangover: work spent for
    /// nothing, the price of early start.
    #[serde(default)]
    pub early_starts_discarded: u64,
    /// Windows of several utterances decoded together (`RunOptions::pack`); 0 when every
    /// utterance was decoded alone. `chunks` still counts utterances.
    #[serde(default)]
    pub packed_windows: u64,
    /// Interim results (`RunOptions::interim_step`): from each utterance's first voiced sample
    /// being available to its first partial with words being written; `null` when none was.
    #[serde(default)]
    pub first_partial_ms: Option<LatencySummary>,
    /// Partial hypotheses written.
    #[serde(default)]
    pub partials: u64,
    /// Partial points not written: overtaken by newer audio before they were decoded, or
    /// decoded after their utterance's final text (real time only), or failed.
    #[serde(default)]
    pub partials_skipped: u64,
    /// Utterances that had partials written.
    #[serde(default)]
    pub utterances_with_partials: u64,
    /// Utterances whose final text does not begin with the last stable prefix of their
    /// partials: the stability contract broken.
    #[serde(default)]
    pub stable_prefix_violations: u64,
    /// Words shown in partials and later changed (by a later partial or the final text),
    /// over all utterances; per utterance, divide by `utterances_with_partials`.
    #[serde(default)]
    pub revised_words: u64,
    /// Each labelled source apart, in the order given (empty when the sources have no labels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceReport>,
    /// With several sources: how long final chunks were held so that every source's segments
    /// are written in order of their end of speech.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_wait_ms: Option<LatencySummary>,
    /// With several sources: segments written after a segment whose speech ended later (a
    /// real-time hold that reached its limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments_out_of_order: Option<u64>,
    /// With the echo guard on ([`RunOptions::echo_guard`](crate::RunOptions::echo_guard)): the
    /// near source's segments dropped as echoes of another source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_segments_dropped: Option<u64>,
    /// With `--language auto`: segments written in each detected language (by code).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub languages: BTreeMap<String, u64>,
}

/// What a run did with one of its labelled sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SourceReport {
    /// The source's label.
    pub label: String,
    /// Seconds of audio read from it.
    pub audio_seconds: f64,
    /// Its samples dropped at its ring (or lost by its device).
    pub dropped_samples: u64,
    /// Segments written from it.
    pub segments: usize,
    /// From the end of speech to the text being written, for its segments.
    pub speech_end_latency_ms: Option<LatencySummary>,
}

/// What the stages counted for one labelled source.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SourceTally {
    /// The source's label.
    pub label: String,
    /// Samples read from it.
    pub audio_samples: u64,
    /// Its samples dropped at its ring.
    pub dropped_samples: u64,
    /// Segments written from it.
    pub segments: usize,
    /// Latency from the end of speech of each of its segments, in milliseconds.
    pub speech_end_latencies_ms: Vec<f64>,
}

/// What a backend's stages counted during a run, to be turned into a [`RunReport`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RunTally {
    /// Samples read from the source.
    pub audio_samples: u64,
    /// Chunks transcribed.
    pub chunks: usize,
    /// Segments written.
    pub segments: usize,
    /// Samples dropped at the ring.
    pub dropped_samples: u64,
    /// Latency of every written segment, in milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Latency from the end of speech of every written segment, in milliseconds.
    pub speech_end_latencies_ms: Vec<f64>,
    /// Pipeline overhead of every written segment, in milliseconds.
    pub overheads_ms: Vec<f64>,
    /// Worker processes replaced after they died (the process backend; 0 otherwise).
    pub worker_restarts: u64,
    /// Chunks redelivered by a broker to another worker (the NATS backend; 0 otherwise).
    pub redeliveries: u64,
    /// Full-window retries of the transcriber's loop guard.
    pub full_window_retries: u64,
    /// Restarted transcripts the loop guard cut after the first copy.
    pub restarts_cut: u64,
    /// Temperature-fallback decodes.
    pub temperature_fallbacks: u64,
    /// Final chunks whose text came from an early decode.
    pub early_starts_used: u64,
    /// Early decodes dropped because speech resumed inside the hangover.
    pub early_starts_discarded: u64,
    /// Windows of several utterances decoded.
    pub packed_windows: u64,
    /// From each utterance's first voiced sample to its first partial, in milliseconds.
    pub first_partial_ms: Vec<f64>,
    /// Partial hypotheses written.
    pub partials: u64,
    /// Partial points not written.
    pub partials_skipped: u64,
    /// Utterances that had partials written.
    pub utterances_with_partials: u64,
    /// Utterances whose final text broke the stable prefix.
    pub stable_prefix_violations: u64,
    /// Words shown in partials and changed later.
    pub revised_words: u64,
    /// Each labelled source apart.
    pub sources: Vec<SourceTally>,
    /// With several sources: each final chunk's hold for time order, in milliseconds.
    pub merge_waits_ms: Vec<f64>,
    /// With several sources: segments written after one whose speech ended later.
    pub segments_out_of_order: u64,
    /// With the echo guard on: segments dropped as echoes.
    pub echo_segments_dropped: Option<u64>,
    /// Segments written per detected language.
    pub languages: BTreeMap<String, u64>,
}

/// The moment a run started and the process's resource use then, to report the difference.
#[derive(Debug, Clone, Copy)]
pub struct RunStart {
    /// When the run started; stage timestamps count from here.
    pub at: Instant,
    usage: ProcessUsage,
}

impl RunStart {
    /// Starts the clock.
    pub fn now() -> Self {
        RunStart {
            at: Instant::now(),
            usage: ProcessUsage::now(),
        }
    }

    /// The report of the run that started here and has just finished.
    pub fn report(
        &self,
        backend: &str,
        model: String,
        realtime: bool,
        tally: &RunTally,
    ) -> RunReport {
        let wall_seconds = self.at.elapsed().as_secs_f64();
        let audio_seconds = tally.audio_samples as f64 / f64::from(SAMPLE_RATE);
        let usage = ProcessUsage::now();
        RunReport {
            backend: backend.to_owned(),
            model,
            audio_seconds,
            wall_seconds,
            rtf: if audio_seconds > 0.0 {
                wall_seconds / audio_seconds
            } else {
                0.0
            },
            chunks: tally.chunks,
            segments: tally.segments,
            dropped_samples: tally.dropped_samples,
            latency_ms: LatencySummary::from_samples(&tally.latencies_ms),
            speech_end_latency_ms: LatencySummary::from_samples(&tally.speech_end_latencies_ms),
            overhead_ms: LatencySummary::from_samples(&tally.overheads_ms),
            cpu_seconds: (usage.cpu_seconds - self.usage.cpu_seconds).max(0.0),
            peak_rss_bytes: usage.peak_rss_bytes,
            realtime,
            worker_restarts: tally.worker_restarts,
            redeliveries: tally.redeliveries,
            full_window_retries: tally.full_window_retries,
            restarts_cut: tally.restarts_cut,
            temperature_fallbacks: tally.temperature_fallbacks,
            early_starts_used: tally.early_starts_used,
            early_starts_discarded: tally.early_starts_discarded,
            packed_windows: tally.packed_windows,
            first_partial_ms: LatencySummary::from_samples(&tally.first_partial_ms),
            partials: tally.partials,
            partials_skipped: tally.partials_skipped,
            utterances_with_partials: tally.utterances_with_partials,
            stable_prefix_violations: tally.stable_prefix_violations,
            revised_words: tally.revised_words,
            sources: tally
                .sources
                .iter()
                .map(|source| SourceReport {
                    label: source.label.clone(),
                    audio_seconds: source.audio_samples as f64 / f64::from(SAMPLE_RATE),
                    dropped_samples: source.dropped_samples,
                    segments: source.segments,
                    speech_end_latency_ms: LatencySummary::from_samples(
                        &source.speech_end_latencies_ms,
                    ),
                })
                .collect(),
            merge_wait_ms: LatencySummary::from_samples(&tally.merge_waits_ms),
            segments_out_of_order: (tally.sources.len() > 1).then_some(tally.segments_out_of_order),
            echo_segments_dropped: tally.echo_segments_dropped,
            languages: tally.languages.clone(),
        }
    }
}

/// CPU time and peak memory of this process, read from `/proc` (zero where unavailable).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessUsage {
    /// User + system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Peak resident set size in bytes.
    pub peak_rss_bytes: u64,
}

impl ProcessUsage {
    /// The usage now.
    pub fn now() -> Self {
        ProcessUsage {
            cpu_seconds: read_cpu_seconds().unwrap_or(0.0),
            peak_rss_bytes: read_peak_rss().unwrap_or(0),
        }
    }
}

fn read_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after its closing ')' are fixed.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports in clock ticks of 1/100 s (USER_HZ) on every mainstream architecture.
    Some((utime + stime) / 100.0)
}

fn read_peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let summary = LatencySummary::from_samples(&samples).unwrap();
        assert_eq!(summary.p50, 50.0);
        assert_eq!(summary.p95, 95.0);
        assert_eq!(summary.max, 100.0);
        assert_eq!(
            LatencySummary::from_samples(&[]),
            None,
            "nothing to measure"
        );
    }

    #[test]
    fn reports_without_worker_restarts_still_parse() {
        let mut json = serde_json::to_value(RunStart::now().report(
            "threads",
            "scripted".into(),
            false,
            &RunTally::default(),
        ))
        .unwrap();
        assert_eq!(json["worker_restarts"], 0);
        for nothing_to_measure in ["latency_ms", "speech_end_latency_ms", "overhead_ms"] {
            assert!(
                json[nothing_to_measure].is_null(),
                "{nothing_to_measure}: {json}"
            );
        }
        for newer in [
            "worker_restarts",
            "redeliveries",
            "speech_end_latency_ms",
            "full_window_retries",
            "restarts_cut",
            "early_starts_used",
            "early_starts_discarded",
            "packed_windows",
        ] {
            json.as_object_mut().unwrap().remove(newer);
        }
        let report: RunReport = serde_json::from_value(json).unwrap();
        assert_eq!(report.worker_restarts, 0);
        assert_eq!(report.speech_end_latency_ms, None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_usage_is_read_on_linux() {
        let usage = ProcessUsage::now();
        assert!(usage.peak_rss_bytes > 1_000_000, "{usage:?}");
    }
}
