//! A Python 3 that can `import msgpack`, for the interoperability tests, provisioned on demand.
//!
//! Used by the tests of the `repod` crate and of `repod-examples` (through `#[path]`). The
//! first test that needs Python looks for `python3` (or `$REPOD_PYTHON`). If it imports
//! `msgpack` already, it is used as is. Otherwise msgpack is installed from the package index
//! into the target directory, once, and reused by every later run:
//!
//! 1. a virtual environment, `python3 -m venv target/tmp/python-msgpack/venv`, then that
//!    environment's `pip install msgpack`;
//! 2. where `venv` is unusable (Debian without `python3-venv`), `python3 -m pip install
//!    --target target/tmp/python-msgpack/site msgpack`, put on `PYTHONPATH`.
//!
//! Test binaries run in parallel, so the installation is guarded by a lock file, and it is
//! published by a marker file written last (by rename).
//!
//! A test is skipped, with a warning on the terminal, only when this is impossible: no
//! Python 3 at all, or neither `venv` nor `pip` works — or when `REPOD_SKIP_PYTHON=1` is set.
//! Under CI (`CI` set, or `REPOD_REQUIRE_PYTHON=1`) nothing is skipped: those cases fail the
//! test instead. A failed installation (no network, say) always fails the test, with pip's
//! output.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How to run a Python that imports `msgpack`.
#[derive(Debug, Clone)]
pub struct Python {
    program: PathBuf,
    /// Where msgpack was installed with `pip --target`, if that is how.
    pythonpath: Option<PathBuf>,
}

impl Python {
    /// A command running this Python (add the script and its arguments).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        if let Some(path) = &self.pythonpath {
            cmd.env("PYTHONPATH", path);
        }
        cmd
    }

    fn imports_msgpack(&self) -> bool {
        let mut cmd = self.command();
        cmd.args(["-c", "import msgpack"]);
        run(cmd, Duration::from_secs(60)).is_ok_and(|out| out.status.success())
    }
}

/// Why no Python can be had.
enum Unavailable {
    /// Impossible on this machine: the test may be skipped (outside CI).
    Impossible(String),
    /// Something that should have worked failed: the test fails.
    Failed(String),
}

/// The Python for the test `test`, or `None` when the test must be skipped (a warning has
/// then been written to the terminal). Panics when Python cannot be provisioned and the test
/// may not be skipped.
pub fn python(test: &str) -> Option<&'static Python> {
    static PYTHON: OnceLock<Result<Python, Unavailable>> = OnceLock::new();
    let required = required();
    if std::env::var_os("REPOD_SKIP_PYTHON").is_some_and(|v| !v.is_empty() && v != "0") {
        assert!(
            !required,
            "REPOD_SKIP_PYTHON is set, but CI (CI or REPOD_REQUIRE_PYTHON=1) must run the Python tests"
        );
        warn(test, "REPOD_SKIP_PYTHON is set");
        return None;
    }
    match PYTHON.get_or_init(provision) {
        Ok(python) => Some(python),
        Err(Unavailable::Impossible(why)) if !required => {
            warn(
                test,
                &format!("{why}; install Python 3 with venv or pip, or set REPOD_SKIP_PYTHON=1"),
            );
            None
        }
        Err(Unavailable::Impossible(why)) => {
            panic!("{why} (CI requires the Python interoperability tests)")
        }
        Err(Unavailable::Failed(why)) => panic!(
            "cannot provide Python's msgpack for the interoperability tests: {why}\n\
             (set REPOD_SKIP_PYTHON=1 to skip these tests)"
        ),
    }
}

/// Whether Python tests must run: under CI or with `REPOD_REQUIRE_PYTHON=1`.
fn required() -> bool {
    let set = |name| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set("REPOD_REQUIRE_PYTHON")
}

/// Writes past the test harness's output capture, so the warning is seen even when the test
/// passes.
fn warn(test: &str, why: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "warning: skipping the Python interoperability test `{test}`: {why}"
    );
}

fn provision() -> Result<Python, Unavailable> {
    let base = find_python()?;
    if base.imports_msgpack() {
        return Ok(base);
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-msgpack");
    let marker = root.join("ready");
    if let Some(python) = read_marker(&marker, &base) {
        return Ok(python);
    }
    fs::create_dir_all(root.parent().unwrap()).map_err(failed("cannot create the target dir"))?;
    // Held until the end of this function; released by the system if the process dies.
    let lock = fs::File::create(root.with_extension("lock"))
        .map_err(failed("cannot create the lock file"))?;
    lock.lock().map_err(failed("cannot lock the lock file"))?;
    if let Some(python) = read_marker(&marker, &base) {
        return Ok(python);
    }
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).map_err(failed("cannot create the python directory"))?;
    let python = install(&base, &root)?;
    if !python.imports_msgpack() {
        return Err(Unavailable::Failed(format!(
            "msgpack was installed under {} but cannot be imported",
            root.display()
        )));
    }
    write_marker(&marker, &base, &python).map_err(failed("cannot write the marker file"))?;
    let _ = writeln!(
        std::io::stderr(),
        "note: installed Python's msgpack under {} for the interoperability tests",
        root.display()
    );
    Ok(python)
}

/// The system's Python 3: `$REPOD_PYTHON`, else `python3`, else `python`.
fn find_python() -> Result<Python, Unavailable> {
    let candidates: Vec<PathBuf> = match std::env::var_os("REPOD_PYTHON") {
        Some(program) => vec![program.into()],
        None => vec!["python3".into(), "python".into()],
    };
    for program in &candidates {
        let mut cmd = Command::new(program);
        cmd.args(["-c", "import sys; sys.exit(sys.version_info < (3, 8))"]);
        if run(cmd, Duration::from_secs(60)).is_ok_and(|out| out.status.success()) {
            return Ok(Python {
                program: program.clone(),
                pythonpath: None,
            });
        }
    }
    Err(Unavailable::Impossible(format!(
        "no Python 3.8 or later found (tried {candidates:?})"
    )))
}

/// Installs msgpack under `root`: in a virtual environment, else with `pip --target`.
fn install(base: &Python, root: &Path) -> Result<Python, Unavailable> {
    let venv = root.join("venv");
    let mut cmd = base.command();
    cmd.args(["-m", "venv"]).arg(&venv);
    let venv_error = match run(cmd, Duration::from_secs(300)) {
        Ok(out) if out.status.success() => {
            let python = Python {
                program: venv_python(&venv),
                pythonpath: None,
            };
            let mut cmd = python.command();
            cmd.args(["-m", "pip", "--version"]);
            if run(cmd, Duration::from_secs(60)).is_ok_and(|out| out.status.success()) {
                pip_install(&python, &[])?;
                return Ok(python);
            }
            "the virtual environment has no pip".to_owned()
        }
        Ok(out) => last_line(&out),
        Err(error) => error,
    };
    let _ = fs::remove_dir_all(&venv);

    let mut cmd = base.command();
    cmd.args(["-m", "pip", "--version"]);
    if !run(cmd, Duration::from_secs(60)).is_ok_and(|out| out.status.success()) {
        return Err(Unavailable::Impossible(format!(
            "Python lacks msgpack, `python -m venv` does not work ({}) and there is no pip",
            venv_error
        )));
    }
    let site = root.join("site");
    pip_install(base, &["--target".as_ref(), site.as_os_str()])?;
    Ok(Python {
        program: base.program.clone(),
        pythonpath: Some(site),
    })
}

fn pip_install(python: &Python, extra: &[&std::ffi::OsStr]) -> Result<(), Unavailable> {
    let mut cmd = python.command();
    cmd.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
    ])
    .args(extra)
    .arg("msgpack");
    match run(cmd, Duration::from_secs(600)) {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(Unavailable::Failed(format!(
            "`pip install msgpack` failed: {}",
            describe(&out)
        ))),
        Err(error) => Err(Unavailable::Failed(format!(
            "`pip install msgpack`: {error}"
        ))),
    }
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// The marker holds the Python it was made from, the program to run and the `PYTHONPATH`
/// (maybe empty), one a line; it is only trusted if it was made from `base` and that program
/// still imports msgpack.
fn read_marker(marker: &Path, base: &Python) -> Option<Python> {
    let text = fs::read_to_string(marker).ok()?;
    let mut lines = text.lines();
    if Path::new(lines.next()?) != base.program {
        return None;
    }
    let program = PathBuf::from(lines.next()?);
    let pythonpath = lines.next().filter(|l| !l.is_empty()).map(PathBuf::from);
    let python = Python {
        program,
        pythonpath,
    };
    python.imports_msgpack().then_some(python)
}

fn write_marker(marker: &Path, base: &Python, python: &Python) -> std::io::Result<()> {
    let text = format!(
        "{}\n{}\n{}\n",
        base.program.display(),
        python.program.display(),
        python
            .pythonpath
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let tmp = marker.with_extension("tmp");
    fs::write(&tmp, text)?;
    fs::rename(tmp, marker)
}

fn failed(what: &'static str) -> impl Fn(std::io::Error) -> Unavailable {
    move |error| Unavailable::Failed(format!("{what}: {error}"))
}

/// The last line of a failed command's error output, or its exit status.
fn last_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    match stderr.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(line) => line.trim().to_owned(),
        None => out.status.to_string(),
    }
}

fn describe(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` to completion with its output captured, killing it after `limit`. An error if it
/// cannot be started or was killed.
fn run(mut cmd: Command, limit: Duration) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run {cmd:?}: {error}"))?;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} did not finish within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    })
}
