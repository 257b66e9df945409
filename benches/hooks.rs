//! Whole-process cost of the commonest hooks: first on a unit of the simulator running real
//! Keystone, Apache and MariaDB (steady state: wall time and hook-tool calls of update-status and
//! of a config-changed that changes nothing, leader and non-leader), then in the simulator with no
//! services (the binary's own cost), and the size of the release binary. Then, in the simulator
//! without services: how many hooks and how long a `rotate-fernet` takes to reach every unit of
//! 3, 5 and 9, and the peak resident set size of one update-status and one config-changed.
//! Median of N runs (`BENCH_RUNS`, default 30). Plain figures, for the closing notes.

#[path = "../tests/support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use support::Keystone;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The binary's own cost: a hook that only reads and reports, in the simulator without services.
fn bench_hook(hook: &str, runs: usize) {
    // A leader whose database never answers: a hook has nothing to do but read and report.
    let mut keystone = Keystone::deploy("3.6.1", 1, serde_json::Map::new()).with_silent_database();
    let mut samples = Vec::with_capacity(runs);
    let mut calls = Vec::new();
    for _ in 0..runs {
        let run = keystone.run("keystone/0", hook);
        assert_eq!(run.exit_code, 0, "{hook} failed: {}", run.stderr);
        samples.push(run.duration);
        calls = run.tool_calls;
    }
    let min = samples.iter().min().copied().unwrap_or_default();
    println!(
        "{hook} (simulator, no services): median {} (min {}) over {runs} runs, {} hook-tool calls",
        ms(median(samples)),
        ms(min),
        calls.len()
    );
    for call in calls {
        println!("    {call}");
    }
}

/// Rotation convergence in the simulator without services: `rotate-fernet` on the leader of a
/// settled deployment of `units` (no database: keys travel over the peer relation whatever the
/// database does), then the model settles. The leader holds the new generation once the action
/// ran; another unit once a hook of its applied it to its disk and acknowledged it in its cluster
/// unit bag (`fernet-generation`, what the leader waits for before rotating again). Hooks are
/// counted after the action; wall times run from the action's start.
fn bench_rotation(units: usize) {
    let mut keystone = Keystone::deploy("3.6.1", units, serde_json::Map::new());
    support::settle(&mut keystone.model);
    let model = &mut keystone.model;
    let (leader, _) = support::leader_and_other(model, "keystone");
    let before = model.hook_log().len();
    let started = Instant::now();
    // Forced: the keys were made a moment ago, sooner than the rotation period allows.
    let force = serde_json::json!({"force": true})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let task = model
        .run_action(&leader, "rotate-fernet", force)
        .expect("the model settles after the rotation");
    let settled = started.elapsed();
    assert_eq!(task.status, "completed", "{task:?}");
    let generation = task.results["generation"]
        .as_str()
        .expect("the new generation")
        .to_owned();
    let runs: Vec<_> = model.hook_log().split_off(before);
    assert!(runs.iter().all(|r| r.exit_code == 0), "a hook failed");
    // Every unit holds it now, as the charm says it: the leader published it, the others
    // acknowledged it.
    let id = model
        .relation_id("keystone", "cluster")
        .expect("the peer relation");
    assert_eq!(
        model.relation_data(id, "keystone")["fernet-generation"],
        generation
    );
    let applied = format!("fernet keys: applied generation {generation}");
    let mut converged = runs
        .iter()
        .position(|r| r.hook == "rotate-fernet")
        .expect("the action ran");
    for unit in model.units("keystone").into_iter().filter(|u| *u != leader) {
        assert_eq!(
            model.relation_data(id, &unit).get("fernet-generation"),
            Some(&generation),
            "{unit} acknowledged"
        );
        let at = runs
            .iter()
            .position(|r| {
                r.unit == unit
                    && r.tool_calls
                        .iter()
                        .any(|c| c.starts_with("juju-log") && c.contains(&applied))
            })
            .unwrap_or_else(|| panic!("{unit}: no hook applied generation {generation}"));
        converged = converged.max(at);
    }
    let hooks_until = |end: usize| {
        runs[..end]
            .iter()
            .filter(|r| r.hook != "rotate-fernet")
            .count()
    };
    println!(
        "rotation convergence, {units} units: {} hooks, {:.2} s until every unit holds generation \
         {generation}; settled after {} hooks, {:.2} s",
        hooks_until(converged + 1),
        (runs[converged].ended - started).as_secs_f64(),
        hooks_until(runs.len()),
        settled.as_secs_f64()
    );
}

/// Peak resident set size of one steady-state hook, in the simulator without services (largest
/// of `runs`): each hook of the packed charm runs under this bench binary (`--measure-rss`,
/// below), which waits for it and asks the kernel (getrusage(RUSAGE_CHILDREN): the largest of
/// the hook's processes, i.e. the charm and the hook tools it ran, about 1.7 MiB each). Not
/// measured in this process: its children's peak never goes down, and earlier hooks (install,
/// keystone-manage in the real-stack figures) set it higher than any steady-state hook.
fn bench_peak_rss(runs: usize) {
    let mut keystone = Keystone::deploy("3.6.1", 1, serde_json::Map::new()).with_silent_database();
    let dispatch = keystone.charm_dir.join("dispatch");
    let measured = keystone.charm_dir.join("dispatch.measured");
    let report = keystone.charm_dir.join("peak-rss");
    std::fs::rename(&dispatch, &measured).expect("move dispatch aside");
    let this = std::env::current_exe().expect("this bench's path");
    let wrapper = format!(
        "#!/bin/sh\nexec '{}' --measure-rss '{}' '{}'\n",
        this.display(),
        report.display(),
        measured.display()
    );
    std::fs::write(&dispatch, wrapper).expect("write the measuring dispatch");
    std::fs::set_permissions(&dispatch, std::fs::Permissions::from_mode(0o755))
        .expect("make it executable");
    for hook in ["update-status", "config-changed"] {
        let mut peaks = Vec::with_capacity(runs);
        for _ in 0..runs {
            let _ = std::fs::remove_file(&report);
            let run = keystone.run("keystone/0", hook);
            assert_eq!(run.exit_code, 0, "{hook} failed: {}", run.stderr);
            let text = std::fs::read_to_string(&report).expect("the hook's peak RSS");
            peaks.push(text.trim().parse::<u64>().expect("KiB"));
        }
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "peak RSS, {hook}: {:.1} MiB (largest of {runs} runs; smallest {:.1} MiB)",
            mib(peaks.iter().copied().max().unwrap_or_default()),
            mib(peaks.iter().copied().min().unwrap_or_default())
        );
    }
}

/// `--measure-rss REPORT PROGRAM`: runs PROGRAM (stdio and environment inherited), writes the
/// peak RSS of what it waited for to REPORT in KiB, and exits as PROGRAM did.
fn measure_rss(report: &str, program: &str) -> ! {
    use nix::sys::resource::{UsageWho, getrusage};
    let status = std::process::Command::new(program)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    // Linux gives ru_maxrss in KiB.
    std::fs::write(report, format!("{}\n", usage.max_rss())).expect("write the report");
    std::process::exit(status.code().unwrap_or(1));
}

/// Steady-state hooks on a two-unit deployment with real services.
fn bench_real_stack(runs: usize) {
    use juju_sim::Model;
    use juju_sim_fixtures::scripted::{MySql, ensure_mariadb, mariadb_provisioner};
    ensure_mariadb().expect("MariaDB (scripts/install-real-stack)");
    let out = support::TempDir::new("bench-real");
    let charm = support::pack_charm(&out);
    let mut model = Model::new().expect("simulator");
    model
        .use_machines(juju_sim_fixtures::demo::keystone_machine())
        .expect("machines (root, iproute2)");
    let mut mysql = MySql::new("Bench-pass-1");
    mysql.db_host = model.host_address();
    mysql.provisioner = Some(mariadb_provisioner());
    model.deploy_scripted("mysql", Box::new(mysql), 1).unwrap();
    let name = format!("ks_bench_{}", std::process::id());
    // The admin password set, so a client can ask for tokens while the deployment settles.
    let password = "Bench-admin-1";
    let options = serde_json::json!({"database": name, "database-user": name,
        "admin-password": password});
    model
        .deploy("keystone", &charm, 2, options.as_object().cloned().unwrap())
        .unwrap();
    model
        .relate("keystone:shared-db", "mysql:shared-db")
        .unwrap();
    let first_token = first_token_watcher(&model, password);
    let started = Instant::now();
    model.settle().expect("the deployment settles");
    println!(
        "real stack: deploy of 2 keystone units and mysql -> every unit active in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    deploy_profile(&model);
    // The database's answer is committed when the mysql hook that sent db_host ends.
    let db_ready = model
        .hook_log()
        .into_iter()
        .find(|run| {
            run.unit.starts_with("mysql/") && run.tool_calls.iter().any(|c| c.contains("db_host="))
        })
        .map(|run| run.ended)
        .expect("mysql answered");
    match first_token.join().expect("the watcher") {
        Some(at) => println!(
            "real stack: shared-db ready -> first token served in {:.1} s",
            at.saturating_duration_since(db_ready).as_secs_f64()
        ),
        None => println!("real stack: no token was served while the deployment settled"),
    }
    let (leader, other) = support::leader_and_other(&model, "keystone");
    for (role, unit) in [("leader", &leader), ("non-leader", &other)] {
        for hook in ["update-status", "config-changed"] {
            let mut samples = Vec::with_capacity(runs);
            let mut calls = Vec::new();
            for _ in 0..runs {
                model.queue_hook(unit, hook);
                model.settle_unit(unit).unwrap();
                let run = model.hook_log().pop().expect("a hook ran");
                assert_eq!(run.exit_code, 0, "{}", run.stderr);
                samples.push(run.duration);
                calls = run.tool_calls;
            }
            println!(
                "real stack, {role} {hook}: median {} over {runs} runs, {} hook-tool calls",
                ms(median(samples)),
                calls.len()
            );
        }
    }
}

/// Where the deploy's time went: the hooks that took longest, and within them the steps that
/// said they were slow (`the <step> step took <s> s` in the charm's log).
fn deploy_profile(model: &juju_sim::Model) {
    let log = model.hook_log();
    let keystone: Vec<_> = log
        .iter()
        .filter(|r| r.unit.starts_with("keystone/"))
        .collect();
    let total: Duration = keystone.iter().map(|r| r.duration).sum();
    println!(
        "deploy profile: {} keystone hooks, {:.1} s of hook time",
        keystone.len(),
        total.as_secs_f64()
    );
    let mut longest = keystone.clone();
    longest.sort_by_key(|r| std::cmp::Reverse(r.duration));
    for run in longest.iter().take(6) {
        println!(
            "deploy profile:   {:.1} s  {} {}",
            run.duration.as_secs_f64(),
            run.unit,
            run.hook
        );
    }
    let mut steps: std::collections::BTreeMap<String, (f64, usize)> = Default::default();
    for line in model.logs() {
        let Some(rest) = line.message.split("the ").nth(1) else {
            continue;
        };
        let Some((step, took)) = rest.split_once(" step took ") else {
            continue;
        };
        let Some(seconds) = took.strip_suffix(" s").and_then(|s| s.parse::<f64>().ok()) else {
            continue;
        };
        let entry = steps.entry(step.to_owned()).or_default();
        entry.0 += seconds;
        entry.1 += 1;
    }
    let mut steps: Vec<_> = steps.into_iter().collect();
    steps.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    for (step, (seconds, times)) in steps {
        println!("deploy profile:   step {step}: {seconds:.1} s in {times} slow runs");
    }
}

/// Asks each keystone unit for a token every 100 ms from another thread, until one is issued
/// (or five minutes pass); when that was.
fn first_token_watcher(
    model: &juju_sim::Model,
    password: &str,
) -> std::thread::JoinHandle<Option<Instant>> {
    let bases: Vec<String> = model
        .units("keystone")
        .iter()
        .filter_map(|unit| model.unit_address(unit))
        .map(|address| format!("http://{address}:5000/v3"))
        .collect();
    let password = password.to_owned();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            for base in &bases {
                if juju_sim_fixtures::demo::issue_admin_token(base, &password, &["--max-time", "5"])
                    .is_ok()
                {
                    return Some(Instant::now());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, report, program] = args.as_slice()
        && flag == "--measure-rss"
    {
        measure_rss(report, program);
    }
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30)
        .max(1);
    let binary = Path::new(env!("CARGO_BIN_EXE_keystone-charm"));
    println!("binary under test: {}", binary.display());
    bench_real_stack(runs);
    bench_hook("config-changed", runs);
    bench_hook("update-status", runs);
    for units in [3, 5, 9] {
        bench_rotation(units);
    }
    bench_peak_rss(runs.min(5));
    // `cargo bench` builds the bench profile, which is the release one: the binary under test is it.
    let release = binary;
    match std::fs::metadata(release) {
        Ok(meta) => println!(
            "release binary (profile.release strips it): {} bytes ({:.2} MiB)",
            meta.len(),
            meta.len() as f64 / 1_048_576.0
        ),
        Err(_) => println!("release binary: not built (run `cargo build --release`)"),
    }
}
