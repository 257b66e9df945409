//! Running programs on the unit: every command has a time limit, its output is captured, and it
//! can run as another user (keystone-manage runs as `keystone`, so the files it creates belong to
//! the user Keystone's WSGI daemons run as).
//!
//! Everything goes through [`Runner`], so the charm's logic can be tested with `ScriptedRunner`
//! (test kit), which records every command (tests count keystone-manage calls) and answers from a
//! script.

#[cfg(any(test, feature = "testkit"))]
use std::collections::VecDeque;
use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::secret::Sensitive;

/// A program to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: String,
    /// Arguments are shown in logs and errors: secrets go in `env`.
    pub args: Vec<String>,
    /// Extra environment variables; only their names are ever shown.
    pub env: Vec<(String, Sensitive<String>)>,
    /// Run as this user (and its primary group), when not already that user.
    pub user: Option<String>,
    pub timeout: Duration,
}

impl Invocation {
    /// A command with a one-minute limit.
    pub fn new(program: impl Into<String>) -> Invocation {
        Invocation {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            user: None,
            timeout: Duration::from_secs(60),
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Invocation {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Invocation {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, name: impl Into<String>, value: Sensitive<String>) -> Invocation {
        self.env.push((name.into(), value));
        self
    }

    pub fn as_user(mut self, user: impl Into<String>) -> Invocation {
        self.user = Some(user.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Invocation {
        self.timeout = timeout;
        self
    }
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        for arg in &self.args {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

/// What a finished command left.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// The exit code; None when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last lines of stderr worth showing an operator (Python's shutdown noise dropped).
    pub fn error_summary(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty() && !is_python_shutdown_noise(l))
            .collect();
        let tail = &lines[lines.len().saturating_sub(3)..];
        if tail.is_empty() {
            "no error output".to_owned()
        } else {
            tail.join(" | ")
        }
    }
}

/// Every keystone-manage run ends with an ignored eventlet exception at interpreter shutdown
/// (harmless, exit code 0); it would hide the real error.
fn is_python_shutdown_noise(line: &str) -> bool {
    line.starts_with("Exception ignored in")
        || line.contains("eventlet/green/thread.py")
        || line.contains("'NoneType' object has no attribute 'getcurrent'")
        || line.starts_with("Traceback (most recent call last)")
        || line.starts_with("  File ")
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot run {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} did not finish within {seconds} s and was killed")]
    Timeout { command: String, seconds: u64 },
    #[error("{command} failed ({status}): {detail}")]
    Failed {
        command: String,
        status: String,
        detail: String,
    },
    #[error("there is no user {user} on this machine; is the keystone package installed?")]
    NoSuchUser { user: String },
}

/// Runs commands. `run` returns the output whatever the exit code; [`run_checked`] turns a
/// failure into an error.
pub trait Runner {
    fn run(&self, command: &Invocation) -> Result<Output, ProcessError>;
}

/// Runs `command` and fails unless it exits 0.
pub fn run_checked(runner: &dyn Runner, command: &Invocation) -> Result<Output, ProcessError> {
    let output = runner.run(command)?;
    if output.success() {
        Ok(output)
    } else {
        Err(ProcessError::Failed {
            command: command.to_string(),
            status: match output.code {
                Some(code) => format!("exit code {code}"),
                None => "killed by a signal".to_owned(),
            },
            detail: output.error_summary(),
        })
    }
}

/// Runs commands on this machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

/// How long to wait for the output pipes after the command exits: a daemon it started may hold
/// them open (it should not, but a hook must not hang on it).
const PIPE_GRACE: Duration = Duration::from_secs(2);

impl Runner for SystemRunner {
    fn run(&self, command: &Invocation) -> Result<Output, ProcessError> {
        let mut child = std::process::Command::new(&command.program);
        child
            .args(&command.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills what it started too.
            .process_group(0);
        for (name, value) in &command.env {
            child.env(name, value.expose());
        }
        if let Some(name) = &command.user {
            let user = nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| ProcessError::NoSuchUser { user: name.clone() })?;
            if user.uid != nix::unistd::geteuid() {
                // std drops the supplementary groups when it changes the uid as root.
                child
                    .uid(user.uid.as_raw())
                    .gid(user.gid.as_raw())
                    .env("HOME", &user.dir)
                    .env("USER", name)
                    .env("LOGNAME", name);
            }
        }
        let spawn_error = |source| ProcessError::Spawn {
            command: command.to_string(),
            source,
        };
        let mut child = child.spawn().map_err(spawn_error)?;
        let (done_tx, done_rx) = mpsc::channel();
        let stdout = collect(child.stdout.take(), done_tx.clone());
        let stderr = collect(child.stderr.take(), done_tx);

        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        let status = loop {
            if let Some(status) = child.try_wait().map_err(spawn_error)? {
                break status;
            }
            if started.elapsed() >= command.timeout {
                let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return Err(ProcessError::Timeout {
                    command: command.to_string(),
                    seconds: command.timeout.as_secs(),
                });
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        };
        let grace_end = Instant::now() + PIPE_GRACE;
        for _ in 0..2 {
            let left = grace_end.saturating_duration_since(Instant::now());
            if done_rx.recv_timeout(left).is_err() {
                break;
            }
        }
        let text = |buffer: &Arc<Mutex<Vec<u8>>>| {
            let bytes = buffer.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        Ok(Output {
            code: status.code(),
            stdout: text(&stdout),
            stderr: text(&stderr),
        })
    }
}

/// Reads a pipe to its end on a thread; reports on `done` when it has.
fn collect<R: Read + Send + 'static>(
    pipe: Option<R>,
    done: mpsc::Sender<()>,
) -> Arc<Mutex<Vec<u8>>> {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buffer);
    thread::spawn(move || {
        if let Some(mut pipe) = pipe {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                if let Ok(mut b) = sink.lock() {
                    b.extend_from_slice(&chunk[..n]);
                }
            }
        }
        let _ = done.send(());
    });
    buffer
}

/// A test twin: records every command and answers from a queue of outputs; once the queue is
/// empty, dpkg-query, apt-cache and apt-get from its [`AptTwin`] when it has one, and anything
/// else with exit 0 and no output.
#[cfg(any(test, feature = "testkit"))]
#[derive(Debug, Default)]
pub struct ScriptedRunner {
    calls: Mutex<Vec<Invocation>>,
    replies: Mutex<VecDeque<Result<Output, String>>>,
    apt: Mutex<Option<AptTwin>>,
}

/// dpkg and apt as a machine's packages answer them: what is installed, and what the sources
/// offer, which `apt-get install` installs.
#[cfg(any(test, feature = "testkit"))]
#[derive(Debug, Default, Clone)]
pub struct AptTwin {
    pub installed: std::collections::BTreeMap<String, String>,
    pub available: std::collections::BTreeMap<String, String>,
}

#[cfg(any(test, feature = "testkit"))]
impl AptTwin {
    fn answer(&mut self, command: &Invocation) -> Option<Output> {
        let ok = |stdout: String| Output {
            code: Some(0),
            stdout,
            stderr: String::new(),
        };
        let args: Vec<&str> = command.args.iter().map(String::as_str).collect();
        match (command.program.as_str(), args.as_slice()) {
            ("dpkg-query", ["-W", "-f", format, packages @ ..]) => {
                let mut stdout = String::new();
                let mut unknown = false;
                for package in packages {
                    match self.installed.get(*package) {
                        Some(version) => {
                            stdout.push_str(
                                &format
                                    .replace("${Package}", package)
                                    .replace("${Status}", "install ok installed")
                                    .replace("${Version}", version)
                                    .replace("\\n", "\n"),
                            );
                        }
                        None => unknown = true,
                    }
                }
                Some(Output {
                    code: Some(i32::from(unknown)),
                    ..ok(stdout)
                })
            }
            ("apt-cache", ["policy", packages @ ..]) => {
                let mut stdout = String::new();
                for package in packages {
                    let installed = self
                        .installed
                        .get(*package)
                        .map_or("(none)", String::as_str);
                    let candidate = self
                        .available
                        .get(*package)
                        .map_or(installed, String::as_str);
                    stdout.push_str(&format!(
                        "{package}:\n  Installed: {installed}\n  Candidate: {candidate}\n"
                    ));
                }
                Some(ok(stdout))
            }
            ("apt-get", _) => {
                if let Some(at) = args.iter().position(|a| *a == "install") {
                    for package in args[at + 1..].iter().filter(|a| !a.starts_with('-')) {
                        let upgrade_only = args.contains(&"--only-upgrade");
                        if upgrade_only && !self.installed.contains_key(*package) {
                            continue;
                        }
                        if let Some(version) = self.available.get(*package) {
                            self.installed
                                .insert((*package).to_owned(), version.clone());
                        }
                    }
                }
                Some(ok(String::new()))
            }
            _ => None,
        }
    }
}

#[cfg(any(test, feature = "testkit"))]
impl ScriptedRunner {
    pub fn new() -> ScriptedRunner {
        ScriptedRunner::default()
    }

    /// Queues the output of the next command.
    pub fn reply(&self, output: Output) {
        if let Ok(mut replies) = self.replies.lock() {
            replies.push_back(Ok(output));
        }
    }

    /// Queues a failure to start the next command.
    pub fn fail_to_spawn(&self, message: &str) {
        if let Ok(mut replies) = self.replies.lock() {
            replies.push_back(Err(message.to_owned()));
        }
    }

    /// Answers dpkg and apt from `apt` from now on.
    pub fn set_packages(&self, apt: AptTwin) {
        if let Ok(mut twin) = self.apt.lock() {
            *twin = Some(apt);
        }
    }

    /// What the machine's packages are now (None without an [`AptTwin`]).
    pub fn packages(&self) -> Option<AptTwin> {
        self.apt.lock().ok().and_then(|twin| twin.clone())
    }

    /// Every command run so far.
    pub fn calls(&self) -> Vec<Invocation> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// How many commands ran `program` with `first_arg` as their first argument.
    pub fn count(&self, program: &str, first_arg: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| {
                c.program == program && c.args.first().map(String::as_str) == Some(first_arg)
            })
            .count()
    }
}

#[cfg(any(test, feature = "testkit"))]
impl Runner for ScriptedRunner {
    fn run(&self, command: &Invocation) -> Result<Output, ProcessError> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(command.clone());
        }
        let mut reply = self.replies.lock().ok().and_then(|mut r| r.pop_front());
        if reply.is_none()
            && let Ok(mut apt) = self.apt.lock()
            && let Some(twin) = apt.as_mut()
        {
            reply = twin.answer(command).map(Ok);
        }
        match reply {
            Some(Ok(output)) => Ok(output),
            Some(Err(message)) => Err(ProcessError::Spawn {
                command: command.to_string(),
                source: std::io::Error::other(message),
            }),
            None => Ok(Output {
                code: Some(0),
                ..Output::default()
            }),
        }
    }
}

/// keystone-manage, run as the `keystone` user through one function ([`KeystoneManage::run`]).
/// Each call costs about 3 s of Python start-up, so callers run it only when needed.
pub struct KeystoneManage<'r> {
    runner: &'r dyn Runner,
    user: String,
    /// None: Keystone's default, /etc/keystone/keystone.conf.
    config_file: Option<PathBuf>,
}

/// A phase of Keystone's rolling schema upgrade, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaPhase {
    Expand,
    Migrate,
    Contract,
}

impl SchemaPhase {
    fn flag(self) -> &'static str {
        match self {
            SchemaPhase::Expand => "--expand",
            SchemaPhase::Migrate => "--migrate",
            SchemaPhase::Contract => "--contract",
        }
    }
}

/// keystone-manage bootstrap: the charm's admin user, project and role, the region and
/// Keystone's own endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    pub username: String,
    /// Passed in OS_BOOTSTRAP_PASSWORD, never on the command line.
    pub password: Sensitive<String>,
    pub project: String,
    pub role: String,
    pub service_name: String,
    pub region: String,
    pub admin_url: String,
    pub internal_url: String,
    pub public_url: String,
}

impl<'r> KeystoneManage<'r> {
    pub fn new(runner: &'r dyn Runner) -> KeystoneManage<'r> {
        KeystoneManage {
            runner,
            user: "keystone".to_owned(),
            config_file: None,
        }
    }

    /// Reads this keystone.conf instead of the default (tests, a non-standard layout).
    pub fn with_config_file(mut self, path: impl Into<PathBuf>) -> KeystoneManage<'r> {
        self.config_file = Some(path.into());
        self
    }

    /// Runs `keystone-manage [--config-file F] <args>` as keystone; fails unless it exits 0.
    pub fn run(
        &self,
        args: &[&str],
        env: Vec<(String, Sensitive<String>)>,
        timeout: Duration,
    ) -> Result<Output, ProcessError> {
        let mut command = Invocation::new("keystone-manage")
            .as_user(&self.user)
            .timeout(timeout);
        if let Some(file) = &self.config_file {
            command = command.arg("--config-file").arg(file.display().to_string());
        }
        command = command.args(args.iter().copied());
        command.env = env;
        run_checked(self.runner, &command).map_err(|e| match e {
            // Keystone logs through logging.conf, so its errors are in its log, not on stderr.
            ProcessError::Failed {
                command,
                status,
                detail,
            } => ProcessError::Failed {
                command,
                status,
                detail: format!("{detail}; Keystone's log file has the details"),
            },
            other => other,
        })
    }

    /// Creates or upgrades Keystone's database schema (idempotent; minutes on a big database).
    pub fn db_sync(&self) -> Result<(), ProcessError> {
        self.run(&["db_sync"], Vec::new(), Duration::from_secs(30 * 60))
            .map(drop)
    }

    /// One phase of Keystone's rolling schema upgrade (`db_sync --expand`, `--migrate`,
    /// `--contract`): old and new Keystone both serve between expand and contract.
    pub fn db_sync_phase(&self, phase: SchemaPhase) -> Result<(), ProcessError> {
        self.run(
            &["db_sync", phase.flag()],
            Vec::new(),
            Duration::from_secs(30 * 60),
        )
        .map(drop)
    }

    /// `keystone-manage doctor`: what it finds wrong in the deployment (its output), or None
    /// when it finds nothing. It exits non-zero when it finds something, which is a report,
    /// not a failure of the charm.
    pub fn doctor(&self) -> Result<Option<String>, ProcessError> {
        let mut command = Invocation::new("keystone-manage")
            .as_user(&self.user)
            .timeout(Duration::from_secs(300));
        if let Some(file) = &self.config_file {
            command = command.arg("--config-file").arg(file.display().to_string());
        }
        let output = self.runner.run(&command.arg("doctor"))?;
        let found = [output.stdout.trim(), output.stderr.trim()]
            .into_iter()
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        Ok((!output.success()).then_some(found))
    }

    /// Bootstraps Keystone (idempotent: existing objects are kept).
    pub fn bootstrap(&self, b: &Bootstrap) -> Result<(), ProcessError> {
        let args = [
            "bootstrap",
            "--bootstrap-username",
            &b.username,
            "--bootstrap-project-name",
            &b.project,
            "--bootstrap-role-name",
            &b.role,
            "--bootstrap-service-name",
            &b.service_name,
            "--bootstrap-region-id",
            &b.region,
            "--bootstrap-admin-url",
            &b.admin_url,
            "--bootstrap-internal-url",
            &b.internal_url,
            "--bootstrap-public-url",
            &b.public_url,
        ];
        let env = vec![("OS_BOOTSTRAP_PASSWORD".to_owned(), b.password.clone())];
        self.run(&args, env, Duration::from_secs(5 * 60)).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Invocation {
        Invocation::new("/bin/sh").arg("-c").arg(script)
    }

    #[test]
    fn output_and_exit_code_are_captured() {
        let out = SystemRunner
            .run(&sh("echo out; echo err >&2; exit 3"))
            .unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        let err = run_checked(&SystemRunner, &sh("echo broken >&2; exit 2")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/bin/sh -c echo broken >&2; exit 2 failed (exit code 2): broken"
        );
    }

    #[test]
    fn a_command_past_its_time_limit_is_killed_with_what_it_started() {
        let dir = std::env::temp_dir().join(format!("process-timeout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("survived");
        // The grandchild would write the marker after the limit if it were not killed too.
        let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let err = SystemRunner
            .run(&sh(&script).timeout(Duration::from_millis(300)))
            .unwrap_err();
        assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
        thread::sleep(Duration::from_secs(3));
        assert!(!marker.exists(), "the grandchild outlived the timeout");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_daemon_holding_the_pipes_does_not_hang_the_caller() {
        let out = SystemRunner
            .run(&sh("sleep 5 & echo started").timeout(Duration::from_secs(20)))
            .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout, "started\n");
    }

    #[test]
    fn commands_run_as_the_keystone_user_with_secrets_in_the_environment() {
        let out = run_checked(
            &SystemRunner,
            &sh("id -un; echo \"$SECRET\"")
                .as_user("keystone")
                .env("SECRET", Sensitive::new("hunter2".to_owned())),
        )
        .expect("the keystone user exists (scripts/install-real-stack installs keystone)");
        assert_eq!(out.stdout, "keystone\nhunter2\n");
        let shown = format!(
            "{} {:?}",
            sh("true").env("SECRET", Sensitive::new("hunter2".to_owned())),
            sh("true").env("SECRET", Sensitive::new("hunter2".to_owned()))
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(matches!(
            SystemRunner.run(&sh("true").as_user("no-such-user-here")),
            Err(ProcessError::NoSuchUser { .. })
        ));
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = SystemRunner
            .run(&Invocation::new("/nonexistent/keystone-manage"))
            .unwrap_err();
        assert!(matches!(err, ProcessError::Spawn { .. }));
        assert!(
            err.to_string()
                .starts_with("cannot run /nonexistent/keystone-manage")
        );
    }

    #[test]
    fn keystone_manage_runs_as_keystone_and_keeps_the_password_off_the_command_line() {
        let runner = ScriptedRunner::new();
        let manage = KeystoneManage::new(&runner).with_config_file("/srv/k.conf");
        manage.db_sync().unwrap();
        manage
            .bootstrap(&Bootstrap {
                username: "_charm-keystone-admin".into(),
                password: Sensitive::new("pw-123".into()),
                project: "admin".into(),
                role: "admin-role".into(),
                service_name: "keystone".into(),
                region: "RegionOne".into(),
                admin_url: "http://10.0.0.1:35357/v3".into(),
                internal_url: "http://10.0.0.1:5000/v3".into(),
                public_url: "http://10.0.0.1:5000/v3".into(),
            })
            .unwrap();
        let calls = runner.calls();
        assert_eq!(calls.len(), 2);
        assert!(calls.iter().all(|c| c.user.as_deref() == Some("keystone")));
        assert_eq!(
            calls[0].to_string(),
            "keystone-manage --config-file /srv/k.conf db_sync"
        );
        assert!(!calls[1].args.iter().any(|a| a.contains("pw-123")));
        assert_eq!(calls[1].env[0].0, "OS_BOOTSTRAP_PASSWORD");
        assert_eq!(calls[1].env[0].1.expose(), "pw-123");
        assert_eq!(runner.count("keystone-manage", "--config-file"), 2);
    }

    #[test]
    fn a_failed_keystone_manage_reports_its_error_without_python_noise() {
        let runner = ScriptedRunner::new();
        runner.reply(Output {
            code: Some(1),
            stdout: String::new(),
            stderr: "ERROR keystone (pymysql.err.OperationalError) (1045, \"Access denied\")\n\
                     Exception ignored in: <module 'threading' from '/usr/lib/python3.11/threading.py'>\n\
                     Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/eventlet/green/thread.py\", line 1\n\
                     AttributeError: 'NoneType' object has no attribute 'getcurrent'\n"
                .into(),
        });
        let err = KeystoneManage::new(&runner).db_sync().unwrap_err();
        assert_eq!(
            err.to_string(),
            "keystone-manage db_sync failed (exit code 1): ERROR keystone (pymysql.err.OperationalError) \
             (1045, \"Access denied\"); Keystone's log file has the details"
        );
    }
}
