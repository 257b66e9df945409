//! Whole-process cost of the commonest hooks, run as Juju runs them against the fake hook tools
//! of the integration tests: wall time (median of N runs, `BENCH_RUNS`, default 30), hook-tool
//! calls made, and the size of the release binary. Plain figures, for the closing notes.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::FakeJuju;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A leader with a database relation and the default config: nothing to do.
fn ready_leader(binary: &Path) -> FakeJuju {
    let juju = FakeJuju::new(binary);
    juju.set_leader(true);
    juju.respond(
        "relation-ids",
        &["--format=json", "shared-db"],
        "[\"shared-db:3\"]\n",
    );
    juju
}

fn bench_hook(binary: &Path, hook: &str, runs: usize) {
    let juju = ready_leader(binary);
    let first = juju.run_hook(hook);
    assert!(
        first.status.success(),
        "{hook} failed: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let calls = juju.call_lines();
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let output = juju.run_hook(hook);
        samples.push(start.elapsed());
        assert!(output.status.success());
    }
    let min = samples.iter().min().copied().unwrap_or_default();
    println!(
        "{hook}: median {} (min {}) over {runs} runs, {} hook-tool calls",
        ms(median(samples)),
        ms(min),
        calls.len()
    );
    for call in calls {
        println!("    {call}");
    }
}

/// The cost of one fake tool call, to tell the charm's own time from the fakes'.
fn bench_fake_tool(binary: &Path, runs: usize) {
    let juju = ready_leader(binary);
    let tool = juju.tools_dir.join("is-leader");
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let output = Command::new(&tool)
            .arg("--format=json")
            .output()
            .expect("run a fake tool");
        samples.push(start.elapsed());
        assert!(output.status.success());
    }
    println!(
        "one fake hook-tool call (sh script): median {}",
        ms(median(samples))
    );
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30)
        .max(1);
    let binary = Path::new(env!("CARGO_BIN_EXE_keystone-charm"));
    println!("binary under test: {}", binary.display());
    bench_hook(binary, "config-changed", runs);
    bench_hook(binary, "update-status", runs);
    bench_fake_tool(binary, runs);
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/keystone-charm");
    match std::fs::metadata(&release) {
        Ok(meta) => println!(
            "release binary (profile.release strips it): {} bytes ({:.2} MiB)",
            meta.len(),
            meta.len() as f64 / 1_048_576.0
        ),
        Err(_) => println!("release binary: not built (run `cargo build --release`)"),
    }
}
