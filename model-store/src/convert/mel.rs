//! Slaney-style mel filterbank, computed exactly as librosa's default
//! `librosa.filters.mel(sr, n_fft, n_mels)` (htk=False, norm="slaney", fmin=0, fmax=sr/2),
//! which is what OpenAI's `mel_filters.npz` and the official ggml Whisper models contain.

/// Returns the `n_mels x (n_fft / 2 + 1)` filterbank, row-major.
///
/// Follows librosa step by step, including its float32 rounding of the triangle weights before
/// the Slaney area normalisation, so results match to float32 precision.
pub(super) fn slaney_mel_filterbank(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_bins = n_fft / 2 + 1;

    // np.fft.rfftfreq(n_fft, d=1/sr)
    let bin_step = 1.0 / (n_fft as f64 * (1.0 / sample_rate));
    let fft_freqs: Vec<f64> = (0..n_bins).map(|k| k as f64 * bin_step).collect();

    // mel_frequencies(n_mels + 2, fmin=0, fmax=sr/2): evenly spaced on the mel scale.
    let n_points = n_mels + 2;
    let min_mel = hz_to_mel(0.0);
    let max_mel = hz_to_mel(sample_rate / 2.0);
    let mel_step = (max_mel - min_mel) / (n_points - 1) as f64;
    let mel_freqs: Vec<f64> = (0..n_points)
        .map(|i| {
            // np.linspace pins the last point to the end value.
            let mel = if i + 1 == n_points {
                max_mel
            } else {
                min_mel + i as f64 * mel_step
            };
            mel_to_hz(mel)
        })
        .collect();
    let widths: Vec<f64> = mel_freqs.windows(2).map(|w| w[1] - w[0]).collect();

    let mut weights = Vec::with_capacity(n_mels * n_bins);
    for i in 0..n_mels {
        // Slaney normalisation: each triangle has unit area in Hz.
        let enorm = 2.0 / (mel_freqs[i + 2] - mel_freqs[i]);
        for &freq in &fft_freqs {
            let lower = -(mel_freqs[i] - freq) / widths[i];
            let upper = (mel_freqs[i + 2] - freq) / widths[i + 1];
            // librosa stores the triangle in a float32 array, then scales it in float64.
            let triangle = lower.min(upper).max(0.0) as f32;
            weights.push((f64::from(triangle) * enorm) as f32);
        }
    }
    weights
}

/// Slaney's auditory toolbox scale: linear below 1 kHz, logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference entries `(mel, bin, value)` produced with librosa 0.11.0 / numpy 2.4.6:
    /// `m = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80); float(m[mel, bin])`.
    const LIBROSA_80: &[(usize, usize, f64)] = &[
        (0, 1, 0.02486259490251541),
        (0, 2, 0.0),
        (1, 1, 0.001990821911022067),
        (1, 2, 0.022871771827340126),
        (7, 7, 0.013935752213001251),
        (7, 8, 0.010926840826869011),
        (15, 14, 0.0010180906392633915),
        (15, 15, 0.023844502866268158),
        (16, 15, 0.003008912317454815),
        (30, 29, 0.01585603691637516),
        (30, 30, 0.00896277092397213),
        (39, 40, 0.001418047584593296),
        (40, 43, 0.014735566452145576),
        (45, 52, 0.011507894843816757),
        (60, 70, 0.0),
        (60, 91, 0.0034412189852446318),
        (79, 186, 0.000366741674952209),
        (79, 190, 0.0022320549469441175),
        (79, 200, 0.0),
    ];

    #[test]
    fn matches_librosa_slaney_filterbank() {
        let filters = slaney_mel_filterbank(16000.0, 400, 80);
        assert_eq!(filters.len(), 80 * 201);
        for &(mel, bin, expected) in LIBROSA_80 {
            let got = f64::from(filters[mel * 201 + bin]);
            assert!(
                (got - expected).abs() < 1e-6,
                "m[{mel},{bin}] = {got}, librosa has {expected}"
            );
        }
        // float(m.sum()) in the same librosa session.
        let sum: f64 = filters.iter().map(|&v| f64::from(v)).sum();
        assert!((sum - 1.9990241527557373).abs() < 1e-5, "sum {sum}");
        assert!(filters.iter().all(|v| v.is_finite() && *v >= 0.0));
    }
}
