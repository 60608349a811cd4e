//! `steno model list` and `steno model install NAME`: the models steno knows by name, and
//! installing them ([`steno_model_store`]) where `--model NAME` finds them.

use steno_core::{DEFAULT_MODEL, KNOWN_MODELS, models_dir};
use steno_model_store::{Origin, Provenance, Status};

use crate::cli::ModelCommand;

pub(crate) fn run(command: &ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::List => list(),
        ModelCommand::Install { names } => {
            let dir = models_dir();
            for name in names {
                let installed = steno_model_store::install(name, &dir)?;
                println!("{}", installed.path.display());
            }
            Ok(())
        }
    }
}

/// One line per known model: name, size, languages, whether and how it is installed, and
/// where an install would get it.
fn list() -> anyhow::Result<()> {
    let dir = models_dir();
    println!(
        "{:<14} {:>7}  {:<14} {:<17} FROM",
        "NAME", "SIZE", "LANGUAGES", "INSTALLED"
    );
    for model in KNOWN_MODELS {
        let installed = match steno_model_store::status(model, &dir)? {
            Status::Installed(provenance) => format!("yes ({})", provenance_word(&provenance)),
            Status::Unverified => "unverified file".to_owned(),
            Status::Missing => "no".to_owned(),
        };
        let languages = if model.multilingual {
            "99, translate"
        } else {
            "English"
        };
        let default = if model.name == DEFAULT_MODEL {
            " (default)"
        } else {
            ""
        };
        println!(
            "{:<14} {:>4} MB  {:<14} {:<17} {}{default}",
            model.name,
            model.megabytes,
            languages,
            installed,
            origins_described(model.name)
        );
    }
    println!("\nmodels folder: {}", dir.display());
    Ok(())
}

fn provenance_word(provenance: &Provenance) -> &'static str {
    match provenance {
        Provenance::Downloaded => "downloaded",
        Provenance::Converted => "converted",
        Provenance::Quantized(_) => "quantized",
    }
}

fn origins_described(name: &str) -> String {
    steno_model_store::origins(name)
        .iter()
        .map(|origin| match origin {
            Origin::Official { .. } => "whisper.cpp download".to_owned(),
            Origin::PyPi(_) => "PyPI copy, converted".to_owned(),
            Origin::Quantized { from } => format!("quantized from {from}"),
        })
        .collect::<Vec<_>>()
        .join(", or ")
}
