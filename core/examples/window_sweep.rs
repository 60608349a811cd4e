//! Measures Whisper's window recipe on real speech: every utterance of an input decoded with
//! the full 30 s window, with the pinned trimmed window and no guard, with a tight window (the
//! chunk and nothing more: what loops), and as steno transcribes it (trimmed + guard).
//!
//! ```sh
//! cargo run --release -p steno-core --example window_sweep -- \
//!     models/ggml-tiny.en-q8_0.bin conformance/inputs/short-utterances.flac \
//!     conformance/inputs/short-utterances.txt > sweep.tsv
//! ```
//!
//! `--floors 384,512,768` adds a variant per floor (`floor384`, ...): the pinned recipe with
//! that floor instead of 384, unguarded, to weigh speed against words. `--escalate -0.4,...`
//! adds a variant per threshold (`esc-0.4`, ...): the guarded recipe (every degenerate decode
//! retried with the full window, none cut after its first copy) that also decodes the full
//! window when the trimmed decode's mean token log-probability is under the threshold (Whisper
//! unsure of itself), to weigh words against time.
//!
//! stdout: one TSV line per utterance and variant (chunk, seconds, variant, ms, tokens, mean
//! token log-probability, verdict, text). stderr: per variant, the total decode time, the outputs the guard would
//! flag, and the WER against the reference (one line per utterance) when the chunker found
//! exactly one chunk per reference line. Time it on a quiet machine: ggml's threads spin.

use std::time::Instant;

use steno_core::window::{MIN_INPUT_SAMPLES, WindowPlan, degenerate};
use steno_core::{Chunker, ChunkerConfig, Transcriber, WhisperModel, read_file, word_error_rate};

/// How an utterance is decoded.
#[derive(Clone, Copy)]
enum Variant {
    Full,
    Trimmed,
    Tight,
    Guarded,
    /// The pinned recipe with another floor, unguarded.
    Floor(usize),
    /// The guarded recipe, and the full window when the trimmed decode's mean token
    /// log-probability is under this threshold.
    Escalate(f32),
}

/// The comma-separated values after `flag` in `args` (none without the flag), taken out.
fn take_list(args: &mut Vec<String>, flag: &str) -> Result<Vec<String>, String> {
    let Some(at) = args.iter().position(|a| a == flag) else {
        return Ok(Vec::new());
    };
    let list = args.get(at + 1).ok_or(format!("{flag} needs a list"))?;
    let values = list.split(',').map(str::to_owned).collect();
    args.drain(at..at + 2);
    Ok(values)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, input, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: window_sweep MODEL INPUT [REFERENCE.txt] [--floors N,N,...] \
                    [--escalate T,T,...]"
                .into(),
        );
    };
    let mut variants = vec![
        (Variant::Full, "full".to_owned()),
        (Variant::Trimmed, "trimmed".to_owned()),
        (Variant::Tight, "tight".to_owned()),
        (Variant::Guarded, "guarded".to_owned()),
    ];
    let mut rest = rest.to_vec();
    for floor in take_list(&mut rest, "--floors")? {
        let floor: usize = floor.parse()?;
        variants.push((Variant::Floor(floor), format!("floor{floor}")));
    }
    for threshold in take_list(&mut rest, "--escalate")? {
        let threshold: f32 = threshold.parse()?;
        variants.push((Variant::Escalate(threshold), format!("esc{threshold}")));
    }
    let reference: Option<Vec<String>> = rest
        .first()
        .map(|path| std::fs::read_to_string(path).map(|t| t.lines().map(str::to_owned).collect()))
        .transpose()?;
    let model = WhisperModel::load(model, 2)?;
    let mut transcriber = model.transcriber()?;
    let samples = read_file(input)?;
    let mut chunks = Vec::new();
    let mut chunker = Chunker::new(&ChunkerConfig::default())?;
    chunker.push(&samples, &mut chunks);
    chunker.finish(&mut chunks);
    eprintln!("{} chunks in {input}", chunks.len());

    let mut texts = vec![Vec::new(); variants.len()];
    let mut millis = vec![0.0; variants.len()];
    let mut flagged = vec![0; variants.len()];
    println!("chunk\tseconds\tvariant\tms\ttokens\tavg_logprob\tverdict\ttext");
    for chunk in &chunks {
        // whisper.cpp refuses under 1 s; pad as the transcriber does.
        let mut padded = chunk.samples.clone();
        padded.resize(padded.len().max(MIN_INPUT_SAMPLES), 0.0);
        let pinned = WindowPlan::for_samples(padded.len());
        let tight = WindowPlan {
            audio_ctx: (chunk.seconds() * 50.0).ceil() as usize,
            ..pinned
        };
        for (slot, (variant, name)) in variants.iter().enumerate() {
            let began = Instant::now();
            let (text, tokens, logprob, verdict) = match variant {
                Variant::Guarded => {
                    let done = transcriber.transcribe(chunk)?;
                    let verdict = if done.full_window_retries > 0 {
                        "retried"
                    } else if done.restarts_cut > 0 {
                        "cut"
                    } else {
                        "-"
                    };
                    (done.text, 0, 0.0, verdict.to_owned())
                }
                Variant::Escalate(threshold) => {
                    let trimmed = transcriber.decode(chunk.index, &padded, pinned)?;
                    let unsure = trimmed.avg_logprob < *threshold;
                    if degenerate(&trimmed.text, trimmed.tokens, pinned).is_some() || unsure {
                        let full = transcriber.decode(chunk.index, &padded, WindowPlan::FULL)?;
                        let verdict = if unsure { "unsure" } else { "retried" };
                        (
                            full.text,
                            full.tokens,
                            trimmed.avg_logprob,
                            verdict.to_owned(),
                        )
                    } else {
                        (
                            trimmed.text,
                            trimmed.tokens,
                            trimmed.avg_logprob,
                            "-".to_owned(),
                        )
                    }
                }
                Variant::Full | Variant::Trimmed | Variant::Tight | Variant::Floor(_) => {
                    let plan = match *variant {
                        Variant::Full => WindowPlan::FULL,
                        Variant::Trimmed => pinned,
                        Variant::Floor(floor) => WindowPlan {
                            audio_ctx: pinned.audio_ctx.max(floor).min(1500),
                            ..pinned
                        },
                        _ => tight,
                    };
                    let done = transcriber.decode(chunk.index, &padded, plan)?;
                    // Judged as the guard judges a trimmed decode (its budget included).
                    let verdict = degenerate(&done.text, done.tokens, pinned)
                        .map_or_else(|| "-".to_owned(), |reason| format!("{reason:?}"));
                    (done.text, done.tokens, done.avg_logprob, verdict)
                }
            };
            let ms = began.elapsed().as_secs_f64() * 1000.0;
            millis[slot] += ms;
            if verdict != "-" {
                flagged[slot] += 1;
            }
            println!(
                "{}\t{:.2}\t{name}\t{ms:.0}\t{tokens}\t{logprob:.3}\t{verdict}\t{text}",
                chunk.index,
                chunk.seconds()
            );
            texts[slot].push(text);
        }
    }
    for (slot, (_, name)) in variants.iter().enumerate() {
        let wer = match &reference {
            Some(lines) if lines.len() == chunks.len() => {
                let per: Vec<f64> = lines
                    .iter()
                    .zip(&texts[slot])
                    .map(|(r, h)| word_error_rate(r, h))
                    .collect();
                let all = word_error_rate(&lines.join(" "), &texts[slot].join(" "));
                format!(
                    "WER {:.1} % (mean per utterance {:.1} %)",
                    all * 100.0,
                    per.iter().sum::<f64>() / per.len().max(1) as f64 * 100.0
                )
            }
            Some(lines) => format!(
                "WER {:.1} % (over the whole text: {} chunks for {} lines)",
                word_error_rate(&lines.join(" "), &texts[slot].join(" ")) * 100.0,
                chunks.len(),
                lines.len()
            ),
            None => String::new(),
        };
        eprintln!(
            "{name:>8}: {:7.0} ms, {:2} flagged, {wer}",
            millis[slot], flagged[slot]
        );
    }
    Ok(())
}
