//! Nagios checks for nrpe-external-master: which checks a unit has, and the verdicts of the two
//! the charm's own binary runs as Nagios plugins (`keystone-charm check haproxy|fernet`), from
//! what it reads; pure, so the thresholds are tested in memory.

use crate::config::Config;

/// Where the monitoring-plugins package (installed with the nrpe charm) keeps its plugins.
const PLUGINS: &str = "/usr/lib/nagios/plugins";

/// One NRPE check: `command[check_<shortname>]=<command>` on the unit, and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub shortname: String,
    pub description: String,
    pub command: String,
}

/// The checks of a unit: its services running, Keystone answering through haproxy and
/// directly, haproxy's backends, and this unit's fernet keys (`binary` is the charm's own).
pub fn checks(config: &Config, binary: &str) -> Vec<Check> {
    let check = |shortname: &str, description: &str, command: String| Check {
        shortname: format!("keystone_{shortname}"),
        description: format!("{description} ({})", config.nagios_context),
        command,
    };
    let process = |name: &str| {
        check(
            name,
            &format!("{name} is running"),
            format!("{PLUGINS}/check_procs -C {name} -c 1:"),
        )
    };
    // haproxy serves TLS when Keystone does; Apache behind it always plain HTTP.
    let http = |port: u16, tls: bool| {
        let tls = match tls {
            true => " -S",
            false => "",
        };
        format!(
            "{PLUGINS}/check_http -I 127.0.0.1 -p {port} -u {}/v3 -e 200{tls}",
            config.service_path_prefix
        )
    };
    let mut checks = vec![process("apache2"), process("haproxy")];
    if config.enable_cache {
        checks.push(process("memcached"));
    }
    checks.push(check(
        "api",
        "Keystone answers through haproxy",
        http(config.service_port, config.tls.is_some()),
    ));
    checks.push(check(
        "api_direct",
        "Keystone answers on this unit's Apache",
        http(config.apache_service_port(), false),
    ));
    checks.push(check(
        "haproxy_backends",
        "haproxy has Keystone units to send requests to",
        format!("{binary} check haproxy"),
    ));
    checks.push(check(
        "fernet_keys",
        "this unit holds the leader's fernet keys and rotation is on time",
        format!("{binary} check fernet"),
    ));
    checks
}

/// A Nagios plugin's verdict: its exit code and one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub level: Level,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Level {
    /// The plugin's exit code, as Nagios reads it.
    pub fn exit_code(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Critical => 2,
            Level::Unknown => 3,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }
}

impl Verdict {
    fn new(level: Level, message: impl Into<String>) -> Verdict {
        Verdict {
            level,
            message: message.into(),
        }
    }

    /// The plugin's output line.
    pub fn line(&self) -> String {
        format!("{}: {}", self.level.word(), self.message)
    }
}

/// haproxy's `show stat` CSV: critical when a Keystone backend has no server up, warning when
/// some server is down.
pub fn haproxy_verdict(stat: &str) -> Verdict {
    let mut down = Vec::new();
    let mut up_by_backend: std::collections::BTreeMap<&str, usize> = Default::default();
    for line in stat.lines().filter(|l| l.starts_with("keystone-")) {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(backend), Some(server), Some(status)) =
            (fields.first(), fields.get(1), fields.get(17))
        else {
            continue;
        };
        if *server == "FRONTEND" || *server == "BACKEND" {
            continue;
        }
        let up = up_by_backend.entry(backend).or_default();
        match status.starts_with("UP") {
            true => *up += 1,
            false => down.push(format!("{backend}/{server} {status}")),
        }
    }
    if up_by_backend.is_empty() {
        return Verdict::new(Level::Critical, "haproxy reports no Keystone backend");
    }
    let empty: Vec<&str> = up_by_backend
        .iter()
        .filter(|(_, up)| **up == 0)
        .map(|(b, _)| *b)
        .collect();
    if !empty.is_empty() {
        return Verdict::new(
            Level::Critical,
            format!("no server up in {}", empty.join(", ")),
        );
    }
    match down.is_empty() {
        true => Verdict::new(
            Level::Ok,
            format!(
                "{} servers up",
                up_by_backend.values().copied().sum::<usize>()
            ),
        ),
        false => Verdict::new(Level::Warning, format!("down: {}", down.join(", "))),
    }
}

/// What the charm keeps on the unit at every hook, for the fernet check (which runs as the
/// nagios user, who may not read the keys): the leader's published generation and the one this
/// unit held at its last hook.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FernetKept {
    pub generation: u64,
    /// The generation this unit held at its last hook (None: not the published set).
    pub held: Option<u64>,
    /// Unix seconds of the last rotation.
    pub last_rotation: u64,
    /// Seconds between rotations.
    pub period: u64,
}

/// How late a rotation may be before the check warns: the leader rotates in its hooks, at
/// least every update-status (5 minutes by default).
const ROTATION_SLACK: u64 = 15 * 60;

/// This unit's keys against the leader's, as its last hook saw them, `now`.
pub fn fernet_verdict(kept: Option<&FernetKept>, now: u64) -> Verdict {
    let Some(kept) = kept else {
        return Verdict::new(
            Level::Unknown,
            "the leader has published no fernet keys this unit knows of yet",
        );
    };
    if kept.held != Some(kept.generation) {
        return Verdict::new(
            Level::Critical,
            format!(
                "this unit does not hold the leader's fernet keys (generation {}): tokens \
                 issued elsewhere may fail here",
                kept.generation
            ),
        );
    }
    let due = kept.last_rotation + kept.period;
    if now > due + ROTATION_SLACK {
        return Verdict::new(
            Level::Warning,
            format!(
                "generation {}; the rotation due {} s ago has not happened (is a unit not \
                 acknowledging the keys? see fernet-status)",
                kept.generation,
                now - due
            ),
        );
    }
    Verdict::new(
        Level::Ok,
        format!(
            "generation {}, next rotation in {} s",
            kept.generation,
            due.saturating_sub(now)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::testing::config;

    #[test]
    fn the_checks_follow_the_ports_the_prefix_and_the_cache() {
        let checks = checks(
            &config(json!({"service-path-prefix": "/api/idm", "enable-cache": true})),
            "/charm/keystone-charm",
        );
        let lines: Vec<String> = checks
            .iter()
            .map(|c| format!("{}={}", c.shortname, c.command))
            .collect();
        assert_eq!(
            lines,
            [
                "keystone_apache2=/usr/lib/nagios/plugins/check_procs -C apache2 -c 1:",
                "keystone_haproxy=/usr/lib/nagios/plugins/check_procs -C haproxy -c 1:",
                "keystone_memcached=/usr/lib/nagios/plugins/check_procs -C memcached -c 1:",
                "keystone_api=/usr/lib/nagios/plugins/check_http -I 127.0.0.1 -p 5000 -u /api/idm/v3 -e 200",
                "keystone_api_direct=/usr/lib/nagios/plugins/check_http -I 127.0.0.1 -p 4990 -u /api/idm/v3 -e 200",
                "keystone_haproxy_backends=/charm/keystone-charm check haproxy",
                "keystone_fernet_keys=/charm/keystone-charm check fernet",
            ]
        );
        assert!(checks[0].description.ends_with("(juju)"));
    }

    fn stat(rows: &[(&str, &str, &str)]) -> String {
        let mut text = String::from(
            "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status\n",
        );
        for (backend, server, status) in rows {
            text.push_str(&format!(
                "{backend},{server},0,0,0,0,,0,0,0,0,0,0,0,0,0,0,{status}\n"
            ));
        }
        text
    }

    #[test]
    fn haproxy_is_critical_with_no_server_up_and_warns_with_one_down() {
        let all_up = stat(&[
            ("keystone-public", "FRONTEND", "OPEN"),
            ("keystone-public", "keystone-0", "UP"),
            ("keystone-public", "keystone-1", "UP"),
            ("keystone-public", "BACKEND", "UP"),
        ]);
        assert_eq!(haproxy_verdict(&all_up).level, Level::Ok);
        let one_down = stat(&[
            ("keystone-public", "keystone-0", "UP"),
            ("keystone-public", "keystone-1", "DOWN"),
        ]);
        let verdict = haproxy_verdict(&one_down);
        assert_eq!(
            verdict.line(),
            "WARNING: down: keystone-public/keystone-1 DOWN"
        );
        let none_up = stat(&[("keystone-admin", "keystone-0", "DOWN 1/2")]);
        assert_eq!(haproxy_verdict(&none_up).level, Level::Critical);
        assert_eq!(haproxy_verdict("").level, Level::Critical);
    }

    #[test]
    fn fernet_is_critical_when_this_unit_lags_and_warns_when_rotation_is_overdue() {
        let kept = FernetKept {
            generation: 4,
            held: Some(4),
            last_rotation: 1_000,
            period: 3_600,
        };
        let lagging = FernetKept {
            held: Some(3),
            ..kept.clone()
        };
        let none = FernetKept {
            held: None,
            ..kept.clone()
        };
        assert_eq!(fernet_verdict(Some(&kept), 2_000).level, Level::Ok);
        assert_eq!(fernet_verdict(Some(&lagging), 2_000).level, Level::Critical);
        assert_eq!(fernet_verdict(Some(&none), 2_000).level, Level::Critical);
        assert_eq!(
            fernet_verdict(Some(&kept), 1_000 + 3_600 + 901).level,
            Level::Warning
        );
        assert_eq!(
            fernet_verdict(Some(&kept), 1_000 + 3_600 + 899).level,
            Level::Ok,
            "a rotation a few minutes late is the leader's next hook"
        );
        assert_eq!(fernet_verdict(None, 0).level, Level::Unknown);
        assert_eq!(Level::Critical.exit_code(), 2);
    }
}
