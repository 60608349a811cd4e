//! `steno model list|install` and `--model NAME`: models by name, found where `steno model
//! install` puts them, and clear errors for a name that is unknown or not installed.
#![allow(clippy::unwrap_used, reason = "a test that cannot set up should panic")]

mod common;

use common::{fixture, root, run_ok, steno};

#[test]
fn the_list_shows_every_known_model_and_what_is_installed() {
    let output = run_ok(steno().args(["model", "list"]).env_remove("STENO_MODELS"));
    let listed = String::from_utf8(output.stdout).unwrap();
    for model in steno_core::KNOWN_MODELS {
        let line = listed
            .lines()
            .find(|line| line.split_whitespace().next() == Some(model.name))
            .unwrap_or_else(|| panic!("{} is not listed:\n{listed}", model.name));
        // `cargo xtask test` installs the default model and base, each with its record.
        if ["tiny.en-q8_0", "base"].contains(&model.name) {
            assert!(line.contains(" yes ("), "{line}");
        }
    }
    assert!(
        listed.contains(&format!(
            "models folder: {}",
            root().join("models").display()
        )),
        "{listed}"
    );
}

#[test]
fn a_model_is_named_or_refused_in_one_line() {
    let empty = tempfile::tempdir().unwrap();
    let session = fixture("session.wav");
    // A name steno does not know: the known ones are listed.
    let output = steno()
        .args(["transcribe", "--model", "huge"])
        .arg(&session)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("model huge: neither a file nor a model steno knows"),
        "{stderr}"
    );
    // A known model that is not installed in the models folder: how to install it.
    let output = steno()
        .env("STENO_MODELS", empty.path())
        .args(["transcribe", "--model", "small.en"])
        .arg(&session)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("model small.en: not installed; run `steno model install small.en`"),
        "{stderr}"
    );
    let output = steno().args(["model", "install", "huge"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("model huge: steno does not know"),
        "{stderr}"
    );
}

#[test]
fn a_model_named_by_name_is_the_installed_file() {
    // The default model by its name gives what the default gives.
    let by_name = run_ok(
        steno()
            .args(["transcribe", "--model", "tiny.en-q8_0"])
            .arg(fixture("session.wav")),
    );
    let by_default = run_ok(steno().arg("transcribe").arg(fixture("session.wav")));
    assert_eq!(by_name.stdout, by_default.stdout);
    assert!(!by_name.stdout.is_empty());
}
