//! The simulated deployment demo (the README's main job): deploys a bundle into the simulator,
//! settles it, and prints what `juju status` would, the relation data that matters, and how many
//! hooks and hook-tool calls it took.
//!
//! Usage: juju-sim-demo --charm <keystone charm dir> [--bundle <bundle.yaml>] [--out <dir>]
//! [--no-real-services] [--multi-site]
//!
//! Once the bundle has settled it writes what `juju show-unit` prints for each unit to
//! `<out>/show-unit/<app>-<n>.yaml` and what `juju show-secret --reveal` prints for every secret
//! to `<out>/secrets.yaml`; `<out>` is the charm directory's parent unless given (build/demo
//! under `make demo`).
//!
//! By default every keystone unit is a machine of its own running real Keystone under Apache,
//! with its database in this host's MariaDB (root, and the packages of scripts/install-deps);
//! the demo then issues a token on one unit and validates it on every unit, through a fernet key
//! rotation. `--no-real-services` runs no service: the database never answers and the units wait
//! for it, which still shows hook order, relation data, fernet key distribution and hook costs.
//!
//! `--multi-site` runs the multi-site demo instead ([`juju_sim_fixtures::multi_site`]): a central site
//! and two edges in three models sharing one database and one key set, tokens validated across
//! sites through rotations, a leader change and an edge cut off; it ends with the line
//! `multi-site: <V> cross-site validations, <F> failed` and fails when F is not 0.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use juju_sim::Model;
use juju_sim::state::HookEvent;
use juju_sim_fixtures::demo::{self, Bundle, DEFAULT_BUNDLE, Services};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an action as `juju run` does: a task that failed is an error, printed as Juju prints it.
fn juju_run(
    model: &mut Model,
    unit: &str,
    action: &str,
    params: serde_json::Map<String, serde_json::Value>,
) -> Result<juju_sim::state::ActionTask> {
    let task = model.run_action(unit, action, params)?;
    if let Some(failure) = task.failure() {
        bail!("juju run {unit} {action}: {failure}");
    }
    Ok(task)
}

/// One line per unit from its fernet-status action.
fn fernet_table(model: &mut Model, units: &[String]) -> Result<Vec<(String, String)>> {
    let mut primaries = Vec::new();
    println!(
        "{:<12} {:<10} {:<8} {:<8} Keys (index:fingerprint)",
        "Unit", "Generation", "In sync", "Primary"
    );
    for unit in units {
        let task = juju_run(model, unit, "fernet-status", serde_json::Map::new())?;
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
        primaries.push((unit.clone(), field("primary-key-index")));
    }
    Ok(primaries)
}

/// One line per unit: does its Keystone accept `token`?
fn validation_table(model: &Model, units: &[String], token: &str) -> Result<()> {
    for unit in units {
        let address = model.unit_address(unit).context("no address")?;
        let base = format!("http://{address}:5000/v3");
        let status = demo::token_status(&base, token, token)?;
        let verdict = if status == 200 { "valid" } else { "REJECTED" };
        println!("    GET {base}/auth/tokens -> {status} {verdict}");
    }
    Ok(())
}

/// Drops the bundle's Keystone database so the demo starts from nothing.
fn fresh_database(bundle: &Bundle) -> Result<()> {
    let name = bundle
        .applications
        .get("keystone")
        .and_then(|a| a.options.get("database"))
        .and_then(|v| v.as_str())
        .unwrap_or("keystone");
    juju_sim_fixtures::scripted::drop_database(name)
}

fn multi_site_demo(charm: &std::path::Path) -> Result<()> {
    println!(
        "== Simulated Juju controller with three models: central (2 keystone units), edge1 and \
         edge2 (1 unit each); every unit a machine of its own running Keystone under Apache; one \
         database in this host's MariaDB that every site uses\n"
    );
    let options = juju_sim_fixtures::multi_site::Options {
        database: "keystone_sites".to_owned(),
        fresh: true,
    };
    let (_controller, figures) =
        juju_sim_fixtures::multi_site::run(charm, &options, &mut std::io::stdout())?;
    if figures.failed != 0 {
        bail!("{} validations failed", figures.failed);
    }
    Ok(())
}

fn run() -> Result<()> {
    let mut charm: Option<PathBuf> = None;
    let mut bundle_path: Option<PathBuf> = None;
    let mut out: Option<PathBuf> = None;
    let mut services = Services::Real;
    let mut multi_site = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--charm" => charm = args.next().map(PathBuf::from),
            "--bundle" => bundle_path = args.next().map(PathBuf::from),
            "--out" => out = args.next().map(PathBuf::from),
            "--no-real-services" => services = Services::None,
            "--multi-site" => multi_site = true,
            "-h" | "--help" => {
                println!(
                    "usage: juju-sim-demo --charm <charm dir> [--bundle <bundle.yaml>] [--out <dir>] \
                     [--no-real-services] [--multi-site]"
                );
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
    if multi_site {
        if services == Services::None || bundle_path.is_some() {
            bail!(
                "--multi-site deploys its own three sites on real services: drop the other options"
            );
        }
        return multi_site_demo(&charm);
    }
    let text = match &bundle_path {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => DEFAULT_BUNDLE.to_owned(),
    };
    let bundle = Bundle::parse(&text)?;

    println!("== Simulated Juju model (no controller; every hook runs the real charm binary)");
    let mut model = Model::new()?;
    match services {
        Services::Real => {
            println!(
                "Real services: each keystone unit is a machine of its own (network and mount \
                 namespaces) running Keystone under Apache with mod_wsgi; the database is this \
                 host's MariaDB, created by the scripted mysql.\n"
            );
            juju_sim_fixtures::scripted::ensure_mariadb()?;
            fresh_database(&bundle)?;
        }
        Services::None => {
            // Each unit still keeps its keys in its own /etc/keystone.
            model.isolate_paths(&["/etc/keystone", "/var/lib/keystone", "/run"]);
            println!(
                "Real services: NONE (--no-real-services). No Keystone, Apache or database runs; \
                 the scripted mysql never answers, so the units wait for their database. Shown: \
                 hook order, relation data, fernet keys and hook costs.\n"
            );
        }
    }
    let charms = BTreeMap::from([("keystone".to_owned(), charm.clone())]);
    let deployed = demo::deploy_bundle(&mut model, &bundle, &charms, services)?;
    model.settle()?;
    let out = out.unwrap_or_else(|| match charm.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    });
    let written = model.write_cli_output(&out)?;
    println!(
        "== juju show-unit ({written} units) and juju show-secret --reveal, as Juju prints them: \
         {}/show-unit/<app>-<n>.yaml and {}/secrets.yaml\n",
        out.display(),
        out.display()
    );

    println!("== juju status\n{}", demo::status_report(&model));
    println!("== relation data\n{}", demo::relation_report(&model));

    let keystone_units = model.units("keystone");
    let leader = model.leader("keystone").context("keystone has no leader")?;
    println!(
        "== identity consumers (what {} sent each; credentials tried against its Keystone)\n{}",
        keystone_units[0],
        demo::consumer_report(&model, &keystone_units[0], services == Services::Real)?
    );
    let mut token = None;
    if services == Services::Real {
        println!("== Keystone on every unit (GET http://<unit address>:5000/v3)");
        for unit in &keystone_units {
            let address = model.unit_address(unit).context("no address")?;
            let reply = demo::http(&[&format!("http://{address}:5000/v3")])?;
            println!("    {unit} {address}: {}", reply.status);
        }
        println!(
            "\n== haproxy on every unit (show stat over its admin socket: the units it sends \
             requests to, and what its health checks say)\n{}",
            demo::haproxy_report(&model, &keystone_units)
        );
        for (_, vips) in model.world().vips.clone() {
            for vip in vips {
                let reply = demo::http(&[&format!("http://{vip}:5000/v3")])?;
                println!(
                    "== the VIP {vip} (on {}): GET /v3 through it: {}\n",
                    model.vip_holder(vip).unwrap_or_default(),
                    reply.status
                );
            }
        }
        let task = juju_run(
            &mut model,
            &leader,
            "get-admin-password",
            serde_json::Map::new(),
        )?;
        let password = task
            .results
            .get("admin-password")
            .and_then(|v| v.as_str())
            .context("get-admin-password returned no password")?
            .to_owned();
        let first = model
            .unit_address(&keystone_units[0])
            .context("no address")?;
        let issued = demo::issue_admin_token(&format!("http://{first}:5000/v3"), &password, &[])?;
        println!(
            "\n== a token issued by {} for admin (password from get-admin-password, not shown), \
             validated on every unit",
            keystone_units[0]
        );
        validation_table(&model, &keystone_units, &issued)?;
        token = Some(issued);
        println!();
        let ldap_domain = bundle
            .applications
            .iter()
            .find(|(_, app)| app.charm == "scripted:keystone-ldap")
            .map(|(name, _)| name.clone());
        if let (Some(domain), Some(_)) = (ldap_domain, &deployed.directory) {
            let (user, password) = demo::LDAP_USER;
            let identity =
                serde_json::json!({"name": user, "domain": {"name": domain}, "password": password});
            let reply = demo::request_token(
                &format!("http://{first}:5000/v3"),
                &identity,
                &serde_json::json!("unscoped"),
                &[],
            )?;
            let ldap_token = match (reply.status, reply.subject_token) {
                (201, Some(token)) => token,
                (status, _) => bail!("{user} of the {domain} domain got {status}: {}", reply.body),
            };
            println!(
                "== a token issued by {} for {user} of the LDAP domain {domain} (keystone-ldap; \
                 the user is in the demo's slapd), validated on every unit",
                keystone_units[0]
            );
            validation_table(&model, &keystone_units, &ldap_token)?;
            println!();
        }
    }

    // One update-status tick and a config-changed with nothing to change, as Juju sends after
    // an agent restart: what a steady-state hook costs.
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
    let task = juju_run(&mut model, &leader, "rotate-fernet", serde_json::Map::new())?;
    println!(
        "\n== juju run {leader} rotate-fernet: {} {}",
        task.status,
        serde_json::Value::Object(task.results.clone())
    );
    let primary = task
        .results
        .get("primary-key-index")
        .and_then(|v| v.as_str())
        .context("rotate-fernet gave no primary-key-index")?
        .to_owned();
    println!("(the new keys travel to the other units over the cluster relation)\n");
    let primaries = fernet_table(&mut model, &keystone_units)?;
    if let Some((unit, other)) = primaries.iter().find(|(_, p)| *p != primary) {
        bail!("after rotate-fernet, {unit}'s primary key is {other}, not {primary}");
    }
    println!("the new primary key, {primary}, on every unit");
    if let Some(token) = &token {
        println!("\n== the same token after the rotation, on every unit");
        validation_table(&model, &keystone_units, token)?;
    }
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
