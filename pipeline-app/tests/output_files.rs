//! What `steno transcribe` leaves on disk: files with the permissions other programs expect,
//! nothing at all when the run is interrupted, destinations checked before any work, and
//! several inputs on one stream that can be told apart. The scripted stand-in transcribes
//! (`--simulate-cost-ms`): these are about files, not words.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, run_ok, steno};

/// `steno transcribe` with the scripted transcriber costing `ms` per second of audio.
fn scripted(ms: u64) -> Command {
    let mut command = steno();
    command.args(["transcribe", "--simulate-cost-ms", &ms.to_string()]);
    command
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// This process's umask, which the `steno` it starts inherits.
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))
        .expect("a Umask line");
    u32::from_str_radix(line.trim(), 8).expect("an octal umask")
}

/// Files in `dir` whose name says they are steno's temporary files.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("the directory")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(".steno-"))
        .collect()
}

#[test]
fn new_files_get_the_usual_permissions_and_replaced_files_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("out.srt"), dir.path().join("run.json"));
    let session = fixture("session.wav");
    let transcribe = |out: &Path, report: &Path| {
        run_ok(scripted(1).args(["--format", "srt", "-o"]).args([
            out,
            Path::new("--report"),
            report,
            &session,
        ]));
    };
    transcribe(&out, &report);
    let usual = 0o666 & !umask();
    assert_eq!(
        (mode(&out), mode(&report)),
        (usual, usual),
        "new files get 0666 less the umask ({:o}), as any program's would",
        umask()
    );

    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o604)).unwrap();
    transcribe(&out, &report);
    assert_eq!(
        (mode(&out), mode(&report)),
        (0o640, 0o604),
        "a replaced file keeps its mode"
    );
    assert!(std::fs::read_to_string(&out).unwrap().starts_with("1\n"));
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

/// Starts a slow run writing to files in `dir`, sends `signal` once its temporary files
/// exist, and returns its exit code.
fn interrupted_by(signal: &str, dir: &Path) -> Option<i32> {
    let mut child = scripted(300)
        .args(["--format", "srt", "-o"])
        .arg(dir.join("out.srt"))
        .arg("--report")
        .arg(dir.join("run.json"))
        .arg(fixture("session.wav"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("steno starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while leftovers(dir).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "steno never created its temporary files"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the run get going: the whole session takes about 5 s at this cost.
    std::thread::sleep(Duration::from_millis(500));
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("waiting for steno") {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "steno did not stop after {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_interrupted_run_leaves_nothing_behind() {
    for signal in ["-INT", "-TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let code = interrupted_by(signal, dir.path());
        assert_eq!(
            code,
            Some(130),
            "{signal}: exit status 130, not death by signal"
        );
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(
            left,
            Vec::<String>::new(),
            "{signal}: neither output, report nor temporary file may remain"
        );
    }
}

/// A named pipe at `path`, made by coreutils' `mkfifo`.
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Everything written to the named pipe `path` until its writer closes it, read on a thread.
fn drain(path: &Path) -> std::thread::JoinHandle<String> {
    let path = path.to_path_buf();
    std::thread::spawn(move || std::fs::read_to_string(&path).expect("the pipe reads"))
}

#[test]
fn devices_and_named_pipes_are_written_in_place_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    // Renaming a finished file over `-o /dev/null` replaced the device with a plain file (as
    // root; otherwise it failed): a pipe another program reads is the same case, safely.
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = (dir.path().join("out.pipe"), dir.path().join("report.pipe"));
    mkfifo(&out);
    mkfifo(&report);
    let (text, json) = (drain(&out), drain(&report));
    run_ok(scripted(1).args(["--format", "srt", "-o"]).args([
        out.as_path(),
        Path::new("--report"),
        &report,
        &fixture("session.wav"),
    ]));
    // Checked first: a pipe replaced by a file never gets a writer, and its reader waits on.
    for pipe in [&out, &report] {
        let kind = std::fs::metadata(pipe).unwrap().file_type();
        assert!(kind.is_fifo(), "{} is still a named pipe", pipe.display());
    }
    let (text, json) = (text.join().unwrap(), json.join().unwrap());
    assert!(
        text.starts_with("1\n"),
        "the subtitles came through: {text}"
    );
    let report_value: serde_json::Value = serde_json::from_str(&json).expect("the report");
    assert!(report_value["segments"].as_u64() > Some(0), "{json}");
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

#[test]
fn an_unwritable_report_fails_before_the_run_and_names_the_users_path() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("plain-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let cases = [
        (not_a_dir.join("run.json"), "not a directory"),
        (dir.path().join("missing/run.json"), "no such directory"),
        // A directory that is there but refuses new files (ENOENT, as for a missing one).
        (PathBuf::from("/proc/run.json"), "/proc takes no new files"),
    ];
    for (report, problem) in cases {
        // At this cost the session would take over a minute to transcribe.
        let output = scripted(5_000)
            .arg("--report")
            .args([&report, &fixture("session.wav")])
            .output()
            .expect("steno runs");
        assert!(!output.status.success());
        assert!(
            output.stdout.is_empty(),
            "nothing may be transcribed before the report's destination is known to work"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.trim_end(),
            format!(
                "error: {}: cannot create the report: {problem}",
                report.display()
            ),
            "one line, no temporary file name"
        );
    }
}

#[test]
fn several_inputs_on_stdout_name_their_input_on_every_json_line() {
    let (first, second) = (fixture("session.wav"), fixture("word.wav"));
    let output = run_ok(
        scripted(1)
            .args(["--format", "jsonl"])
            .args([&first, &second]),
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let inputs: Vec<String> = stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            value["input"].as_str().expect("an input field").to_owned()
        })
        .collect();
    let (first, second) = (first.display().to_string(), second.display().to_string());
    let split = inputs.iter().position(|input| *input == second);
    assert!(
        split.is_some_and(|at| at > 0
            && inputs[..at].iter().all(|input| *input == first)
            && inputs[at..].iter().all(|input| *input == second)),
        "every line names its input, first input first: {inputs:?}"
    );
}
