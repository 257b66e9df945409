//! A MariaDB server of a test's own: its own data directory, socket and TCP port, so that a test
//! can stop the database its units use (and start it again) without touching this host's MariaDB
//! that other tests share. Needs root and mariadb-server.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// How long the server has to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running (or stopped) MariaDB server; stopped and removed on drop.
pub struct MariaDbServer {
    dir: PathBuf,
    port: u16,
    server: Option<Child>,
}

impl MariaDbServer {
    /// Initialises a data directory under `dir` and starts a server listening on every address
    /// at `port`, root reaching it over [`MariaDbServer::socket`].
    pub fn start(dir: &Path, port: u16) -> Result<MariaDbServer> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let data = dir.join("data");
        let output = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=root", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=socket")
            .output()
            .context("cannot run mariadb-install-db (apt-get install mariadb-server)")?;
        if !output.status.success() {
            bail!(
                "mariadb-install-db failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let mut server = MariaDbServer {
            dir: dir.to_path_buf(),
            port,
            server: None,
        };
        server.resume()?;
        Ok(server)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Root's way in, for [`crate::scripted::mariadb_provisioner_at`].
    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    /// Starts the server on its data directory and waits until it accepts connections.
    pub fn resume(&mut self) -> Result<()> {
        if self.server.is_some() {
            return Ok(());
        }
        let log = std::fs::File::create(self.dir.join("mariadbd.log"))
            .context("cannot create the server's log")?;
        let child = Command::new("mariadbd")
            .args(["--no-defaults", "--user=root", "--bind-address=0.0.0.0"])
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mariadbd.pid").display()
            ))
            .arg(format!("--port={}", self.port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start mariadbd (apt-get install mariadb-server)")?;
        self.server = Some(child);
        let (port, socket) = (self.port, self.socket());
        crate::server::wait_until_answering(
            &mut self.server,
            "mariadbd",
            &self.dir.join("mariadbd.log"),
            START_TIMEOUT,
            || TcpStream::connect(("127.0.0.1", port)).is_ok() && socket.exists(),
        )
    }

    /// Stops the server (SIGTERM, as `systemctl stop` does) and waits until it has exited.
    pub fn stop(&mut self) -> Result<()> {
        crate::server::terminate(self.server.take(), "mariadbd")
    }
}

impl Drop for MariaDbServer {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
