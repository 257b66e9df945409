//! Whole-process cost of the commonest hooks: first on a unit of the simulator running real
//! Keystone, Apache and MariaDB (steady state: wall time and hook-tool calls of update-status and
//! of a config-changed that changes nothing, leader and non-leader), then in the simulator with no
//! services (the binary's own cost), and the size of the release binary.
//! Median of N runs (`BENCH_RUNS`, default 30). Plain figures, for the closing notes.

#[path = "../tests/support/mod.rs"]
mod support;

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

/// Steady-state hooks on a two-unit deployment with real services.
fn bench_real_stack(runs: usize) {
    use juju_sim::Model;
    use juju_sim::scripted::{MySql, ensure_mariadb, mariadb_provisioner};
    ensure_mariadb().expect("MariaDB (scripts/install-real-stack)");
    let out = support::TempDir::new("bench-real");
    let charm = support::pack_charm(&out);
    let mut model = Model::new().expect("simulator");
    model.use_machines().expect("machines (root, iproute2)");
    let mut mysql = MySql::new("Bench-pass-1");
    mysql.db_host = model.host_address();
    mysql.provisioner = Some(mariadb_provisioner());
    model.deploy_scripted("mysql", Box::new(mysql), 1).unwrap();
    let name = format!("ks_bench_{}", std::process::id());
    let options = serde_json::json!({"database": name, "database-user": name});
    model
        .deploy("keystone", &charm, 2, options.as_object().cloned().unwrap())
        .unwrap();
    model
        .relate("keystone:shared-db", "mysql:shared-db")
        .unwrap();
    let started = Instant::now();
    model.settle().expect("the deployment settles");
    println!(
        "real stack: 2 keystone units settled with Keystone serving in {:.1} s",
        started.elapsed().as_secs_f64()
    );
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

fn main() {
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
