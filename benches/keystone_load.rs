//! Keystone under load through the cluster's front, the work operators run it for: three real
//! units behind a VIP (haproxy, Apache with mod_wsgi, Keystone, memcached, MariaDB), clients
//! on this machine issuing tokens (password authentication) and validating them
//! (`GET /v3/auth/tokens`) through the VIP, bounded in time and count.
//!
//! Two configurations of the same units, same Keystone package, measured in turn (A, B, A, B):
//! - `this charm`: the files the charm rendered;
//! - `Python charm`: the same files with the settings in which the Python charm's rendered
//!   configuration differs ([`PYTHON_CHARM`]).
//!
//! Figures: requests per second, median and p99 latency per workload and configuration,
//! issuing as a fraction of its bound (the CPUs over the CPU time of one bcrypt check at
//! Keystone's cost, measured on a unit in the same run), and where the CPU went during the
//! validations (Keystone's WSGI daemons, Apache, haproxy, memcached, MariaDB, the client).
//! `LOAD_SECONDS` (default 30; shorter runs are dominated by noise here) bounds each workload run, `LOAD_CLIENTS` (default 8) the clients;
//! `LOAD_SWEEP=1` adds the charm's configuration without token caching, without the preload, and
//! with 2 public processes of 4 threads; `LOAD_HASHING=1` measures other password hashing instead
//! (PBKDF2-SHA512 at 210,000 rounds, bcrypt at cost 10). (That a revocation on one unit
//! is honoured at once on the others, with this charm's caching, is a real-stack test.)

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use juju_sim::Model;
use serde_json::{Map, json};

/// Requests one workload run makes at most, whatever the time bound.
const MAX_REQUESTS: usize = 200_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One workload run's outcome.
struct Run {
    ok: usize,
    failed: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[at.min(sorted.len() - 1)]
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn auth_body(password: &str) -> String {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "admin_domain"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "admin_domain"}}}}})
    .to_string()
}

/// A token, or why not.
fn issue(agent: &ureq::Agent, base: &str, body: &str) -> Result<String, String> {
    let reply = agent
        .post(format!("{base}/auth/tokens"))
        .header("Content-Type", "application/json")
        .send(body)
        .map_err(|e| e.to_string())?;
    if reply.status().as_u16() != 201 {
        return Err(format!("HTTP {}", reply.status()));
    }
    let token = reply
        .headers()
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or("no X-Subject-Token")?;
    let _ = reply.into_body().read_to_string();
    Ok(token)
}

/// Sets the admin password to itself: Keystone hashes it again with the hashing configured now
/// (a stored hash keeps the algorithm and rounds it was made with, whatever the configuration).
fn store_admin_password_again(base: &str, password: &str) {
    let agent = agent();
    let reply = agent
        .post(format!("{base}/auth/tokens"))
        .header("Content-Type", "application/json")
        .send(auth_body(password))
        .unwrap();
    assert_eq!(reply.status().as_u16(), 201, "admin token");
    let token = reply.headers()["X-Subject-Token"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value =
        serde_json::from_str(&reply.into_body().read_to_string().unwrap()).unwrap();
    let user = body["token"]["user"]["id"].as_str().unwrap().to_owned();
    let reply = agent
        .patch(format!("{base}/users/{user}"))
        .header("X-Auth-Token", &token)
        .header("Content-Type", "application/json")
        .send(json!({"user": {"password": password}}).to_string())
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200, "admin password set again");
}

/// The status of validating `token`.
fn validate(agent: &ureq::Agent, base: &str, admin: &str, token: &str) -> Result<u16, String> {
    let reply = agent
        .get(format!("{base}/auth/tokens"))
        .header("X-Auth-Token", admin)
        .header("X-Subject-Token", token)
        .call()
        .map_err(|e| e.to_string())?;
    let status = reply.status().as_u16();
    let _ = reply.into_body().read_to_string();
    Ok(status)
}

/// Runs `request` from `clients` threads for `seconds` (or [`MAX_REQUESTS`]); each client
/// has its own keep-alive connection.
fn load(
    clients: usize,
    seconds: u64,
    request: impl Fn(&ureq::Agent, usize) -> bool + Send + Sync + 'static,
) -> Run {
    let request = Arc::new(request);
    let stop = Arc::new(AtomicBool::new(false));
    let results = Arc::new(Mutex::new(Run {
        ok: 0,
        failed: 0,
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    }));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let (request, stop, results) = (
                Arc::clone(&request),
                Arc::clone(&stop),
                Arc::clone(&results),
            );
            std::thread::spawn(move || {
                let agent = agent();
                let mut n = client;
                while !stop.load(Ordering::Relaxed) {
                    let at = Instant::now();
                    let ok = request(&agent, n);
                    let took = at.elapsed();
                    n += clients;
                    let mut results = results.lock().unwrap();
                    if ok {
                        results.ok += 1;
                        results.latencies.push(took);
                    } else {
                        results.failed += 1;
                    }
                    if results.ok + results.failed >= MAX_REQUESTS {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    while started.elapsed() < Duration::from_secs(seconds) && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    let mut run = Arc::try_unwrap(results).ok().unwrap().into_inner().unwrap();
    run.elapsed = started.elapsed();
    run
}

/// Settings applied over a unit's rendered files, for a configuration other than the charm's.
#[derive(Debug, Clone, Copy)]
struct Settings {
    /// `[token] caching`, when set.
    token_caching: Option<bool>,
    /// mod_wsgi `threads=` of every daemon, when set.
    threads: Option<u32>,
    /// mod_wsgi `processes=` of the public daemon, when set.
    public_processes: Option<u32>,
    /// Keep the `WSGIImportScript` preload.
    preload: bool,
    /// `[identity] password_hash_algorithm` and `password_hash_rounds`, when set.
    password_hashing: Option<(&'static str, u32)>,
}

/// What the Python charm renders differently (reference §8): `[token] caching = false` in its
/// Caracal template, `threads=1`, and no preload (Keystone loads on the first request after
/// a (re)start).
const PYTHON_CHARM: Settings = Settings {
    token_caching: Some(false),
    threads: Some(1),
    public_processes: None,
    preload: false,
    password_hashing: None,
};

/// The charm's configuration as rendered.
const THIS_CHARM: Settings = Settings {
    token_caching: None,
    threads: None,
    public_processes: None,
    preload: true,
    password_hashing: None,
};

fn apply(model: &Model, unit: &str, settings: Settings) {
    let conf = model.unit_path(unit, "/etc/keystone/keystone.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    if let Some(caching) = settings.token_caching {
        text = text.replace("[token]\n", &format!("[token]\ncaching = {caching}\n"));
    }
    if let Some((algorithm, rounds)) = settings.password_hashing {
        text = text.replace(
            "[identity]\n",
            &format!(
                "[identity]\npassword_hash_algorithm = {algorithm}\npassword_hash_rounds = {rounds}\n"
            ),
        );
    }
    std::fs::write(&conf, text).unwrap();
    let vhost = model.unit_path(unit, "/etc/apache2/sites-available/wsgi-openstack-api.conf");
    let text = std::fs::read_to_string(&vhost).unwrap();
    let text: Vec<String> = text
        .lines()
        .filter(|line| settings.preload || !line.trim_start().starts_with("WSGIImportScript"))
        .map(|line| {
            if !line.trim_start().starts_with("WSGIDaemonProcess") {
                return line.to_owned();
            }
            let public = line.contains("keystone-public");
            line.split(' ')
                .map(|word| match (word.split_once('='), settings) {
                    (
                        Some(("threads", _)),
                        Settings {
                            threads: Some(n), ..
                        },
                    ) => {
                        format!("threads={n}")
                    }
                    (
                        Some(("processes", _)),
                        Settings {
                            public_processes: Some(n),
                            ..
                        },
                    ) if public => format!("processes={n}"),
                    _ => word.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    std::fs::write(&vhost, text.join("\n") + "\n").unwrap();
    restart_apache(model, unit);
}

/// The files as the charm renders them: a config-changed after removing them brings them back.
fn restore_charm_settings(model: &mut Model, unit: &str) {
    std::fs::remove_file(model.unit_path(unit, "/etc/keystone/keystone.conf")).unwrap();
    std::fs::remove_file(
        model.unit_path(unit, "/etc/apache2/sites-available/wsgi-openstack-api.conf"),
    )
    .unwrap();
    model.queue_hook(unit, "config-changed");
    model.settle_unit(unit).unwrap();
}

fn restart_apache(model: &Model, unit: &str) {
    let out = model
        .exec_on_unit(unit, &["apache2ctl", "graceful"])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until every unit's Keystone answers through the VIP again.
fn wait_for(base: &str) {
    let agent = agent();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if agent
            .get(base)
            .call()
            .is_ok_and(|r| r.status().as_u16() == 200)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{base} does not answer");
}

/// CPU seconds one password check takes at Keystone's hashing (bcrypt, cost 12, through passlib
/// as Keystone calls it), on a unit: the median of 7. Issuing a token by password makes one, so
/// the machine issues at most CPUs / this many tokens per second.
fn bcrypt_check_seconds(model: &Model, unit: &str) -> f64 {
    let script = "import statistics, time\n\
                  from passlib.hash import bcrypt\n\
                  h = bcrypt.using(rounds=12).hash('x')\n\
                  times = []\n\
                  for _ in range(7):\n\
                  \x20   t = time.process_time(); bcrypt.verify('x', h)\n\
                  \x20   times.append(time.process_time() - t)\n\
                  print(statistics.median(times))\n";
    let out = model
        .exec_on_unit(unit, &["/usr/bin/python3", "-c", script])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The CPU time (user and system, seconds) the machine's running processes have used, by the
/// part of the stack they are. Processes that ended meanwhile are not counted.
fn cpu_by_part() -> BTreeMap<&'static str, f64> {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let mut parts = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        // After the name: state is field 3, utime 14 and stime 15 (1-based, as proc(5) counts).
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let (Some(user), Some(system)) = (fields.get(11), fields.get(12)) else {
            continue;
        };
        let used =
            (user.parse::<f64>().unwrap_or(0.0) + system.parse::<f64>().unwrap_or(0.0)) / ticks;
        // mod_wsgi names its daemons `(wsgi:<group>)` in their command line; their name stays
        // apache2's.
        let daemon = name == "apache2"
            && std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| cmdline.starts_with(b"(wsgi:"));
        let part = match name {
            _ if daemon => "Keystone",
            n if n.starts_with("apache2") => "Apache",
            n if n.starts_with("haproxy") => "haproxy",
            n if n.starts_with("memcached") => "memcached",
            n if n.starts_with("mariadbd") || n.starts_with("mysqld") => "MariaDB",
            n if n.starts_with("keystone_load") => "client",
            _ => "other",
        };
        *parts.entry(part).or_insert(0.0) += used;
    }
    parts
}

/// Where the CPU went between two [`cpu_by_part`] readings.
fn report_cpu(
    config: &str,
    workload: &str,
    before: &BTreeMap<&str, f64>,
    after: &BTreeMap<&str, f64>,
    run: &Run,
) {
    let used: Vec<(&str, f64)> = after
        .iter()
        .map(|(part, t)| {
            (
                *part,
                (t - before.get(part).copied().unwrap_or(0.0)).max(0.0),
            )
        })
        .collect();
    let total: f64 = used.iter().map(|(_, t)| t).sum();
    let shares: Vec<String> = used
        .iter()
        .map(|(part, t)| format!("{part} {:.0} %", t / total.max(f64::EPSILON) * 100.0))
        .collect();
    println!(
        "load, {config:<13} {workload:<9}: CPU {:.1} ms per request ({})",
        total / run.ok.max(1) as f64 * 1000.0,
        shares.join(", ")
    );
}

fn report(config: &str, workload: &str, run: &Run) {
    println!(
        "load, {config:<13} {workload:<9}: {:>7.1}/s, median {:>6.1} ms, p99 {:>6.1} ms, {} ok, {} failed",
        run.per_second(),
        run.percentile(0.5).as_secs_f64() * 1000.0,
        run.percentile(0.99).as_secs_f64() * 1000.0,
        run.ok,
        run.failed
    );
}

/// CPU readings before and after a run.
type CpuReadings = (BTreeMap<&'static str, f64>, BTreeMap<&'static str, f64>);

/// Issues and validates through `base` with `clients` clients; both runs, and the CPU readings
/// around the validations.
fn measure(base: &str, password: &str, clients: usize, seconds: u64) -> (Run, Run, CpuReadings) {
    let body = auth_body(password);
    let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let issued = {
        let (base, body, tokens) = (base.to_owned(), body.clone(), Arc::clone(&tokens));
        load(clients, seconds, move |agent, _| {
            match issue(agent, &base, &body) {
                Ok(token) => {
                    tokens.lock().unwrap().push(token);
                    true
                }
                Err(_) => false,
            }
        })
    };
    let pool: Vec<String> = tokens.lock().unwrap().iter().take(64).cloned().collect();
    assert!(!pool.is_empty(), "no token was issued");
    let admin = pool[0].clone();
    let before = cpu_by_part();
    let validated = {
        let base = base.to_owned();
        load(clients, seconds, move |agent, n| {
            validate(agent, &base, &admin, &pool[n % pool.len()]) == Ok(200)
        })
    };
    let after = cpu_by_part();
    (issued, validated, (before, after))
}

/// Until a token is issued (each process loads Keystone when Apache starts, or at its first
/// request without the preload), then 5 s of validations so that every process has served and
/// filled its caches.
fn warm_up(base: &str, password: &str, clients: usize) {
    let agent = agent();
    let body = auth_body(password);
    let deadline = Instant::now() + Duration::from_secs(300);
    while issue(&agent, base, &body).is_err() {
        assert!(Instant::now() < deadline, "{base} issues no token");
        std::thread::sleep(Duration::from_millis(500));
    }
    let admin = issue(&agent, base, &body).unwrap_or_default();
    let base = base.to_owned();
    let _ = load(clients, 5, move |agent, _| {
        validate(agent, &base, &admin, &admin) == Ok(200)
    });
}

fn main() {
    let seconds = env_or("LOAD_SECONDS", 30);
    let clients = env_or("LOAD_CLIENTS", 8) as usize;
    let out = support::TempDir::new("bench-load");
    let charm = support::pack_charm(&out);
    let (mut model, vip) = support::deploy_behind_vip(&charm, "load", 9, Map::new());
    let base = format!("http://{vip}:5000/v3");
    let units = model.units("keystone");
    let leader = model.leader("keystone").unwrap();
    let task = model
        .run_action(&leader, "get-admin-password", Map::new())
        .unwrap();
    let password = task.results["admin-password"].as_str().unwrap().to_owned();
    wait_for(&base);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "load: 3 units behind {vip}, {clients} clients, {seconds} s per run, token pool 64; \
         machine: {cpus} CPUs"
    );
    let check = bcrypt_check_seconds(&model, &leader);
    let bound = cpus as f64 / check;
    println!(
        "load, issuing bound: {cpus} CPUs / {:.0} ms of CPU per bcrypt check (cost 12) = \
         {bound:.1} tokens/s",
        check * 1000.0
    );
    // LOAD_SWEEP=1 also measures other settings over the charm's, to choose its defaults.
    let mut configs: Vec<(&str, Option<Settings>)> =
        vec![("this charm", None), ("Python charm", Some(PYTHON_CHARM))];
    if std::env::var("LOAD_SWEEP").is_ok() {
        configs.extend([
            (
                "no caching",
                Some(Settings {
                    token_caching: Some(false),
                    ..THIS_CHARM
                }),
            ),
            (
                "no preload",
                Some(Settings {
                    preload: false,
                    ..THIS_CHARM
                }),
            ),
            (
                "public 2x4",
                Some(Settings {
                    threads: Some(4),
                    public_processes: Some(2),
                    ..THIS_CHARM
                }),
            ),
        ]);
    }
    // LOAD_HASHING=1 measures, instead, the charm's configuration with other password hashing
    // (issuing is bound by it): PBKDF2-SHA512 at OWASP's 210,000 rounds, and bcrypt at OWASP's
    // minimum cost of 10 rather than Keystone's 12. Not a default: a choice of security.
    if std::env::var("LOAD_HASHING").is_ok() {
        configs = vec![("this charm", None)];
        for (name, hashing) in [
            ("pbkdf2 210k", ("pbkdf2_sha512", 210_000)),
            ("bcrypt 10", ("bcrypt", 10)),
        ] {
            configs.push((
                name,
                Some(Settings {
                    password_hashing: Some(hashing),
                    ..THIS_CHARM
                }),
            ));
        }
    }
    for _round in 0..2 {
        for (name, settings) in &configs {
            if let Some(settings) = settings {
                for unit in &units {
                    apply(&model, unit, *settings);
                }
            }
            wait_for(&base);
            let rehashed = settings.is_some_and(|s| s.password_hashing.is_some());
            if rehashed {
                store_admin_password_again(&base, &password);
            }
            warm_up(&base, &password, clients);
            let (issued, validated, (before, after)) = measure(&base, &password, clients, seconds);
            report(name, "issue", &issued);
            println!(
                "load, {name:<13} issue    : {:.0} % of the issuing bound",
                issued.per_second() / bound * 100.0
            );
            report(name, "validate", &validated);
            report_cpu(name, "validate", &before, &after, &validated);
            if settings.is_some() {
                for unit in &units {
                    restore_charm_settings(&mut model, unit);
                }
            }
            if rehashed {
                wait_for(&base);
                store_admin_password_again(&base, &password);
            }
        }
    }
}
