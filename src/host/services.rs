//! The services Keystone needs (Apache, memcached, MariaDB for tests) and Apache's sites and
//! modules, controlled with systemd when it runs and without it otherwise (SysV `service`,
//! `apache2ctl`), because containers and test machines often have no systemd.
//!
//! Without systemd, `apache2ctl stop` returns before Apache has exited (its mod_wsgi daemons take
//! seconds), and a start right after it fails on the busy port. So a stop remembers the process
//! from the PID file and waits until it is gone, bounded; a restart checks the configuration
//! first, so a broken vhost never takes down a working Apache.

use std::path::{Path, PathBuf};
#[cfg(any(test, feature = "testkit"))]
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::process::{Invocation, ProcessError, Runner, run_checked};
use crate::paths;
use crate::secret::Sensitive;

/// A service the charm controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Apache2,
    Memcached,
    Haproxy,
    Mariadb,
}

impl Service {
    /// Its name for systemctl and service.
    pub fn name(self) -> &'static str {
        match self {
            Service::Apache2 => "apache2",
            Service::Memcached => "memcached",
            Service::Haproxy => "haproxy",
            Service::Mariadb => "mariadb",
        }
    }
}

/// How services are started on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitSystem {
    Systemd,
    /// SysV init scripts through `service` (and apache2ctl for Apache).
    SysV,
}

impl InitSystem {
    /// systemd's own test (sd_booted): /run/systemd/system exists only when systemd is PID 1.
    pub fn detect() -> InitSystem {
        if Path::new("/run/systemd/system").is_dir() {
            InitSystem::Systemd
        } else {
            InitSystem::SysV
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("Apache's configuration is not valid, so Apache was left as it was: {detail}")]
    ApacheConfig { detail: String },
    #[error(
        "Apache (pid {pid}) did not exit within {seconds} s of being stopped; see its error log"
    )]
    StopTimeout { pid: i32, seconds: u64 },
    #[error(
        "Apache did not start: no running process in {pid_file} after {seconds} s; see its error log"
    )]
    NotStarted { pid_file: PathBuf, seconds: u64 },
    #[error("haproxy's admin socket {path} did not take {command:?}: {detail}")]
    HaproxySocket {
        path: &'static str,
        command: String,
        detail: String,
    },
    #[error(
        "haproxy did not take the renewed certificate {path} in its running process: \
         {answer}"
    )]
    HaproxyCertificate { path: String, answer: String },
    #[error("there is no Apache {kind} {name} ({path} is missing)")]
    NoSuchApacheItem {
        kind: &'static str,
        name: String,
        path: PathBuf,
    },
    #[error("cannot remove {path}, which stands where the charm's site is linked: {source}")]
    Replace {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Service control.
pub trait Services {
    fn start(&self, service: Service) -> Result<(), ServiceError>;
    /// Stops and, for Apache, waits until the old process has exited.
    fn stop(&self, service: Service) -> Result<(), ServiceError>;
    fn restart(&self, service: Service) -> Result<(), ServiceError>;
    /// Re-reads configuration without dropping requests (Apache: graceful); starts it if stopped.
    fn reload(&self, service: Service) -> Result<(), ServiceError>;
    fn is_running(&self, service: Service) -> Result<bool, ServiceError>;
    /// a2ensite; true when the site was not enabled before.
    fn enable_site(&self, site: &str) -> Result<bool, ServiceError>;
    /// a2dissite; true when the site was enabled before.
    fn disable_site(&self, site: &str) -> Result<bool, ServiceError>;
    /// a2enmod; true when the module was not enabled before.
    fn enable_module(&self, module: &str) -> Result<bool, ServiceError>;
    /// `apache2ctl configtest`.
    fn apache_config_test(&self) -> Result<(), ServiceError>;
    /// One command to the running haproxy over its admin socket; its answer.
    fn haproxy_command(&self, command: &str) -> Result<String, ServiceError>;
    /// Replaces the certificate haproxy loaded from `path` (`crt`) with `pem` (certificate,
    /// chain and key) in the running process, over its admin socket: connections keep going,
    /// new handshakes present the new certificate. The key appears in no error.
    fn replace_haproxy_certificate(
        &self,
        path: &str,
        pem: &Sensitive<String>,
    ) -> Result<(), ServiceError>;
    /// Waits, up to `timeout`, until this machine's haproxy counts `server` down in every
    /// Keystone backend (its health check fails: the unit is draining), then one more check
    /// interval, by which the other units' haproxy, checking at the same pace, count it down
    /// too. False when the timeout passed first.
    fn wait_until_drained(&self, server: &str, timeout: Duration) -> Result<bool, ServiceError>;
    /// Stops and disables the distribution's own Keystone service (Debian's uWSGI service,
    /// Ubuntu's keystone Apache site), so only the charm's vhost serves Keystone.
    fn disable_distribution_keystone(&self) -> Result<(), ServiceError>;
}

/// Which Apache to control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apache {
    /// None: the system's Apache (apache2ctl, /etc/apache2/envvars). Some: `apache2 -f <file>`,
    /// an instance with its own top-level configuration (tests).
    pub config_file: Option<PathBuf>,
    pub pid_file: PathBuf,
    /// Where sites-available, sites-enabled and mods-enabled are.
    pub confdir: PathBuf,
    /// How long a stop may take (mod_wsgi daemons get 5 s to finish their requests).
    pub stop_timeout: Duration,
    pub start_timeout: Duration,
}

const SYSTEM_CONFDIR: &str = "/etc/apache2";

impl Apache {
    /// The system's Apache (Debian's layout).
    pub fn system() -> Apache {
        Apache {
            config_file: None,
            pid_file: PathBuf::from("/var/run/apache2/apache2.pid"),
            confdir: PathBuf::from(SYSTEM_CONFDIR),
            stop_timeout: Duration::from_secs(60),
            start_timeout: Duration::from_secs(30),
        }
    }

    /// An Apache run from its own top-level configuration file, which names `pid_file`.
    pub fn instance(config_file: &Path, pid_file: &Path) -> Apache {
        Apache {
            config_file: Some(config_file.to_owned()),
            pid_file: pid_file.to_owned(),
            ..Apache::system()
        }
    }

    fn ctl(&self, verb: &str) -> Invocation {
        match &self.config_file {
            None => Invocation::new("apache2ctl").arg(verb),
            Some(file) => Invocation::new("apache2")
                .arg("-f")
                .arg(file.display().to_string())
                .arg("-k")
                .arg(verb),
        }
    }

    fn config_test_command(&self) -> Invocation {
        match &self.config_file {
            None => Invocation::new("apache2ctl").arg("configtest"),
            Some(file) => Invocation::new("apache2")
                .arg("-f")
                .arg(file.display().to_string())
                .arg("-t"),
        }
    }

    /// The running Apache parent, from its PID file.
    pub fn running(&self) -> Option<ProcessId> {
        let pid = std::fs::read_to_string(&self.pid_file).ok()?;
        ProcessId::of(pid.trim().parse().ok()?)
    }
}

/// A process, told apart from a later one that reuses its PID by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: i32,
    start_time: u64,
}

impl ProcessId {
    /// The process `pid`, if it is alive (a zombie is not: its parent may never reap it, and it
    /// holds no port).
    pub fn of(pid: i32) -> Option<ProcessId> {
        let (state, start_time) = proc_stat(pid)?;
        (state != 'Z' && state != 'X').then_some(ProcessId { pid, start_time })
    }

    pub fn is_alive(&self) -> bool {
        ProcessId::of(self.pid).is_some_and(|now| now.start_time == self.start_time)
    }
}

/// State and start time from /proc/<pid>/stat (fields 3 and 22; the name in field 2 may hold
/// spaces and parentheses, so fields are counted after its last `)`).
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, start_time))
}

/// Waits until `check` holds, polling; false at the deadline.
fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// How often haproxy checks a Keystone backend (`inter` in templates/haproxy.cfg).
const HAPROXY_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Whether `server` takes no new request in any Keystone backend of haproxy's `show stat` CSV:
/// each of its rows is DOWN or in maintenance (`UP 1/3` is still up: a check failed, not
/// yet enough of them).
pub fn serves_no_keystone_backend(stats: &str, server: &str) -> bool {
    let mut lines = stats.lines();
    let Some(header) = lines.next() else {
        return true;
    };
    let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let column = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(proxy), Some(name), Some(status)) =
        (column("pxname"), column("svname"), column("status"))
    else {
        return true;
    };
    lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|row| {
            row.get(proxy).is_some_and(|p| {
                p.starts_with("keystone-public") || p.starts_with("keystone-admin")
            }) && row.get(name) == Some(&server)
        })
        .all(|row| {
            row.get(status)
                .is_some_and(|s| s.starts_with("DOWN") || s.starts_with("MAINT"))
        })
}

/// Sends `text` to haproxy's admin socket and returns its answer; errors name `command` only
/// (`text` may carry a key).
fn haproxy_exchange(command: &str, text: &str) -> Result<String, ServiceError> {
    use std::io::{Read as _, Write as _};
    let failed = |detail: std::io::Error| ServiceError::HaproxySocket {
        path: paths::HAPROXY_ADMIN_SOCKET,
        command: command.to_owned(),
        detail: detail.to_string(),
    };
    let mut socket =
        std::os::unix::net::UnixStream::connect(paths::HAPROXY_ADMIN_SOCKET).map_err(failed)?;
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(failed)?;
    socket.write_all(text.as_bytes()).map_err(failed)?;
    // haproxy answers and closes the connection (no `prompt` mode).
    let mut answer = String::new();
    socket.read_to_string(&mut answer).map_err(failed)?;
    Ok(answer)
}

/// Services of this machine.
pub struct HostServices<'r> {
    runner: &'r dyn Runner,
    init: InitSystem,
    apache: Apache,
}

impl<'r> HostServices<'r> {
    /// The system's services, with the init system this machine runs.
    pub fn new(runner: &'r dyn Runner) -> HostServices<'r> {
        HostServices {
            runner,
            init: InitSystem::detect(),
            apache: Apache::system(),
        }
    }

    pub fn with_init(mut self, init: InitSystem) -> HostServices<'r> {
        self.init = init;
        self
    }

    pub fn with_apache(mut self, apache: Apache) -> HostServices<'r> {
        self.apache = apache;
        self
    }

    /// systemd manages the system's Apache; an instance of our own is always run directly.
    fn systemd_for(&self, service: Service) -> bool {
        self.init == InitSystem::Systemd
            && !(service == Service::Apache2 && self.apache.config_file.is_some())
    }

    fn run(&self, command: Invocation) -> Result<(), ServiceError> {
        run_checked(self.runner, &command)?;
        Ok(())
    }

    fn control(&self, service: Service, verb: &str) -> Result<(), ServiceError> {
        if self.init == InitSystem::Systemd {
            self.run(Invocation::new("systemctl").args([verb, service.name()]))
        } else {
            self.run(Invocation::new("service").args([service.name(), verb]))
        }
    }

    fn apache_start(&self) -> Result<(), ServiceError> {
        if self.apache.running().is_some() {
            return Ok(());
        }
        self.run(self.apache.ctl("start"))?;
        // Apache writes its PID file once it listens: after this, requests reach it.
        if wait_until(self.apache.start_timeout, || {
            self.apache.running().is_some()
        }) {
            Ok(())
        } else {
            Err(ServiceError::NotStarted {
                pid_file: self.apache.pid_file.clone(),
                seconds: self.apache.start_timeout.as_secs(),
            })
        }
    }

    fn apache_stop(&self) -> Result<(), ServiceError> {
        let Some(process) = self.apache.running() else {
            return Ok(());
        };
        self.run(self.apache.ctl("stop"))?;
        if wait_until(self.apache.stop_timeout, || !process.is_alive()) {
            Ok(())
        } else {
            Err(ServiceError::StopTimeout {
                pid: process.pid,
                seconds: self.apache.stop_timeout.as_secs(),
            })
        }
    }

    fn a2(&self, tool: &str, name: &str) -> Result<(), ServiceError> {
        let mut command = Invocation::new(tool).args(["-q", name]);
        if self.apache.confdir != Path::new(SYSTEM_CONFDIR) {
            command = command.env(
                "APACHE_CONFDIR",
                self.apache.confdir.display().to_string().into(),
            );
        }
        self.run(command)
    }

    fn toggle(
        &self,
        kind: &'static str,
        name: &str,
        suffix: &str,
        enable: bool,
    ) -> Result<bool, ServiceError> {
        let dir = |state: &str| self.apache.confdir.join(format!("{kind}s-{state}"));
        let enabled = dir("enabled").join(format!("{name}{suffix}"));
        let entry = enabled.symlink_metadata();
        // A file of its own where a2ensite would put a link is another charm's site under this
        // name (the Python charm writes its vhost straight into sites-enabled): Apache would go
        // on serving it, so it gives way to the link.
        if enable && entry.as_ref().is_ok_and(|m| !m.file_type().is_symlink()) {
            std::fs::remove_file(&enabled).map_err(|source| ServiceError::Replace {
                path: enabled.clone(),
                source,
            })?;
            tracing::info!(
                "removed {}, a file where a2ensite links the charm's {kind}",
                enabled.display()
            );
        }
        let was_enabled = enabled.symlink_metadata().is_ok();
        if was_enabled == enable {
            return Ok(false);
        }
        let available = dir("available").join(format!("{name}{suffix}"));
        if enable && !available.exists() {
            return Err(ServiceError::NoSuchApacheItem {
                kind,
                name: name.to_owned(),
                path: available,
            });
        }
        let tool = match (kind, enable) {
            ("site", true) => "a2ensite",
            ("site", false) => "a2dissite",
            (_, true) => "a2enmod",
            (_, false) => "a2dismod",
        };
        self.a2(tool, name)?;
        Ok(true)
    }
}

impl Services for HostServices<'_> {
    fn start(&self, service: Service) -> Result<(), ServiceError> {
        match service {
            Service::Apache2 if !self.systemd_for(service) => self.apache_start(),
            _ => self.control(service, "start"),
        }
    }

    fn stop(&self, service: Service) -> Result<(), ServiceError> {
        match service {
            Service::Apache2 if !self.systemd_for(service) => self.apache_stop(),
            _ => self.control(service, "stop"),
        }
    }

    fn restart(&self, service: Service) -> Result<(), ServiceError> {
        if service == Service::Apache2 {
            self.apache_config_test()?;
            if !self.systemd_for(service) {
                self.apache_stop()?;
                return self.apache_start();
            }
        }
        self.control(service, "restart")
    }

    fn reload(&self, service: Service) -> Result<(), ServiceError> {
        match service {
            Service::Apache2 => {
                self.apache_config_test()?;
                if self.systemd_for(service) {
                    self.control(service, "reload")
                } else if self.apache.running().is_some() {
                    self.run(self.apache.ctl("graceful"))
                } else {
                    self.apache_start()
                }
            }
            // Checked first: a reload of a configuration haproxy refuses would stop it.
            Service::Haproxy => {
                self.run(Invocation::new("haproxy").args(["-c", "-q", "-f", paths::HAPROXY_CFG]))?;
                match self.is_running(service)? {
                    true => self.control(service, "reload"),
                    false => self.control(service, "start"),
                }
            }
            // memcached has no reload; MariaDB's re-reads little worth a reload.
            _ => self.restart(service),
        }
    }

    fn is_running(&self, service: Service) -> Result<bool, ServiceError> {
        if service == Service::Apache2 && !self.systemd_for(service) {
            return Ok(self.apache.running().is_some());
        }
        if service == Service::Haproxy {
            // Its pid file, as the init script and the systemd unit both write it: every hook
            // asks, and this costs no process.
            let pid = std::fs::read_to_string(paths::HAPROXY_PID).unwrap_or_default();
            return Ok(pid.trim().parse().ok().and_then(ProcessId::of).is_some());
        }
        let command = if self.init == InitSystem::Systemd {
            Invocation::new("systemctl").args(["is-active", "--quiet", service.name()])
        } else {
            Invocation::new("service").args([service.name(), "status"])
        };
        Ok(self.runner.run(&command)?.success())
    }

    fn enable_site(&self, site: &str) -> Result<bool, ServiceError> {
        self.toggle("site", site, ".conf", true)
    }

    fn disable_site(&self, site: &str) -> Result<bool, ServiceError> {
        self.toggle("site", site, ".conf", false)
    }

    fn enable_module(&self, module: &str) -> Result<bool, ServiceError> {
        self.toggle("mod", module, ".load", true)
    }

    fn haproxy_command(&self, command: &str) -> Result<String, ServiceError> {
        haproxy_exchange(command, &format!("{command}\n"))
    }

    fn replace_haproxy_certificate(
        &self,
        path: &str,
        pem: &Sensitive<String>,
    ) -> Result<(), ServiceError> {
        let refused = |answer: String| ServiceError::HaproxyCertificate {
            path: path.to_owned(),
            answer: answer.trim().to_owned(),
        };
        // The payload ends at the first empty line, so the PEM goes without any.
        let payload: String = pem
            .expose()
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| format!("{line}\n"))
            .collect();
        let set = format!("set ssl cert {path}");
        let answer = haproxy_exchange(&set, &format!("{set} <<\n{payload}\n"))?;
        if !answer.starts_with("Transaction") {
            let _ = self.haproxy_command(&format!("abort ssl cert {path}"));
            return Err(refused(answer));
        }
        let answer = self.haproxy_command(&format!("commit ssl cert {path}"))?;
        if !answer.contains("Success!") {
            let _ = self.haproxy_command(&format!("abort ssl cert {path}"));
            return Err(refused(answer));
        }
        Ok(())
    }

    fn wait_until_drained(&self, server: &str, timeout: Duration) -> Result<bool, ServiceError> {
        let counted_down = wait_until(timeout, || {
            // No stats (haproxy not running): no haproxy here sends it anything.
            let stats = self.haproxy_command("show stat").unwrap_or_default();
            serves_no_keystone_backend(&stats, server)
        });
        if counted_down {
            thread::sleep(HAPROXY_CHECK_INTERVAL);
        }
        Ok(counted_down)
    }

    fn apache_config_test(&self) -> Result<(), ServiceError> {
        let output = self.runner.run(&self.apache.config_test_command())?;
        if output.success() {
            Ok(())
        } else {
            Err(ServiceError::ApacheConfig {
                detail: output.error_summary(),
            })
        }
    }

    fn disable_distribution_keystone(&self) -> Result<(), ServiceError> {
        if self.init == InitSystem::Systemd {
            let enabled = self
                .runner
                .run(&Invocation::new("systemctl").args(["is-enabled", "--quiet", "keystone"]))?
                .success();
            let active = self
                .runner
                .run(&Invocation::new("systemctl").args(["is-active", "--quiet", "keystone"]))?
                .success();
            if enabled || active {
                self.run(Invocation::new("systemctl").args(["disable", "--now", "keystone"]))?;
            }
        } else if Path::new("/etc/init.d/keystone").exists() {
            self.run(Invocation::new("update-rc.d").args(["keystone", "disable"]))?;
            let running = self
                .runner
                .run(&Invocation::new("service").args(["keystone", "status"]))?
                .success();
            if running {
                self.run(Invocation::new("service").args(["keystone", "stop"]))?;
            }
        }
        for site in ["keystone", "wsgi-keystone"] {
            self.disable_site(site)?;
        }
        Ok(())
    }
}

/// What [`RecordingServices`] was asked to do.
#[cfg(any(test, feature = "testkit"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAction {
    Start(Service),
    Stop(Service),
    Restart(Service),
    Reload(Service),
    EnableSite(String),
    DisableSite(String),
    EnableModule(String),
    ConfigTest,
    DisableDistributionKeystone,
    HaproxyCommand(String),
    /// The certificate file's path (never the key).
    ReplaceHaproxyCertificate(String),
    WaitUntilDrained(String),
}

/// A test twin: records every action and keeps which services run and what is enabled.
#[cfg(any(test, feature = "testkit"))]
#[derive(Debug, Default)]
pub struct RecordingServices {
    actions: Mutex<Vec<ServiceAction>>,
}

#[cfg(any(test, feature = "testkit"))]
impl RecordingServices {
    pub fn new() -> RecordingServices {
        RecordingServices::default()
    }

    pub fn actions(&self) -> Vec<ServiceAction> {
        self.actions.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// How many times `action` was asked for.
    pub fn count(&self, action: &ServiceAction) -> usize {
        self.actions().iter().filter(|a| *a == action).count()
    }

    fn record(&self, action: ServiceAction) {
        if let Ok(mut actions) = self.actions.lock() {
            actions.push(action);
        }
    }

    /// Replays the actions: whether `service` runs now.
    fn running(&self, service: Service) -> bool {
        self.actions().iter().fold(false, |running, a| match a {
            ServiceAction::Start(s) | ServiceAction::Restart(s) | ServiceAction::Reload(s)
                if *s == service =>
            {
                true
            }
            ServiceAction::Stop(s) if *s == service => false,
            _ => running,
        })
    }

    fn enabled(&self, on: &ServiceAction, off: Option<&ServiceAction>) -> bool {
        self.actions().iter().fold(false, |enabled, a| {
            if a == on {
                true
            } else if Some(a) == off {
                false
            } else {
                enabled
            }
        })
    }
}

#[cfg(any(test, feature = "testkit"))]
impl Services for RecordingServices {
    fn start(&self, service: Service) -> Result<(), ServiceError> {
        self.record(ServiceAction::Start(service));
        Ok(())
    }
    fn stop(&self, service: Service) -> Result<(), ServiceError> {
        self.record(ServiceAction::Stop(service));
        Ok(())
    }
    fn restart(&self, service: Service) -> Result<(), ServiceError> {
        self.record(ServiceAction::Restart(service));
        Ok(())
    }
    fn reload(&self, service: Service) -> Result<(), ServiceError> {
        self.record(ServiceAction::Reload(service));
        Ok(())
    }
    fn is_running(&self, service: Service) -> Result<bool, ServiceError> {
        Ok(self.running(service))
    }
    fn enable_site(&self, site: &str) -> Result<bool, ServiceError> {
        let on = ServiceAction::EnableSite(site.to_owned());
        let changed = !self.enabled(&on, Some(&ServiceAction::DisableSite(site.to_owned())));
        self.record(on);
        Ok(changed)
    }
    fn disable_site(&self, site: &str) -> Result<bool, ServiceError> {
        let changed = self.enabled(
            &ServiceAction::EnableSite(site.to_owned()),
            Some(&ServiceAction::DisableSite(site.to_owned())),
        );
        self.record(ServiceAction::DisableSite(site.to_owned()));
        Ok(changed)
    }
    fn enable_module(&self, module: &str) -> Result<bool, ServiceError> {
        let on = ServiceAction::EnableModule(module.to_owned());
        let changed = !self.enabled(&on, None);
        self.record(on);
        Ok(changed)
    }
    fn haproxy_command(&self, command: &str) -> Result<String, ServiceError> {
        self.record(ServiceAction::HaproxyCommand(command.to_owned()));
        Ok(String::new())
    }
    fn replace_haproxy_certificate(
        &self,
        path: &str,
        _pem: &Sensitive<String>,
    ) -> Result<(), ServiceError> {
        self.record(ServiceAction::ReplaceHaproxyCertificate(path.to_owned()));
        Ok(())
    }
    fn wait_until_drained(&self, server: &str, _timeout: Duration) -> Result<bool, ServiceError> {
        self.record(ServiceAction::WaitUntilDrained(server.to_owned()));
        Ok(true)
    }
    fn apache_config_test(&self) -> Result<(), ServiceError> {
        self.record(ServiceAction::ConfigTest);
        Ok(())
    }
    fn disable_distribution_keystone(&self) -> Result<(), ServiceError> {
        self.record(ServiceAction::DisableDistributionKeystone);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::process::{Output, ScriptedRunner, SystemRunner};
    use super::*;

    fn failed(stderr: &str) -> Output {
        Output {
            code: Some(1),
            stderr: stderr.to_owned(),
            ..Output::default()
        }
    }

    #[test]
    fn a_server_is_drained_once_every_keystone_backend_counts_it_down() {
        let stats = |public: &str, admin: &str| {
            format!(
                "# pxname,svname,qcur,status,weight\n\
                 keystone-public,FRONTEND,,OPEN,\n\
                 keystone-public,keystone-0,0,{public},1\n\
                 keystone-public,keystone-1,0,UP,1\n\
                 keystone-admin,keystone-0,0,{admin},1\n\
                 keystone-cache,keystone-0,0,UP,1\n"
            )
        };
        assert!(!serves_no_keystone_backend(
            &stats("UP", "UP"),
            "keystone-0"
        ));
        assert!(!serves_no_keystone_backend(
            &stats("UP 1/3", "DOWN"),
            "keystone-0"
        ));
        assert!(serves_no_keystone_backend(
            &stats("DOWN", "MAINT"),
            "keystone-0"
        ));
        // The cache's backend is not Keystone's: the shared cache stays up.
        assert!(serves_no_keystone_backend(
            &stats("DOWN 1/2", "DOWN"),
            "keystone-0"
        ));
        // A server haproxy does not list takes nothing from it.
        assert!(serves_no_keystone_backend(&stats("UP", "UP"), "keystone-7"));
        assert!(serves_no_keystone_backend("", "keystone-0"));
    }

    fn commands(runner: &ScriptedRunner) -> Vec<String> {
        runner.calls().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn systemd_machines_use_systemctl() {
        let runner = ScriptedRunner::new();
        let services = HostServices::new(&runner).with_init(InitSystem::Systemd);
        services.restart(Service::Apache2).unwrap();
        services.reload(Service::Apache2).unwrap();
        services.start(Service::Memcached).unwrap();
        services.reload(Service::Memcached).unwrap();
        assert!(services.is_running(Service::Mariadb).unwrap());
        assert_eq!(
            commands(&runner),
            [
                "apache2ctl configtest",
                "systemctl restart apache2",
                "apache2ctl configtest",
                "systemctl reload apache2",
                "systemctl start memcached",
                "systemctl restart memcached",
                "systemctl is-active --quiet mariadb",
            ]
        );
    }

    #[test]
    fn sysv_machines_use_service() {
        let runner = ScriptedRunner::new();
        let services = HostServices::new(&runner).with_init(InitSystem::SysV);
        services.start(Service::Mariadb).unwrap();
        services.stop(Service::Memcached).unwrap();
        runner.reply(failed("memcached is not running"));
        assert!(!services.is_running(Service::Memcached).unwrap());
        assert_eq!(
            commands(&runner),
            [
                "service mariadb start",
                "service memcached stop",
                "service memcached status"
            ]
        );
    }

    #[test]
    fn a_broken_apache_configuration_stops_nothing() {
        let runner = ScriptedRunner::new();
        let services = HostServices::new(&runner).with_init(InitSystem::SysV);
        runner.reply(failed(
            "AH00526: Syntax error on line 7 of /etc/apache2/sites-enabled/x.conf:\nInvalid command 'Bad'",
        ));
        let err = services.restart(Service::Apache2).unwrap_err();
        assert!(err.to_string().contains("Invalid command 'Bad'"), "{err}");
        assert_eq!(commands(&runner), ["apache2ctl configtest"]);
    }

    #[test]
    fn sites_and_modules_change_only_when_needed() {
        let dir = std::env::temp_dir().join(format!("services-sites-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in [
            "sites-available",
            "sites-enabled",
            "mods-available",
            "mods-enabled",
        ] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("sites-available/keystone-test.conf"), "# test\n").unwrap();
        std::fs::write(dir.join("mods-available/ssl.load"), "# test\n").unwrap();
        let apache = Apache {
            confdir: dir.clone(),
            ..Apache::system()
        };
        let services = HostServices::new(&SystemRunner)
            .with_init(InitSystem::SysV)
            .with_apache(apache);
        let enabled = dir.join("sites-enabled/keystone-test.conf");
        assert!(
            services
                .enable_site("keystone-test")
                .expect("a2ensite (apt-get install apache2)")
        );
        assert!(enabled.symlink_metadata().is_ok());
        assert!(!services.enable_site("keystone-test").unwrap());
        assert!(services.disable_site("keystone-test").unwrap());
        assert!(enabled.symlink_metadata().is_err());
        assert!(!services.disable_site("keystone-test").unwrap());
        // Another charm's vhost written straight into sites-enabled (the Python charm's) gives
        // way to the link.
        std::fs::write(&enabled, "# the Python charm's vhost\n").unwrap();
        assert!(services.enable_site("keystone-test").unwrap());
        assert!(enabled.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&enabled).unwrap(), "# test\n");
        assert!(services.disable_site("keystone-test").unwrap());
        assert!(matches!(
            services.enable_site("no-such-site"),
            Err(ServiceError::NoSuchApacheItem { .. })
        ));
        assert!(services.enable_module("ssl").unwrap());
        assert!(dir.join("mods-enabled/ssl.load").symlink_metadata().is_ok());
        assert!(!services.enable_module("ssl").unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn process_identity_tells_the_living_from_the_gone() {
        let me = ProcessId::of(std::process::id() as i32).expect("this process is alive");
        assert!(me.is_alive());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Exited but not yet reaped: a zombie, which counts as gone.
        assert!(wait_until(Duration::from_secs(10), || ProcessId::of(pid).is_none()));
        child.wait().unwrap();
        assert!(ProcessId::of(pid).is_none());
        let reused = ProcessId {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        assert!(!reused.is_alive(), "a reused PID is another process");
    }

    #[test]
    fn the_twin_counts_restarts_and_knows_what_runs() {
        let s = RecordingServices::new();
        assert!(!s.is_running(Service::Apache2).unwrap());
        s.restart(Service::Apache2).unwrap();
        s.restart(Service::Apache2).unwrap();
        assert!(s.is_running(Service::Apache2).unwrap());
        s.stop(Service::Apache2).unwrap();
        assert!(!s.is_running(Service::Apache2).unwrap());
        assert_eq!(s.count(&ServiceAction::Restart(Service::Apache2)), 2);
        assert!(s.enable_site("wsgi-openstack-api").unwrap());
        assert!(!s.enable_site("wsgi-openstack-api").unwrap());
        assert!(s.disable_site("wsgi-openstack-api").unwrap());
        assert!(!s.disable_site("wsgi-openstack-api").unwrap());
    }
}
