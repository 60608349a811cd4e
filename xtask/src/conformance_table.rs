//! `cargo xtask conformance-table`: runs the conformance suite and writes its table of cases x
//! backends into README.md, between the markers below; `cargo xtask test` checks that the
//! table in README.md is the one its own run of the suite produces.
//!
//! The table is generated from the outcomes the suite records, one file per (backend, case)
//! (the format is described in `conformance/src/harness.rs`), never written by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Where the generated table starts in README.md.
const START: &str = "<!-- conformance-table:start -->";
/// Where it ends.
const END: &str = "<!-- conformance-table:end -->";
/// The variable telling the suite where to record outcomes (`steno_conformance::harness`).
pub(crate) const RESULTS_ENV: &str = "STENO_CONFORMANCE_RESULTS";

/// The directory the suite records outcomes in when run by xtask.
pub(crate) fn results_dir(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    target.join("conformance-results")
}

/// Empties the results directory, so that only the coming run's outcomes are in it.
pub(crate) fn clear_results(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = results_dir(root);
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("{}: cannot remove", dir.display()))?;
    }
    Ok(dir)
}

/// Runs the suite and writes its table into `readme` between the markers.
pub(crate) fn generate(root: &Path, readme: &Path) -> anyhow::Result<()> {
    crate::model::ensure(root)?;
    let results = clear_results(root)?;
    let status = crate::cargo(root)
        .args([
            "test",
            "-p",
            "steno-conformance",
            "--locked",
            "--no-fail-fast",
        ])
        .env(RESULTS_ENV, &results)
        .env("INSTA_UPDATE", "no")
        .env("CI", "true")
        .status()
        .context("cannot run cargo test")?;
    let outcomes = read_results(&results);
    if !status.success() {
        if let Ok(outcomes) = &outcomes {
            println!("{}", render(outcomes));
        }
        bail!(
            "the conformance suite failed; {} was not changed",
            readme.display()
        );
    }
    let table = render(&outcomes?);
    let text =
        fs::read_to_string(readme).with_context(|| format!("{}: cannot read", readme.display()))?;
    let Some((before, _, after)) = split_at_markers(&text) else {
        println!("{table}");
        bail!(
            "{} has no {START} ... {END} markers: put them where the table belongs (the \
             table is above)",
            readme.display()
        );
    };
    let updated = format!("{before}{START}\n{table}{END}{after}");
    fs::write(readme, updated).with_context(|| format!("{}: cannot write", readme.display()))?;
    eprintln!(
        "xtask: wrote the conformance table into {}",
        readme.display()
    );
    Ok(())
}

/// Fails unless README.md holds the table the outcomes in the results directory give.
pub(crate) fn check(root: &Path) -> anyhow::Result<()> {
    let table = render(&read_results(&results_dir(root))?);
    let readme = root.join("README.md");
    let text = fs::read_to_string(&readme)
        .with_context(|| format!("{}: cannot read", readme.display()))?;
    let Some((_, current, _)) = split_at_markers(&text) else {
        bail!(
            "{} has no {START} ... {END} markers for the conformance table: add them and run \
             `cargo xtask conformance-table`",
            readme.display()
        );
    };
    if current.trim() != table.trim() {
        bail!(
            "the conformance table in {} is not what the suite gives now:\n{table}\nrun \
             `cargo xtask conformance-table` to update it",
            readme.display()
        );
    }
    Ok(())
}

/// The text before the start marker, between the markers, and after the end marker.
fn split_at_markers(text: &str) -> Option<(&str, &str, &str)> {
    let (before, rest) = text.split_once(START)?;
    let (inside, after) = rest.split_once(END)?;
    Some((before, inside, after))
}

/// One recorded outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    backend: String,
    case: String,
    order: usize,
    summary: String,
    status: String,
    detail: String,
}

fn parse(text: &str, path: &Path) -> anyhow::Result<Outcome> {
    let fields: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let field = |key: &str| {
        fields
            .get(key)
            .map(|value| (*value).to_owned())
            .with_context(|| format!("{}: no `{key}=` line", path.display()))
    };
    Ok(Outcome {
        backend: field("backend")?,
        case: field("case")?,
        order: field("order")?
            .parse()
            .with_context(|| format!("{}: bad order", path.display()))?,
        summary: field("summary")?,
        status: field("status")?,
        detail: field("detail")?,
    })
}

fn read_results(dir: &Path) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    let backends =
        fs::read_dir(dir).with_context(|| format!("{}: no conformance results", dir.display()))?;
    for backend in backends {
        let backend = backend?.path();
        if !backend.is_dir() {
            continue;
        }
        for file in fs::read_dir(&backend)? {
            let path = file?.path();
            if path.extension().is_some_and(|ext| ext == "result") {
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("{}: cannot read", path.display()))?;
                outcomes.push(parse(&text, &path)?);
            }
        }
    }
    if outcomes.is_empty() {
        bail!("{}: no conformance results", dir.display());
    }
    Ok(outcomes)
}

/// The markdown table: one row per case (in suite order), one column per backend.
fn render(outcomes: &[Outcome]) -> String {
    let backends: BTreeSet<&str> = outcomes.iter().map(|o| o.backend.as_str()).collect();
    let mut cases: BTreeMap<(usize, &str), &str> = BTreeMap::new();
    for outcome in outcomes {
        cases.insert(
            (outcome.order, outcome.case.as_str()),
            outcome.summary.as_str(),
        );
    }
    let cell: BTreeMap<(&str, &str), &Outcome> = outcomes
        .iter()
        .map(|o| ((o.backend.as_str(), o.case.as_str()), o))
        .collect();

    let mut table = String::from(
        "<!-- generated by `cargo xtask conformance-table` from the suite's recorded outcomes; \
         do not edit by hand -->\n\n",
    );
    let _ = write!(table, "| case | what it checks |");
    for backend in &backends {
        let _ = write!(table, " {backend} |");
    }
    table.push_str("\n| --- | --- |");
    for _ in &backends {
        table.push_str(" :---: |");
    }
    table.push('\n');
    let mut notes = Vec::new();
    for (&(_, case), summary) in &cases {
        let _ = write!(table, "| `{case}` | {} |", summary.replace('|', "\\|"));
        for &backend in &backends {
            let mark = match cell.get(&(backend, case)) {
                Some(o) if o.status == "pass" => "✅",
                Some(o) if o.status == "unsupported" => {
                    notes.push(format!("- `{backend}` / `{case}`: {}", o.detail));
                    "⚠️ unsupported"
                }
                Some(o) => {
                    notes.push(format!("- `{backend}` / `{case}` failed: {}", o.detail));
                    "❌ fail"
                }
                None => "— not run",
            };
            let _ = write!(table, " {mark} |");
        }
        table.push('\n');
    }
    table.push_str(
        "\n✅ pass · ⚠️ unsupported: the backend declines the case with \
         `Error::Unsupported` and the suite records it · ❌ fail · — not run\n",
    );
    if !notes.is_empty() {
        table.push('\n');
        for note in notes {
            table.push_str(&note);
            table.push('\n');
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(backend: &str, case: &str, order: usize, status: &str) -> Outcome {
        Outcome {
            backend: backend.into(),
            case: case.into(),
            order,
            summary: format!("checks {case}"),
            status: status.into(),
            detail: if status == "pass" { "" } else { "why" }.into(),
        }
    }

    #[test]
    fn the_table_has_a_row_per_case_and_a_column_per_backend() {
        let table = render(&[
            outcome("tokio", "second", 1, "unsupported"),
            outcome("threads", "first", 0, "pass"),
            outcome("threads", "second", 1, "pass"),
        ]);
        assert!(
            table.contains("| case | what it checks | threads | tokio |"),
            "{table}"
        );
        assert!(
            table.contains("| `first` | checks first | ✅ | — not run |"),
            "{table}"
        );
        assert!(
            table.contains("| `second` | checks second | ✅ | ⚠️ unsupported |"),
            "{table}"
        );
        assert!(table.contains("- `tokio` / `second`: why"), "{table}");
        assert!(table.find("`first`") < table.find("`second`"));
    }

    #[test]
    fn outcome_files_parse_and_markers_split() {
        let text = "backend=threads\ncase=ordering\norder=0\nsummary=a=b\nstatus=pass\ndetail=\n";
        let parsed = parse(text, Path::new("x.result")).unwrap();
        assert_eq!(parsed.summary, "a=b");
        assert_eq!(parsed.detail, "");
        let readme = format!("intro\n{START}\nold\n{END}\nrest");
        let (before, inside, after) = split_at_markers(&readme).unwrap();
        assert_eq!((before, inside, after), ("intro\n", "\nold\n", "\nrest"));
    }
}
