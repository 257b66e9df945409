//! A client that issues tokens now and then and validates every live one, continuously, in a
//! thread of its own, counting what Keystone said: the figures of the "no token ever fails"
//! tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use juju_sim_fixtures::demo;
use serde_json::json;

/// What the client saw.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub issued: u64,
    pub validations: u64,
    /// Keystone answered, and said a valid token was not (the figure that must stay 0).
    pub failed: u64,
    /// No answer in time, or haproxy had no unit to send the request to.
    pub unavailable: u64,
    pub failures: Vec<String>,
    /// Why requests were unavailable (the first few).
    pub unavailable_because: Vec<String>,
    /// The longest a validation took to be answered.
    pub longest_wait: std::time::Duration,
    /// How long each answered validation took, in order.
    pub latencies: Vec<std::time::Duration>,
}

impl Figures {
    fn unavailable(&mut self, why: String) {
        self.unavailable += 1;
        if self.unavailable_because.len() < 10 {
            self.unavailable_because.push(why);
        }
    }

    /// The 99th percentile of the validations answered after the first `from` (None when none
    /// were).
    pub fn p99_since(&self, from: usize) -> Option<std::time::Duration> {
        let mut window: Vec<std::time::Duration> =
            self.latencies.get(from..).unwrap_or_default().to_vec();
        window.sort();
        let index = (window.len() * 99).div_ceil(100).checked_sub(1)?;
        window.get(index).copied()
    }
}

/// curl with a short time limit, 5 s unless `extra` sets another `--max-time` (and `extra`'s
/// other options): a request caught on a machine that goes down counts as unavailable, not as
/// a failed token.
pub fn http(args: &[&str], extra: &[&str]) -> Result<demo::HttpReply, String> {
    let mut all = vec!["--max-time", "5"];
    all.extend_from_slice(extra);
    all.extend_from_slice(args);
    match demo::http(&all) {
        Ok(reply) if reply.status != 0 && reply.status < 500 => Ok(reply),
        Ok(reply) => Err(format!("HTTP {}: {}", reply.status, reply.body.trim())),
        Err(err) => Err(format!("{err:#}")),
    }
}

/// A token for the admin user from Keystone at `base` (`…/v3`), or `None` if none came in time.
pub fn issue(base: &str, password: &str, extra: &[&str]) -> Option<String> {
    try_issue(base, password, extra).ok()
}

/// A token for the admin user, or why none came.
pub fn try_issue(base: &str, password: &str, extra: &[&str]) -> Result<String, String> {
    let user = json!({"name": "admin", "domain": {"name": "admin_domain"}, "password": password});
    let scope = json!({"project": {"name": "admin", "domain": {"name": "admin_domain"}}});
    let mut args = vec!["--max-time", "5"];
    args.extend_from_slice(extra);
    let reply = demo::request_token(base, &user, &scope, &args).map_err(|e| format!("{e:#}"))?;
    match reply.subject_token {
        Some(token) if reply.status == 201 => Ok(token),
        _ => Err(format!("HTTP {}: {}", reply.status, reply.body.trim())),
    }
}

fn run(base: &str, password: &str, extra: &[String], stop: &AtomicBool, figures: &Mutex<Figures>) {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut tokens: Vec<String> = Vec::new();
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if round.is_multiple_of(5) || tokens.is_empty() {
            match try_issue(base, password, &extra) {
                Ok(token) => {
                    tokens.push(token);
                    if tokens.len() > 8 {
                        tokens.remove(0);
                    }
                    figures.lock().unwrap().issued += 1;
                }
                Err(why) => figures.lock().unwrap().unavailable(format!("issue: {why}")),
            }
        }
        round += 1;
        let Some(auth) = tokens.last().cloned() else {
            continue;
        };
        for token in tokens.clone() {
            let url = format!("{base}/auth/tokens");
            let started = std::time::Instant::now();
            let reply = http(
                &[
                    "-H",
                    &format!("X-Auth-Token: {auth}"),
                    "-H",
                    &format!("X-Subject-Token: {token}"),
                    &url,
                ],
                &extra,
            );
            let mut f = figures.lock().unwrap();
            let waited = started.elapsed();
            f.longest_wait = f.longest_wait.max(waited);
            if reply.is_ok() {
                f.latencies.push(waited);
            }
            match reply {
                Ok(r) if r.status == 200 => f.validations += 1,
                Ok(r) => {
                    f.validations += 1;
                    f.failed += 1;
                    f.failures.push(format!("{}: {}", r.status, r.body));
                }
                Err(why) => f.unavailable(format!("validate: {why}")),
            }
        }
    }
}

/// The running client.
pub struct Validator {
    stop: Arc<AtomicBool>,
    figures: Arc<Mutex<Figures>>,
    thread: JoinHandle<()>,
}

impl Validator {
    /// Starts validating against `base` with the admin `password`; `extra` are curl options
    /// (e.g. `--cacert`, `--resolve`).
    pub fn start(base: &str, password: &str, extra: &[&str]) -> Validator {
        let stop = Arc::new(AtomicBool::new(false));
        let figures = Arc::new(Mutex::new(Figures::default()));
        let thread = {
            let (base, password) = (base.to_owned(), password.to_owned());
            let extra: Vec<String> = extra.iter().map(|e| (*e).to_owned()).collect();
            let (stop, figures) = (Arc::clone(&stop), Arc::clone(&figures));
            std::thread::spawn(move || run(&base, &password, &extra, &stop, &figures))
        };
        Validator {
            stop,
            figures,
            thread,
        }
    }

    /// The figures so far.
    pub fn figures(&self) -> Figures {
        self.figures.lock().unwrap().clone()
    }

    /// Stops the client and returns its figures.
    pub fn stop(self) -> Figures {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.figures.lock().unwrap().clone()
    }
}
