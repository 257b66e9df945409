//! Tokens never fail: three units on real Keystone, Apache, haproxy, memcached and MariaDB
//! behind a VIP, with tokens that live 45 s and three fernet keys, so the leader rotates every
//! 45 s. A client issues tokens on every unit in turn and through the VIP, and validates every
//! live token on the serving units (their own Apache, past haproxy) and through the VIP, each on
//! one of them in turn and the newest on all, all the while: through scheduled rotations and a `rotate-fernet`, a leader change, add-unit (the new
//! unit serves, and is a backend, only once it holds the keys; tokens older than it validate on
//! it), a unit whose agent is stopped when a rotation is due (the leader waits and says so;
//! `rotate-fernet force=true` says what it risks), Apache restarted by a config change on every
//! unit, and remove-unit of a non-leader and of the leader. A token past its expiry is refused
//! everywhere. Ends with the line `soak: <I> tokens issued, <V> validations, <F> failed,
//! <R> rotations, <L> s longest lag` (`make soak` runs only this). Needs root and
//! scripts/install-real-stack.

mod support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use juju_sim::Model;
use serde_json::{Map, Value, json};
use support::validator::{http, try_issue};
use support::{TempDir, settle};

/// Seconds a token lives; with three keys the leader rotates as often.
const EXPIRATION: u64 = 45;

/// A token, who issued it and when.
#[derive(Debug, Clone)]
struct Issued {
    token: String,
    by: String,
    at: Instant,
}

/// What the client counted.
#[derive(Debug, Default)]
struct Figures {
    issued: u64,
    validations: u64,
    failed: u64,
    unavailable: u64,
    failures: Vec<String>,
}

/// Where the client talks to Keystone: each serving unit's Apache (with its fernet key
/// repository, for a failure's story), and the VIP.
type Targets = Arc<Mutex<BTreeMap<String, (String, Option<PathBuf>)>>>;

/// A key repository's fingerprints (index: first 8 hex of sha256), for a failure's story.
fn fingerprints(dir: &Path) -> String {
    let mut keys: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| {
                    let text = std::fs::read(entry.path()).unwrap_or_default();
                    let digest = <sha2::Sha256 as sha2::Digest>::digest(&text);
                    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
                    format!("{}:{hex}", entry.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys.join(" ")
}

/// Which key of a repository decrypts `token` (Keystone's fernet tokens lose their base64
/// padding), for a failure's story.
fn key_index(dir: &Path, token: &str) -> String {
    let padded = format!("{token}{}", "=".repeat((4 - token.len() % 4) % 4));
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let key = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if let Some(fernet) = fernet::Fernet::new(key.trim())
            && fernet.decrypt(&padded).is_ok()
        {
            return entry.file_name().to_string_lossy().into_owned();
        }
    }
    "none of them".to_owned()
}

/// How often the client asks for a token (a bcrypt check in Keystone, the costliest request),
/// and at most how often it validates the live ones: the rest of the suite shares the CPUs.
const ISSUE_EVERY: Duration = Duration::from_secs(3);
const ROUND: Duration = Duration::from_secs(1);

/// Issues a token on each target in turn and validates the live tokens (each on one target in
/// turn, the newest on every target), until `stop`.
fn client(password: String, targets: Targets, stop: Arc<AtomicBool>, figures: Arc<Mutex<Figures>>) {
    let started = Instant::now();
    let mut live: Vec<Issued> = Vec::new();
    let mut turn = 0usize;
    let mut last_issue: Option<Instant> = None;
    let mut rounds = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let round = Instant::now();
        rounds += 1;
        let now: Vec<(String, (String, Option<PathBuf>))> =
            targets.lock().unwrap().clone().into_iter().collect();
        if now.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        if last_issue.is_none_or(|at| at.elapsed() >= ISSUE_EVERY) {
            let (by, (base, _)) = &now[turn % now.len()];
            turn += 1;
            // Before asking: Keystone's issue time is no earlier than this.
            let asked = Instant::now();
            last_issue = Some(asked);
            match try_issue(base, &password, &[]) {
                Ok(token) => {
                    figures.lock().unwrap().issued += 1;
                    live.push(Issued {
                        token,
                        by: by.clone(),
                        at: asked,
                    });
                }
                Err(_) => figures.lock().unwrap().unavailable += 1,
            }
        }
        // Live: inside its lifetime until the answer, with a validation asked before this
        // bound: Keystone keeps the expiry to the second (up to 1 s early), a request may take
        // the 5 s curl allows, and 1 s to spare. (With 5 s in all, a token asked about at 39 s
        // after a slow issue was expired when Keystone read it.)
        let fresh = |t: &Issued| t.at.elapsed() < Duration::from_secs(EXPIRATION - 7);
        live.retain(fresh);
        // Each live token on one target in turn (so on every target within a few rounds),
        // and the newest on every target: every validation is a Keystone process's CPU, and
        // the rest of the suite runs beside this test.
        let newest = live.len().saturating_sub(1);
        for (i, token) in live.clone().into_iter().enumerate() {
            let asked: Vec<&(String, (String, Option<PathBuf>))> = match i == newest {
                true => now.iter().collect(),
                false => vec![&now[(rounds + i) % now.len()]],
            };
            for (unit, (base, keys)) in asked {
                let Some(auth) = live.last().filter(|t| fresh(t)).map(|t| t.token.clone()) else {
                    break;
                };
                if !fresh(&token) {
                    break;
                }
                let reply = http(
                    &[
                        "-H",
                        &format!("X-Auth-Token: {auth}"),
                        "-H",
                        &format!("X-Subject-Token: {}", token.token),
                        &format!("{base}/auth/tokens"),
                    ],
                    &[],
                );
                let mut f = figures.lock().unwrap();
                match reply {
                    Ok(r) if r.status == 200 => f.validations += 1,
                    // The auth token itself may have been refused: that counts too.
                    Ok(r) => {
                        f.validations += 1;
                        f.failed += 1;
                        let story = match keys {
                            Some(dir) => format!(
                                "; signed by its key {} of {}",
                                key_index(dir, &token.token),
                                fingerprints(dir)
                            ),
                            None => String::new(),
                        };
                        f.failures.push(format!(
                            "at {} s, {unit} refused a token issued by {} {} s before: {} {}{story}",
                            started.elapsed().as_secs(),
                            token.by,
                            token.at.elapsed().as_secs(),
                            r.status,
                            r.body.trim()
                        ));
                    }
                    Err(_) => f.unavailable += 1,
                }
            }
        }
        if let Some(rest) = ROUND.checked_sub(round.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

/// The leader's published generation and each unit's held one, from the summary every hook
/// keeps for Nagios.
fn generations(model: &Model) -> (u64, BTreeMap<String, Option<u64>>) {
    let mut leader_generation = 0;
    let mut held = BTreeMap::new();
    for unit in model.units("keystone") {
        let path = model.unit_path(&unit, "/var/lib/keystone-charm/fernet.json");
        let kept: Value = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        leader_generation = leader_generation.max(kept["generation"].as_u64().unwrap_or(0));
        held.insert(unit, kept["held"].as_u64());
    }
    (leader_generation, held)
}

/// Whether a juju-log call of `run` says `text` followed by `number` (and not a longer number).
fn logged(run: &juju_sim::state::HookRun, text: &str, number: u64) -> bool {
    let wanted = format!("{text}{number}");
    run.tool_calls.iter().any(|call| {
        call.starts_with("juju-log")
            && call
                .match_indices(&wanted)
                .any(|(at, _)| !call[at + wanted.len()..].starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// The longest time from the hook in which the leader published a generation to the hook in
/// which another unit applied it, from the hook log: for units that existed when it was
/// published, leaving out `excused` (a unit whose agent was stopped on purpose, and the
/// generations published meanwhile).
fn longest_lag(runs: &[juju_sim::state::HookRun], excused: &[(String, u64)]) -> Duration {
    let mut longest = Duration::ZERO;
    let keystone = |r: &&juju_sim::state::HookRun| r.unit.starts_with("keystone/");
    for (i, published) in runs.iter().enumerate().filter(|(_, r)| keystone(r)) {
        let Some(generation) = (2..1000).find(|g| logged(published, "rotated to generation ", *g))
        else {
            continue;
        };
        let existed: std::collections::BTreeSet<&str> = runs[..i]
            .iter()
            .filter(keystone)
            .map(|r| r.unit.as_str())
            .filter(|u| *u != published.unit)
            .collect();
        for unit in existed {
            if excused.contains(&(unit.to_owned(), generation)) {
                continue;
            }
            if let Some(applied) = runs[i..]
                .iter()
                .find(|r| r.unit == unit && logged(r, "applied generation ", generation))
            {
                longest = longest.max(applied.ended.saturating_duration_since(published.ended));
            }
        }
    }
    longest
}

/// The servers in a unit's haproxy.cfg.
fn backends_of(model: &Model, unit: &str) -> String {
    std::fs::read_to_string(model.unit_path(unit, "/etc/haproxy/haproxy.cfg")).unwrap_or_default()
}

struct Soak {
    model: Model,
    vip: Ipv4Addr,
    targets: Targets,
    rotations: u64,
    generation: u64,
    /// When each unit fell behind the leader's generation.
    behind_since: BTreeMap<String, Instant>,
    /// Units that are not to be looked at (stopped agent, being removed).
    ignored: Vec<String>,
    /// A unit and a generation it could not apply in time: its agent was stopped on purpose.
    excused: Vec<(String, u64)>,
    started: Instant,
    /// When this test saw the last rotation.
    last_rotation_at: Instant,
    /// What happened when, for the story of a failure.
    timeline: Vec<String>,
}

impl Soak {
    fn apache(&self, unit: &str) -> String {
        let address = self.model.unit_address(unit).unwrap();
        format!("http://{address}:4990/v3")
    }

    /// One update-status round, then the figures the rounds keep.
    fn tick(&mut self) {
        self.model.update_status();
        settle(&mut self.model);
        self.observe();
        std::thread::sleep(Duration::from_secs(2));
    }

    fn observe(&mut self) {
        let (leader_generation, held) = generations(&self.model);
        if leader_generation > self.generation {
            if self.generation > 0 {
                self.rotations += leader_generation - self.generation;
            }
            self.generation = leader_generation;
            self.last_rotation_at = Instant::now();
            self.note(format!("generation {leader_generation} published"));
        }
        for (unit, held) in held {
            if self.ignored.contains(&unit) {
                continue;
            }
            if held.is_some_and(|g| g >= self.generation) {
                self.behind_since.remove(&unit);
            } else {
                self.behind_since.entry(unit).or_insert_with(Instant::now);
            }
        }
        // A unit without keys is no unit's haproxy backend, and its Apache does not serve.
        let (_, held) = generations(&self.model);
        for (unit, held) in &held {
            if held.is_some() {
                continue;
            }
            let answer = http(&["--max-time", "2", &self.apache(unit)], &[]);
            assert!(
                answer.is_err(),
                "{unit} holds no keys but its Apache answers: {answer:?}"
            );
            let name = unit.replace('/', "-");
            for other in self.model.units("keystone") {
                assert!(
                    !backends_of(&self.model, &other).contains(&format!("server {name} ")),
                    "{unit} holds no keys but is a backend of {other}"
                );
            }
        }
    }

    fn note(&mut self, what: String) {
        let line = format!("at {} s: {what}", self.started.elapsed().as_secs());
        self.timeline.push(line);
    }

    fn tick_until(&mut self, what: &str, limit: Duration, mut done: impl FnMut(&Soak) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(started.elapsed() < limit, "gave up waiting for {what}");
            self.tick();
        }
    }

    fn serve(&self, unit: &str) {
        let base = self.apache(unit);
        let keys = self.model.unit_path(unit, "/etc/keystone/fernet-keys");
        self.targets
            .lock()
            .unwrap()
            .insert(unit.to_owned(), (base, Some(keys)));
    }

    fn unserve(&self, unit: &str) {
        self.targets.lock().unwrap().remove(unit);
    }

    fn leader(&self) -> String {
        self.model.leader("keystone").unwrap()
    }

    fn action(&mut self, unit: &str, name: &str, params: Value) -> juju_sim::state::ActionTask {
        self.model
            .run_action(unit, name, params.as_object().cloned().unwrap_or_default())
            .unwrap()
    }
}

#[test]
fn tokens_validate_everywhere_through_rotations_leader_changes_and_scaling() {
    let out = TempDir::new("soak");
    let charm = support::pack_charm(&out);
    let options = json!({"token-expiration": EXPIRATION, "fernet-max-active-keys": 3});
    let (mut model, vip) = support::deploy_behind_vip(
        &charm,
        "soak",
        20,
        options.as_object().cloned().unwrap_or_default(),
    );
    let password = {
        let task = model
            .run_action("keystone/0", "get-admin-password", Map::new())
            .unwrap();
        task.results["admin-password"].as_str().unwrap().to_owned()
    };
    let mut soak = Soak {
        model,
        vip,
        targets: Arc::default(),
        rotations: 0,
        generation: 0,
        behind_since: BTreeMap::new(),
        ignored: Vec::new(),
        excused: Vec::new(),
        started: Instant::now(),
        last_rotation_at: Instant::now(),
        timeline: Vec::new(),
    };
    soak.observe();
    for unit in soak.model.units("keystone") {
        soak.serve(&unit);
    }
    soak.targets.lock().unwrap().insert(
        "the VIP".to_owned(),
        (format!("http://{}:5000/v3", soak.vip), None),
    );
    let started = Instant::now();
    let first_token = try_issue(&format!("http://{vip}:5000/v3"), &password, &[]).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let figures = Arc::new(Mutex::new(Figures::default()));
    let running = {
        let (targets, stop) = (Arc::clone(&soak.targets), Arc::clone(&stop));
        let figures = Arc::clone(&figures);
        let password = password.clone();
        std::thread::spawn(move || client(password, targets, stop, figures))
    };
    let limit = Duration::from_secs(EXPIRATION * 3);

    // A scheduled rotation; rotate-fernet right after it is refused (too soon: it would retire
    // a key that signed tokens still valid).
    soak.tick_until("a scheduled rotation", limit, |s| s.rotations >= 1);
    let leader = soak.leader();
    let early = soak.action(&leader, "rotate-fernet", json!({}));
    assert_eq!(early.status, "failed", "{early:?}");
    // The key it would retire is the oldest secondary: key 1 after the first rotation, or a
    // later one when the leader rotated while the deployment was still settling.
    let message = early.message.clone().unwrap_or_default();
    let key = message
        .strip_prefix("not rotating: fernet key ")
        .and_then(|rest| rest.split_once(" was the primary key until "))
        .and_then(|(key, _)| key.parse::<u32>().ok());
    assert!(key.is_some_and(|k| k >= 1), "{message}");
    soak.note(format!("rotate-fernet on {leader} refused: too soon"));

    // A leader change.
    let others: Vec<String> = soak
        .model
        .units("keystone")
        .into_iter()
        .filter(|u| *u != leader)
        .collect();
    soak.model.set_leader(&others[0]).unwrap();
    soak.note(format!("{} made leader", others[0]));
    settle(&mut soak.model);
    soak.tick();

    // add-unit: it serves once it holds the keys (observe checks it is no backend and does
    // not answer before), and tokens issued before it existed validate on it.
    let before_it = try_issue(&format!("http://{vip}:5000/v3"), &password, &[]).unwrap();
    let issued_before_it = Instant::now();
    let added = soak.model.add_unit("keystone").unwrap();
    soak.note(format!("{added} added"));
    soak.model.settle_unit(&added).unwrap();
    soak.observe();
    settle(&mut soak.model);
    soak.observe();
    let status = |s: &Soak| s.model.unit_status(&added).unwrap_or_default();
    soak.tick_until(&format!("{added} to be ready"), limit, |s| {
        status(s).0 == "active"
    });
    // Asked with allow_expired: on a loaded machine the new unit may take longer to be ready
    // than the token lives, and the question is whether it holds the key the token was made
    // with. That key stays for at least one rotation period after the token was issued, and an
    // older unit is asked the same question.
    let asker = try_issue(&format!("http://{vip}:5000/v3"), &password, &[]).unwrap();
    let validate_before_it = |base: String| {
        http(
            &[
                "-H",
                &format!("X-Auth-Token: {asker}"),
                "-H",
                &format!("X-Subject-Token: {before_it}"),
                &format!("{base}/auth/tokens?allow_expired=1"),
            ],
            &[],
        )
        .unwrap()
        .status
    };
    let age = issued_before_it.elapsed().as_secs();
    let on_added = validate_before_it(soak.apache(&added));
    let on_older = validate_before_it(soak.apache(&others[0]));
    soak.note(format!(
        "a token {age} s older than {added}: {on_added} on it, {on_older} on {}",
        others[0]
    ));
    assert_eq!(
        on_added, on_older,
        "{added} and {} answer alike for a token older than {added}",
        others[0]
    );
    if age < EXPIRATION {
        assert_eq!(
            on_added, 200,
            "a token older than {added} validates on it ({age} s old)"
        );
    }
    soak.serve(&added);
    soak.note(format!("{added} serves"));

    // rotate-fernet once a rotation is due (no hook runs meanwhile, or the leader would rotate
    // on schedule first: at steady state every rotation comes just in time, so an extra one
    // always shortens some token's life, and is refused without force).
    let period = Duration::from_secs(EXPIRATION + 1);
    while soak.last_rotation_at.elapsed() < period {
        std::thread::sleep(Duration::from_millis(500));
    }
    let leader = soak.leader();
    let mut task = soak.action(&leader, "rotate-fernet", json!({}));
    // A period after the rotation by the leader's clock, but the key it would retire was
    // primary on the last unit to take the rotation until a few seconds later: the action
    // says how long to wait.
    if let Some(wait) = task
        .message
        .as_deref()
        .and_then(|m| m.split_once("It is safe in "))
        .and_then(|(_, rest)| rest.split_once(" s"))
        .and_then(|(secs, _)| secs.parse::<u64>().ok())
    {
        assert!(wait <= 20, "{task:?}");
        std::thread::sleep(Duration::from_secs(wait + 1));
        task = soak.action(&leader, "rotate-fernet", json!({}));
    }
    assert_eq!(task.status, "completed", "{task:?}");
    soak.note(format!("rotate-fernet on {leader}"));
    soak.tick_until("every unit to hold the rotated keys", limit, |s| {
        s.rotations >= 2 && s.behind_since.is_empty()
    });

    // A unit's agent stops. The next scheduled rotation is safe for it (it holds the key that
    // becomes primary); the one after waits for it, and the leader says so. Forced, the action
    // says what it risks: from the first rotation on, the unit serves no client of this test
    // (nor is it a backend of its peers, who see it lag), until its agent starts and it
    // catches up.
    let holder = soak.model.vip_holder(vip);
    let stopped = soak
        .model
        .units("keystone")
        .into_iter()
        .find(|u| *u != leader && *u != added && Some(u) != holder.as_ref())
        .unwrap();
    soak.model.stop_agent(&stopped).unwrap();
    let stopped_at_generation = soak.generation;
    soak.ignored.push(stopped.clone());
    soak.note(format!("{stopped}'s agent stopped"));
    let rotations = soak.rotations;
    soak.tick_until("a scheduled rotation", limit, |s| s.rotations > rotations);
    soak.unserve(&stopped);
    soak.behind_since.remove(&stopped);
    soak.tick_until("the next rotation to come due", limit, |s| {
        s.last_rotation_at.elapsed() >= period + Duration::from_secs(4)
    });
    let waiting = soak.rotations;
    let (_, message) = soak.model.unit_status(&leader).unwrap();
    assert!(
        message.contains(&format!("fernet rotation waiting for {stopped}")),
        "the leader says whom it waits for: {message}"
    );
    let refused = soak.action(&leader, "rotate-fernet", json!({}));
    assert_eq!(refused.status, "failed", "{refused:?}");
    let forced = soak.action(&leader, "rotate-fernet", json!({"force": true}));
    soak.note(format!("rotate-fernet force=true on {leader}"));
    assert_eq!(forced.status, "completed", "{forced:?}");
    let risk = forced.results["risk"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!("rotate-fernet force=true: {risk}");
    assert!(risk.starts_with(&stopped), "{risk}");
    soak.model.start_agent(&stopped).unwrap();
    for generation in stopped_at_generation + 1..=soak.generation + 1 {
        soak.excused.push((stopped.clone(), generation));
    }
    soak.note(format!("{stopped}'s agent started"));
    soak.ignored.clear();
    settle(&mut soak.model);
    soak.tick_until("every unit to hold the forced keys", limit, |s| {
        s.rotations > waiting && s.behind_since.is_empty()
    });
    soak.serve(&stopped);
    soak.note(format!("{stopped} serves again"));

    // Apache restarted on every unit by a config change.
    let mut debug = Map::new();
    debug.insert("log-level".into(), json!("INFO"));
    soak.model.set_config("keystone", debug).unwrap();
    soak.note("log-level changed: Apache restarts everywhere".to_owned());
    settle(&mut soak.model);
    soak.tick();

    // remove-unit: a non-leader, then the leader.
    let leader = soak.leader();
    let non_leader = soak
        .model
        .units("keystone")
        .into_iter()
        .find(|u| *u != leader)
        .unwrap();
    for unit in [non_leader, leader] {
        soak.unserve(&unit);
        soak.behind_since.remove(&unit);
        soak.model.remove_unit(&unit).unwrap();
        soak.note(format!("{unit} removed"));
        settle(&mut soak.model);
        soak.tick();
    }

    // One more scheduled rotation on the new leader, and a token past its expiry.
    let rotations = soak.rotations;
    soak.tick_until("a scheduled rotation on the new leader", limit, |s| {
        s.rotations > rotations && s.behind_since.is_empty()
    });
    while started.elapsed() < Duration::from_secs(EXPIRATION + 10) {
        soak.tick();
    }
    for (unit, (base, _)) in soak.targets.lock().unwrap().clone() {
        let reply = http(
            &[
                "-H",
                &format!("X-Auth-Token: {first_token}"),
                "-H",
                &format!("X-Subject-Token: {first_token}"),
                &format!("{base}/auth/tokens"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(reply.status, 401, "{unit} refuses an expired token");
    }

    stop.store(true, Ordering::Relaxed);
    running.join().unwrap();
    let f = figures.lock().unwrap();
    let lag = longest_lag(&soak.model.hook_log(), &soak.excused);
    for line in &soak.timeline {
        println!("{line}");
    }
    println!(
        "soak ({} s, {} unavailable while a unit restarted or left)",
        started.elapsed().as_secs(),
        f.unavailable
    );
    println!(
        "soak: {} tokens issued, {} validations, {} failed, {} rotations, {:.1} s longest lag",
        f.issued,
        f.validations,
        f.failed,
        soak.rotations,
        lag.as_secs_f64()
    );
    if f.failed > 0 {
        // Once in some twenty runs every token issued before a rotate-fernet failed on every
        // unit for its remaining lifetime, though every unit held the key that signed them:
        // say whether Keystone revoked them, and what the charm changed in Keystone.
        let base = format!("http://{}:5000/v3", soak.vip);
        if let Ok(admin) = try_issue(&base, &password, &[]) {
            let events = http(
                &[
                    "-H",
                    &format!("X-Auth-Token: {admin}"),
                    &format!("{base}/OS-REVOKE/events"),
                ],
                &[],
            );
            println!("revocation events: {events:?}");
        }
        for line in soak.model.logs() {
            if line.message.contains("Keystone:") || line.level == "WARNING" {
                println!("{}: {} {}", line.unit, line.level, line.message);
            }
        }
    }
    assert_eq!(f.failed, 0, "{:#?}", f.failures);
    // Three scheduled, one rotate-fernet, one forced.
    assert!(soak.rotations >= 5, "{} rotations", soak.rotations);
    assert!(f.validations > 500, "{f:?}");
}
