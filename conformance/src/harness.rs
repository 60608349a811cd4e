//! What the test harness calls for each (backend, case): run the case and record its outcome
//! (pass, unsupported or fail) for the README table that `cargo xtask conformance-table`
//! generates.
//!
//! An unsupported case passes as a test, but it is never silent: its outcome is recorded
//! with the backend's reason, printed, and shown in the table.
//!
//! Each outcome is one file, `<results dir>/<backend>/<case>.result`, of `key=value` lines:
//!
//! ```text
//! backend=threads
//! case=ordering
//! order=0
//! summary=segments come out in audio order, with monotonic timestamps
//! status=pass
//! detail=
//! ```
//!
//! `status` is `pass`, `unsupported` (with the backend's reason in `detail`) or `fail` (with
//! the first line of the failure in `detail`); `order` is the case's position in the suite.
//! The results directory is `$STENO_CONFORMANCE_RESULTS`, or `conformance-results` in the
//! cargo target directory.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::{BackendFactory, CaseResult, FAST_CASES, MODEL_INPUTS, fast_case};

/// The environment variable naming the directory results are recorded in.
pub const RESULTS_ENV: &str = "STENO_CONFORMANCE_RESULTS";

/// How a case went for one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The backend kept every promise of the case.
    Pass,
    /// The backend declined the case; the reason it gave.
    Unsupported(String),
    /// The backend broke a promise; the first line of the failure.
    Fail(String),
}

impl Status {
    fn key(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Unsupported(_) => "unsupported",
            Status::Fail(_) => "fail",
        }
    }

    fn detail(&self) -> &str {
        match self {
            Status::Pass => "",
            Status::Unsupported(detail) | Status::Fail(detail) => detail,
        }
    }
}

/// Where outcomes are recorded: `$STENO_CONFORMANCE_RESULTS`, or `conformance-results` in the
/// target directory of the running test binary.
pub fn results_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(RESULTS_ENV) {
        return PathBuf::from(dir);
    }
    // A test binary lives in <target>/<profile>/deps/.
    let target = std::env::current_exe().ok().and_then(|exe| {
        exe.parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .map(Path::to_path_buf)
    });
    target
        .unwrap_or_else(|| crate::workspace_root().join("target"))
        .join("conformance-results")
}

/// The position of `case` in the suite and what it checks, for the table.
fn describe(case: &str) -> Option<(usize, String)> {
    if let Some(order) = FAST_CASES.iter().position(|c| c.name == case) {
        return Some((order, FAST_CASES[order].summary.to_owned()));
    }
    MODEL_INPUTS
        .iter()
        .position(|input| input.case == case)
        .map(|index| {
            let input = &MODEL_INPUTS[index];
            (
                FAST_CASES.len() + index,
                format!(
                    "Whisper on `{}`, {}: the transcript matches the shared snapshot",
                    input.file, input.summary
                ),
            )
        })
}

/// Runs the fast case `case` against backends from `make` and records the outcome.
///
/// # Panics
/// When the case fails (after recording it), or when there is no fast case called `case`.
pub fn run_fast_case(case: &str, make: &BackendFactory) {
    let Some(found) = fast_case(case) else {
        panic!("the conformance suite has no fast case called {case}")
    };
    record_case(case, make, || (found.check)(make));
}

/// Runs `body`, the case `case` against backends from `make`, and records its outcome: pass,
/// unsupported (when `body` returns [`crate::Unsupported`]) or fail (when it panics).
///
/// # Panics
/// When `body` panics (the panic goes on after the failure is recorded), when `case` is not
/// a case of the suite, or when the outcome cannot be written.
pub fn record_case(case: &str, make: &BackendFactory, body: impl FnOnce() -> CaseResult) {
    let Some((order, summary)) = describe(case) else {
        panic!("the conformance suite has no case called {case}")
    };
    let backend = make().name();
    let outcome = panic::catch_unwind(AssertUnwindSafe(body));
    let status = match &outcome {
        Ok(Ok(())) => Status::Pass,
        Ok(Err(unsupported)) => Status::Unsupported(unsupported.what.clone()),
        Err(payload) => Status::Fail(panic_message(payload.as_ref())),
    };
    write_result(backend, case, order, &summary, &status);
    match outcome {
        Err(payload) => panic::resume_unwind(payload),
        Ok(Err(unsupported)) => {
            eprintln!("{backend}::{case}: UNSUPPORTED (recorded): {unsupported}");
        }
        Ok(Ok(())) => {}
    }
}

/// The first line of a panic's message.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("panicked");
    message
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// One line, so that a value cannot break the `key=value` format.
fn one_line(value: &str) -> String {
    value.replace(['\n', '\r'], " ")
}

fn write_result(backend: &str, case: &str, order: usize, summary: &str, status: &Status) {
    let dir = results_dir().join(backend);
    let path = dir.join(format!("{case}.result"));
    let text = format!(
        "backend={backend}\ncase={case}\norder={order}\nsummary={}\nstatus={}\ndetail={}\n",
        one_line(summary),
        status.key(),
        one_line(status.detail()),
    );
    if let Err(error) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        panic!(
            "cannot record the outcome of {backend}::{case} in {}: {error}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_is_described_in_suite_order() {
        let names = FAST_CASES
            .iter()
            .map(|c| c.name)
            .chain(MODEL_INPUTS.iter().map(|i| i.case));
        for (expected, name) in names.enumerate() {
            let (order, summary) = describe(name).unwrap();
            assert_eq!(order, expected, "{name}");
            assert!(!summary.is_empty());
        }
        assert!(describe("no_such_case").is_none());
    }

    #[test]
    fn panic_messages_are_cut_to_their_first_line() {
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from("first\nsecond"));
        assert_eq!(panic_message(payload.as_ref()), "first");
        assert_eq!(one_line("a\nb"), "a b");
    }
}
