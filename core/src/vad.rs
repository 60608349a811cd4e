//! Voice activity detection: which 16 ms frames contain speech.

use serde::{Deserialize, Serialize};

/// Samples per VAD frame: 16 ms at 16 kHz, the frame size of the `earshot` detector.
pub const FRAME_LEN: usize = 256;

/// Which voice activity detector cuts the audio into utterances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum VadKind {
    /// Frame energy against an adaptive noise floor: cheap, good on clean audio.
    Energy,
    /// The pure-Rust neural detector from the `earshot` crate: robust to noise.
    #[default]
    Earshot,
    /// No detection: fixed 5 s windows, the Python design steno started from (a baseline).
    Fixed,
}

impl VadKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            VadKind::Energy => "energy",
            VadKind::Earshot => "earshot",
            VadKind::Fixed => "fixed",
        }
    }
}

impl std::str::FromStr for VadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "energy" => Ok(VadKind::Energy),
            "earshot" => Ok(VadKind::Earshot),
            "fixed" => Ok(VadKind::Fixed),
            other => Err(format!(
                "unknown VAD '{other}' (expected energy, earshot or fixed)"
            )),
        }
    }
}

/// Classifies frames of [`FRAME_LEN`] samples as speech or not.
///
/// Implementations must be deterministic: the same frames in the same order give the same
/// answers, whatever thread runs them.
pub trait VoiceDetector: Send {
    /// Whether `frame` (exactly [`FRAME_LEN`] samples) contains speech.
    fn is_speech(&mut self, frame: &[f32]) -> bool;
}

/// Root-mean-square level of `frame` in dBFS (-120 for digital silence).
pub fn level_db(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        return -120.0;
    }
    let power = frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32;
    (10.0 * power.max(1e-12).log10()).max(-120.0)
}

/// Energy VAD: a frame is speech when it is louder than both an absolute threshold and the
/// tracked noise floor plus a margin.
#[derive(Debug, Clone)]
pub struct EnergyVad {
    threshold_db: f32,
    margin_db: f32,
    noise_floor_db: f32,
}

impl EnergyVad {
    /// An energy VAD with an absolute threshold in dBFS (-45 is a good start).
    pub fn new(threshold_db: f32) -> Self {
        EnergyVad {
            threshold_db,
            margin_db: 12.0,
            noise_floor_db: -70.0,
        }
    }
}

impl VoiceDetector for EnergyVad {
    fn is_speech(&mut self, frame: &[f32]) -> bool {
        let level = level_db(frame);
        // The floor falls at once and rises slowly (about 3 dB per second), so it follows
        // steady noise but not speech.
        if level < self.noise_floor_db {
            self.noise_floor_db = level;
        } else {
            self.noise_floor_db += (level - self.noise_floor_db).min(0.05);
        }
        level > self.threshold_db && level > self.noise_floor_db + self.margin_db
    }
}

/// The neural `earshot` detector with a probability threshold.
pub struct EarshotVad {
    detector: Box<earshot::Detector>,
    threshold: f32,
}

impl std::fmt::Debug for EarshotVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EarshotVad")
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl EarshotVad {
    /// An earshot VAD; frames scoring above `threshold` (0 to 1, 0.5 is the usual) are speech.
    pub fn new(threshold: f32) -> Self {
        EarshotVad {
            detector: earshot::Detector::default_boxed(),
            threshold,
        }
    }
}

impl VoiceDetector for EarshotVad {
    fn is_speech(&mut self, frame: &[f32]) -> bool {
        self.detector.predict_f32(frame) > self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amplitude: f32) -> Vec<f32> {
        (0..FRAME_LEN)
            .map(|i| amplitude * (i as f32 * 0.3).sin())
            .collect()
    }

    #[test]
    fn level_of_full_scale_sine_is_about_minus_3_db() {
        let level = level_db(&tone(1.0));
        assert!((level + 3.0).abs() < 0.5, "{level}");
        assert_eq!(level_db(&[0.0; FRAME_LEN]), -120.0);
    }

    #[test]
    fn energy_vad_hears_loud_frames_not_quiet_ones() {
        let mut vad = EnergyVad::new(-45.0);
        assert!(!vad.is_speech(&tone(0.001)));
        assert!(vad.is_speech(&tone(0.3)));
    }

    #[test]
    fn energy_vad_adapts_to_steady_noise() {
        let mut vad = EnergyVad::new(-60.0);
        let noise = tone(0.02);
        // After a few seconds of the same level the floor has caught up.
        let late: Vec<bool> = (0..600).map(|_| vad.is_speech(&noise)).collect();
        assert!(!late[599]);
    }

    #[test]
    fn vad_names_round_trip() {
        for kind in [VadKind::Energy, VadKind::Earshot, VadKind::Fixed] {
            assert_eq!(kind.name().parse::<VadKind>(), Ok(kind));
        }
        assert!("loud".parse::<VadKind>().is_err());
    }
}
