//! The simulated deployment demo (the README's main job): deploys a bundle into the simulator,
//! settles it, and prints what `juju status` would, the relation data that matters, and how many
//! hooks and hook-tool calls it took.
//!
//! Usage: juju-sim-demo --charm <keystone charm dir> [--bundle <bundle.yaml>]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use juju_sim::Model;
use juju_sim::demo::{self, Bundle, DEFAULT_BUNDLE};
use juju_sim::state::HookEvent;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One line per unit from its fernet-status action.
fn fernet_table(model: &mut Model, units: &[String]) -> Result<()> {
    println!(
        "{:<12} {:<10} {:<8} {:<8} Keys (index:fingerprint)",
        "Unit", "Generation", "In sync", "Primary"
    );
    for unit in units {
        let task = model.run_action(unit, "fernet-status", serde_json::Map::new())?;
        let field = |k: &str| {
            task.results
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_owned()
        };
        let keys = task
            .results
            .get("keys")
            .and_then(|k| k.as_object())
            .map(|k| {
                k.iter()
                    .map(|(i, f)| format!("{i}:{}", f.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        println!(
            "{unit:<12} {:<10} {:<8} {:<8} {keys}",
            field("generation"),
            field("in-sync"),
            field("primary-key-index")
        );
    }
    Ok(())
}

fn run() -> Result<()> {
    let mut charm: Option<PathBuf> = None;
    let mut bundle_path: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--charm" => charm = args.next().map(PathBuf::from),
            "--bundle" => bundle_path = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("usage: juju-sim-demo --charm <charm dir> [--bundle <bundle.yaml>]");
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    let charm = charm.context("--charm <dir> is required (make demo builds it)")?;
    if !demo::is_charm_dir(&charm) {
        bail!(
            "{} is not a charm directory (no metadata.yaml or dispatch)",
            charm.display()
        );
    }
    let text = match &bundle_path {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => DEFAULT_BUNDLE.to_owned(),
    };
    let bundle = Bundle::parse(&text)?;

    println!("== Simulated Juju model (no controller; every hook runs the real charm binary)");
    println!(
        "Real services: not started. The charm does not install or run Keystone yet (issue 5),"
    );
    println!("so this demo shows hook order, relation data, status and hook-tool costs only.\n");

    let mut model = Model::new()?;
    // Each unit is a machine of its own: its own /etc/keystone, where its keys live.
    model.isolate_paths(&["/etc/keystone"]);
    let charms = BTreeMap::from([("keystone".to_owned(), charm.clone())]);
    demo::deploy_bundle(&mut model, &bundle, &charms)?;
    model.settle()?;

    println!("== juju status\n{}", demo::status_report(&model));
    println!("== relation data\n{}", demo::relation_report(&model));

    // One update-status tick and a config-changed with nothing to change, as Juju sends after
    // an agent restart: what a steady-state hook costs.
    let keystone_units = model.units("keystone");
    model.update_status();
    model.settle()?;
    for unit in &keystone_units {
        model
            .world()
            .queue(unit, HookEvent::simple("config-changed"));
    }
    model.settle()?;
    println!("== fernet keys on every unit (juju run keystone/N fernet-status)");
    fernet_table(&mut model, &keystone_units)?;
    let leader = model.leader("keystone").context("keystone has no leader")?;
    let task = model.run_action(&leader, "rotate-fernet", serde_json::Map::new())?;
    println!(
        "\n== juju run {leader} rotate-fernet: {} {}",
        task.status,
        serde_json::Value::Object(task.results.clone())
    );
    println!("(the new keys travel to the other units over the cluster relation)\n");
    fernet_table(&mut model, &keystone_units)?;
    println!("\n== hooks\n{}", demo::hook_report(&model));
    let log = model.hook_log();
    for hook in ["update-status", "config-changed"] {
        if let Some(run) = log
            .iter()
            .rev()
            .find(|r| r.hook == hook && r.unit == keystone_units[0])
        {
            println!(
                "last {hook} on {}: {} hook-tool calls, exit {}, {:.1} ms",
                run.unit,
                run.tool_calls.len(),
                run.exit_code,
                run.duration.as_secs_f64() * 1000.0
            );
            for call in &run.tool_calls {
                println!("    {call}");
            }
        }
    }
    Ok(())
}
