//! Faithfulness: a charm written with the Python ops library runs under the simulator. ops calls
//! the hook tools exactly as real Juju expects and parses their output strictly, so if it cannot
//! read ours, the simulator is wrong.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use juju_sim::Model;
use juju_sim::scripted::{ScriptedCharm, ScriptedHook};
use serde_json::{Map, json};

/// The Python with ops: the workspace's .venv (`make venv` creates it).
fn ops_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python3");
    let ok = Command::new(&python)
        .args(["-c", "import ops"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import ops: run `make venv` (python3 -m venv .venv && .venv/bin/pip install ops)",
        python.display()
    );
    python
}

/// A copy of the ops charm: ops keeps its state in the charm directory.
fn charm_copy(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charms/ops-probe");
    let target = dir.join("ops-probe");
    fs::create_dir_all(target.join("src")).unwrap();
    for file in [
        "dispatch",
        "metadata.yaml",
        "config.yaml",
        "actions.yaml",
        "src/charm.py",
    ] {
        fs::copy(source.join(file), target.join(file)).unwrap();
    }
    target
}

/// The other side of `db`: writes `colour` into its unit bag when it joins.
struct Painter;

impl ScriptedCharm for Painter {
    fn metadata(&self) -> &str {
        "name: painter\nrequires:\n  backend:\n    interface: probe-db\n"
    }
    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> anyhow::Result<()> {
        if hook.hook_name() == "backend-relation-joined" {
            let relation = hook.relation().expect("relation hook");
            hook.relation_set(&relation, false, &[("colour", "teal")])?;
        }
        Ok(())
    }
}

#[test]
fn an_ops_charm_reads_config_sets_relation_data_uses_a_secret_and_sets_status() {
    let python = ops_python();
    let dir = std::env::temp_dir().join(format!("ops-probe-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let charm = charm_copy(&dir);

    let mut model = Model::new().unwrap();
    model.set_hook_env("OPS_PYTHON", python.to_str().unwrap());
    model
        .deploy(
            "probe",
            &charm,
            2,
            json!({"name": "sim"}).as_object().unwrap().clone(),
        )
        .unwrap();
    model.settle().unwrap();

    let failures: Vec<String> = model
        .hook_log()
        .into_iter()
        .filter(|r| r.exit_code != 0)
        .map(|r| format!("{} {}: {}", r.unit, r.hook, r.stderr))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");

    assert_eq!(
        model.unit_status("probe/0"),
        Some(("active".to_owned(), "name=sim count=3".to_owned()))
    );
    assert_eq!(
        model.app_status("probe"),
        Some(("active".to_owned(), "leader ready".to_owned()))
    );
    // The non-leader read the app-owned secret whose id the leader put in the peer app bag.
    assert_eq!(
        model.unit_status("probe/1"),
        Some(("active".to_owned(), "token=t0k3n-sim".to_owned()))
    );
    let peers = model.relation_id("probe", "peers").unwrap();
    assert_eq!(
        model
            .relation_data(peers, "probe/1")
            .get("hello")
            .map(String::as_str),
        Some("sim-3")
    );

    // Relation data both ways through ops' relation-get/relation-set.
    model
        .deploy_scripted("painter", Box::new(Painter), 1)
        .unwrap();
    let db = model.relate("probe:db", "painter:backend").unwrap();
    model.settle().unwrap();
    assert_eq!(
        model
            .relation_data(db, "probe/0")
            .get("echo")
            .map(String::as_str),
        Some("teal")
    );
    assert_eq!(
        model
            .relation_data(db, "probe")
            .get("leader-saw")
            .map(String::as_str),
        Some("teal")
    );

    // A config change reaches ops typed, and the secret gets a new revision.
    model
        .set_config("probe", json!({"count": 7}).as_object().unwrap().clone())
        .unwrap();
    model.settle().unwrap();
    assert_eq!(
        model.unit_status("probe/0").map(|s| s.1),
        Some("name=sim count=7".to_owned())
    );

    // Actions: params with defaults in, results out.
    let task = model.run_action("probe/1", "report", Map::new()).unwrap();
    assert_eq!(task.status, "completed", "{task:?}");
    assert_eq!(task.results["units"], json!("1"));
    assert_eq!(task.results["prefix"], json!("seen"));
    assert!(
        task.results["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.1.")
    );

    let _ = fs::remove_dir_all(&dir);
}
