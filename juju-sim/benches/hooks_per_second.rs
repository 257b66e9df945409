//! Hooks per second the simulator runs: a 3-unit model, and one application related to 100
//! consumer applications. The charm is the probe test charm (a shell dispatch doing nothing), so
//! the figures measure the simulator: process start, environment, hook queue and commit.

use std::path::Path;
use std::time::Instant;

use juju_sim::Model;
use serde_json::Map;

fn charm() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charms/probe")
}

fn measure(label: &str, build: impl FnOnce(&mut Model)) {
    let mut model = Model::new().expect("model");
    // The probe charm records its hooks here.
    let record = std::env::temp_dir().join(format!("sim-bench-{}", std::process::id()));
    std::fs::create_dir_all(&record).expect("record dir");
    model.set_hook_env("PROBE_DIR", record.to_str().expect("utf-8 path"));
    build(&mut model);
    let started = Instant::now();
    model.settle().expect("settles");
    let elapsed = started.elapsed();
    let hooks = model.hook_log().len();
    println!(
        "{label}: {hooks} hooks in {:.2} s = {:.0} hooks/s",
        elapsed.as_secs_f64(),
        hooks as f64 / elapsed.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&record);
}

fn main() {
    measure("3-unit model (deploy)", |m| {
        m.deploy("a", &charm(), 3, Map::new()).unwrap();
    });
    measure("1 app related to 100 consumer apps", |m| {
        m.deploy("a", &charm(), 1, Map::new()).unwrap();
        for i in 0..100 {
            let name = format!("c{i}");
            m.deploy(&name, &charm(), 1, Map::new()).unwrap();
            m.relate("a:db", &format!("{name}:backend")).unwrap();
        }
    });
}
