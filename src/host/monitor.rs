//! What the Nagios checks read when NRPE runs the charm's binary as a plugin, outside any hook
//! and as the nagios user: haproxy's read-only statistics socket and the fernet summary the
//! charm keeps at every hook. Errors are one line for the plugin's UNKNOWN.

use std::io::{Read as _, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::nagios::FernetKept;
use crate::paths;

/// haproxy's `show stat` CSV.
pub fn haproxy_stat() -> Result<String, String> {
    let failed = |e: std::io::Error| format!("cannot read {}: {e}", paths::HAPROXY_MONITOR_SOCKET);
    let mut socket =
        std::os::unix::net::UnixStream::connect(paths::HAPROXY_MONITOR_SOCKET).map_err(failed)?;
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(failed)?;
    socket.write_all(b"show stat\n").map_err(failed)?;
    let mut text = String::new();
    socket.read_to_string(&mut text).map_err(failed)?;
    Ok(text)
}

/// The fernet summary of the unit's last hook; None before the leader published keys.
pub fn fernet_kept() -> Result<Option<FernetKept>, String> {
    match std::fs::read(paths::FERNET_PUBLISHED) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            format!(
                "{} is not what the charm writes: {e}",
                paths::FERNET_PUBLISHED
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", paths::FERNET_PUBLISHED)),
    }
}

/// Unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
