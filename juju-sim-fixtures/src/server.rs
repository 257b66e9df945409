//! What the servers a test runs of its own ([`crate::mariadb`], [`crate::slapd`]) share: waiting
//! until one answers, and stopping it as its init script would.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// Waits until `answers`, or until the server in `child` exits (then `child` is emptied and its
/// `log` named), or `timeout` passes.
pub fn wait_until_answering(
    child: &mut Option<Child>,
    name: &str,
    log: &Path,
    timeout: Duration,
    answers: impl Fn() -> bool,
) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if answers() {
            return Ok(());
        }
        if let Some(server) = child.as_mut()
            && let Ok(Some(status)) = server.try_wait()
        {
            *child = None;
            bail!("{name} exited ({status}); see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{name} does not answer after {} s", timeout.as_secs())
}

/// Stops the server (SIGTERM, as `systemctl stop` does) and waits until it has exited.
pub fn terminate(child: Option<Child>, name: &str) -> Result<()> {
    let Some(mut server) = child else {
        return Ok(());
    };
    let signalled = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .context("cannot run kill")?;
    if !signalled.success() {
        bail!("cannot signal {name} ({signalled})");
    }
    server
        .wait()
        .with_context(|| format!("cannot wait for {name}"))?;
    Ok(())
}
