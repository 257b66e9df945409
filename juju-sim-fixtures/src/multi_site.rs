//! The multi-site demo on real services: three models of one controller (a central site of two
//! Keystone units and two edge sites of one unit each), every unit a machine of its own running
//! Keystone under Apache, one MariaDB database that every site uses (each model's scripted
//! mysql grants its units access to the same database on this host's server). The edges take
//! their fernet keys from the centre over a cross-model relation (`fernet-keys-source`).
//!
//! Tokens are issued on every unit and each one is validated on every unit, round after round:
//! after deploy, after a scheduled rotation, after a leader change at the centre, while one edge
//! is cut off (the centre rotates once, then waits for it), and after it is back. Used by
//! `juju-sim-demo --multi-site` and by the charm's real-stack test, which asserts the figures.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use crate::demo::{self, issue_admin_token, token_status};
use crate::scripted::{
    IdentityConsumer, IdentityInterface, MySql, check_database_name, drop_database, ensure_mariadb,
    mariadb_provisioner,
};
use juju_sim::Controller;

/// The sites: model name and keystone units. The first is the source.
pub const SITES: [(&str, usize); 3] = [("central", 2), ("edge1", 1), ("edge2", 1)];
/// The name the edges give the centre's offer when they consume it.
const SOURCE_ALIAS: &str = "central-keystone";
/// The edge that is cut off for a while.
const CUT_SITE: &str = "edge2";

/// What the run counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub issued: usize,
    /// Validations on a unit of another site than the one that issued the token.
    pub cross_site: usize,
    /// Validations on the issuing site (its own unit or another unit of it).
    pub same_site: usize,
    /// Validations that were refused or not answered; each is also in `failures`.
    pub failed: usize,
    /// Rotations the centre made.
    pub rotations: u64,
    pub failures: Vec<String>,
    /// What `rotate-fernet` said while the cut edge lagged (the guard naming it).
    pub guard_message: String,
    /// The centre leader's status while it waited for the cut edge.
    pub waiting_status: String,
    /// Every unit's status at the end: site, unit, `kind: message`.
    pub statuses: Vec<(String, String, String)>,
    /// The regions in the shared catalog at the end.
    pub regions: Vec<String>,
    /// Each site's nova: the user its Keystone sent it, and the status of a token requested
    /// with those credentials from that site's Keystone.
    pub consumers: Vec<(String, String, u16)>,
}

impl Figures {
    /// The line the demo ends with.
    pub fn summary(&self) -> String {
        format!(
            "multi-site: {} cross-site validations, {} failed",
            self.cross_site, self.failed
        )
    }
}

/// Where the run keeps its Keystone database: `database` is both the database's and its user's
/// name (letters, digits and _ only). The database is dropped first when `fresh`.
pub struct Options {
    pub database: String,
    pub fresh: bool,
}

/// A token and where it was issued.
struct Issued {
    site: &'static str,
    unit: String,
    round: &'static str,
    token: String,
}

/// The deployment and the tokens issued so far.
struct Run<'a> {
    controller: Controller,
    out: &'a mut dyn Write,
    password: String,
    tokens: Vec<Issued>,
    figures: Figures,
}

/// Runs the whole demo, writing what it does to `out`; the figures, and the controller (whose
/// models' machines stop when it is dropped).
pub fn run(charm: &Path, options: &Options, out: &mut dyn Write) -> Result<(Controller, Figures)> {
    let name = &options.database;
    ensure_mariadb()?;
    if options.fresh {
        drop_database(name)?;
    } else {
        check_database_name(name)?;
    }
    let mut run = Run {
        controller: deploy(charm, name)?,
        out,
        password: String::new(),
        tokens: Vec::new(),
        figures: Figures::default(),
    };
    run.settle()?;
    run.report_status("after deploy")?;
    let task = run.controller.run_action(
        "central",
        &run.leader("central")?,
        "get-admin-password",
        Map::new(),
    )?;
    run.password = task
        .results
        .get("admin-password")
        .and_then(Value::as_str)
        .context("get-admin-password returned no password")?
        .to_owned();
    run.check_consumers()?;
    run.round("after deploy")?;

    writeln!(
        run.out,
        "\n== scheduled rotation at the centre (the simulator moves its last rotation back one \
         period, as if the time had passed; update-status on its leader)"
    )?;
    run.make_rotation_due()?;
    let leader = run.leader("central")?;
    run.update_status(&leader)?;
    run.report_generations()?;
    run.round("after rotation 1")?;

    let other = run
        .units("central")?
        .into_iter()
        .find(|u| *u != leader)
        .context("central has one unit")?;
    writeln!(
        run.out,
        "\n== leader change at the centre: {leader} -> {other}"
    )?;
    run.controller.model_mut("central")?.set_leader(&other)?;
    run.settle()?;
    run.round("after the leader change")?;

    writeln!(
        run.out,
        "\n== {CUT_SITE} cut off from the other models; a rotation falls due at the centre"
    )?;
    run.controller.cut(CUT_SITE)?;
    run.make_rotation_due()?;
    run.update_status(&other)?;
    run.report_generations()?;
    run.round("while edge2 is cut off (it holds the keys of before, whose staged key signs now)")?;
    writeln!(
        run.out,
        "\n== another rotation falls due while {CUT_SITE} has not acknowledged the current keys"
    )?;
    run.make_rotation_due()?;
    let task = run
        .controller
        .run_action("central", &other, "rotate-fernet", Map::new())?;
    run.figures.guard_message = task.message.clone().unwrap_or_default();
    writeln!(
        run.out,
        "    juju run {other} rotate-fernet: {} {}",
        task.status, run.figures.guard_message
    )?;
    run.update_status(&other)?;
    run.figures.waiting_status = run.status("central", &other)?;
    writeln!(run.out, "    {other}: {}", run.figures.waiting_status)?;
    run.report_generations()?;

    writeln!(
        run.out,
        "\n== {CUT_SITE} reconnected: it adopts the current keys and acknowledges them; the \
         centre's due rotation follows at its next update-status"
    )?;
    run.controller.restore(CUT_SITE)?;
    run.settle()?;
    run.update_status(&other)?;
    run.report_generations()?;
    run.report_status("at the end")?;
    run.report_regions()?;
    run.round("at the end")?;
    run.figures.rotations = run.generation("central")?.saturating_sub(1);
    let figures = run.figures.clone();
    writeln!(
        run.out,
        "\n{} tokens issued, {} cross-site and {} same-site validations, {} rotations at the \
         centre",
        figures.issued, figures.cross_site, figures.same_site, figures.rotations
    )?;
    for failure in &figures.failures {
        writeln!(run.out, "FAILED: {failure}")?;
    }
    writeln!(run.out, "{}", figures.summary())?;
    Ok((run.controller, figures))
}

/// The three models, deployed and related (not settled): every site's keystone on machines,
/// with its own scripted mysql onto the one database and its own nova (the same service user in
/// the one database); the edges consume the centre's offer of `fernet-keys` and relate to it,
/// all before any hook runs, as a bundle would.
fn deploy(charm: &Path, database: &str) -> Result<Controller> {
    let mut controller = Controller::new();
    for (site, units) in SITES {
        let model = controller.add_model(site)?;
        model.use_machines(crate::demo::keystone_machine())?;
        let mut mysql = MySql::new("demo-db-password");
        mysql.db_host = model.host_address();
        mysql.provisioner = Some(mariadb_provisioner());
        model.deploy_scripted("mysql", Box::new(mysql), 1)?;
        let options = json!({
            "region": site,
            "database": database,
            "database-user": database,
            // Two rotations keep every key a token of this run was signed with.
            "fernet-max-active-keys": 5,
        });
        model.deploy(
            "keystone",
            charm,
            units,
            options.as_object().cloned().unwrap_or_default(),
        )?;
        let nova = IdentityConsumer::new("nova", IdentityInterface::Service);
        model.deploy_scripted("nova", Box::new(nova), 1)?;
        model.relate("keystone:identity-service", "nova:identity-service")?;
    }
    let (source, _) = SITES[0];
    let url = controller.offer(source, "keystone:fernet-keys", None)?;
    for (site, _) in &SITES[1..] {
        controller.consume(site, &url, Some(SOURCE_ALIAS))?;
        controller.relate(site, "keystone:fernet-keys-source", SOURCE_ALIAS)?;
    }
    for (site, _) in SITES {
        controller.relate(site, "keystone:shared-db", "mysql:shared-db")?;
    }
    Ok(controller)
}

impl Run<'_> {
    fn settle(&mut self) -> Result<()> {
        self.controller.settle()
    }

    fn units(&self, site: &str) -> Result<Vec<String>> {
        Ok(self.controller.model(site)?.units("keystone"))
    }

    fn leader(&self, site: &str) -> Result<String> {
        self.controller
            .model(site)?
            .leader("keystone")
            .with_context(|| format!("{site} has no keystone leader"))
    }

    fn status(&self, site: &str, unit: &str) -> Result<String> {
        let (kind, message) = self
            .controller
            .model(site)?
            .unit_status(unit)
            .unwrap_or_default();
        Ok(format!("{kind}: {message}"))
    }

    /// update-status on a unit of the centre, then everything settles.
    fn update_status(&mut self, unit: &str) -> Result<()> {
        self.controller
            .model_mut("central")?
            .queue_hook(unit, "update-status");
        self.settle()
    }

    /// Moves the centre's last rotation back, so a rotation is due.
    fn make_rotation_due(&mut self) -> Result<()> {
        let model = self.controller.model("central")?;
        let id = model
            .relation_id("keystone", "cluster")
            .context("the centre has no peer relation")?;
        let mut world = model.world();
        let bag = world
            .relations
            .get_mut(&id)
            .context("the peer relation vanished")?
            .app_data
            .entry("keystone".to_owned())
            .or_default();
        bag.insert("fernet-last-rotation".to_owned(), "1000".to_owned());
        Ok(())
    }

    /// keystone's application bag in `site`'s peer relation.
    fn peer_bag(&self, site: &str) -> Result<std::collections::BTreeMap<String, String>> {
        let model = self.controller.model(site)?;
        let id = model
            .relation_id("keystone", "cluster")
            .with_context(|| format!("{site} has no peer relation"))?;
        Ok(model.relation_data(id, "keystone"))
    }

    fn generation(&self, site: &str) -> Result<u64> {
        self.peer_bag(site)?
            .get("fernet-generation")
            .and_then(|g| g.parse().ok())
            .with_context(|| format!("{site} has published no fernet keys"))
    }

    /// The centre's generation, and the centre's generation each edge holds.
    fn report_generations(&mut self) -> Result<()> {
        let mut line = vec![format!("central {}", self.generation("central")?)];
        for (site, _) in &SITES[1..] {
            let held = self
                .peer_bag(site)?
                .get("fernet-source-generation")
                .cloned()
                .unwrap_or_else(|| "none".to_owned());
            line.push(format!("{site} holds {held}"));
        }
        writeln!(self.out, "    fernet generation: {}", line.join(", "))?;
        Ok(())
    }

    /// Each site's nova logs in with what its site's Keystone sent it (one user, one password
    /// for every site), at that site.
    fn check_consumers(&mut self) -> Result<()> {
        writeln!(
            self.out,
            "\n== each site's nova, with the credentials its site's leader sent it"
        )?;
        for (site, _) in SITES {
            let leader = self.leader(site)?;
            let bag = {
                let model = self.controller.model(site)?;
                let world = model.world();
                world
                    .relations
                    .values()
                    .find(|r| r.remote_app("keystone") == Some("nova"))
                    .and_then(|r| r.unit_data.get(&leader))
                    .cloned()
                    .unwrap_or_default()
            };
            let get = |key: &str| bag.get(key).cloned().unwrap_or_default();
            let user = json!({
                "name": get("service_username"),
                "domain": {"id": get("service_domain_id")},
                "password": get("service_password"),
            });
            let scope = json!({"project": {"id": get("service_tenant_id")}});
            let base = format!("http://{}:5000/v3", self.address(site, &leader)?);
            let reply = demo::request_token(&base, &user, &scope, &[])?;
            writeln!(
                self.out,
                "    {site:<8} nova: user {:?}; token from {site}'s {leader}: {}",
                get("service_username"),
                reply.status
            )?;
            self.figures
                .consumers
                .push((site.to_owned(), get("service_username"), reply.status));
        }
        Ok(())
    }

    /// The regions of the shared catalog, as the centre's Keystone lists them.
    fn report_regions(&mut self) -> Result<()> {
        let leader = self.leader("central")?;
        let base = format!("http://{}:5000/v3", self.address("central", &leader)?);
        let token = issue_admin_token(&base, &self.password, &[])?;
        let reply = demo::http(&[
            "-H",
            &format!("X-Auth-Token: {token}"),
            &format!("{base}/regions"),
        ])?;
        let listed: Value = serde_json::from_str(&reply.body)
            .with_context(|| format!("GET {base}/regions answered {}", reply.status))?;
        self.figures.regions = listed["regions"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        writeln!(
            self.out,
            "    regions in the shared catalog: {}",
            self.figures.regions.join(", ")
        )?;
        Ok(())
    }

    fn report_status(&mut self, when: &str) -> Result<()> {
        self.figures.statuses.clear();
        writeln!(self.out, "\n== every site's units, {when}")?;
        for (site, _) in SITES {
            for unit in self.units(site)? {
                let address = self.address(site, &unit)?;
                let status = self.status(site, &unit)?;
                writeln!(self.out, "    {site:<8} {unit:<11} {address:<12} {status}")?;
                self.figures.statuses.push((site.to_owned(), unit, status));
            }
        }
        Ok(())
    }

    fn address(&self, site: &str, unit: &str) -> Result<String> {
        self.controller
            .model(site)?
            .unit_address(unit)
            .with_context(|| format!("{site} {unit} has no address"))
    }

    /// Issues a token on every unit of every site, then validates every token issued so far on
    /// every unit.
    fn round(&mut self, round: &'static str) -> Result<()> {
        writeln!(
            self.out,
            "\n== tokens {round}: one issued on each unit; every token so far validated on \
             every unit"
        )?;
        let mut units = Vec::new();
        for (site, _) in SITES {
            for unit in self.units(site)? {
                let base = format!("http://{}:5000/v3", self.address(site, &unit)?);
                units.push((site, unit, base));
            }
        }
        for (site, unit, base) in &units {
            let token = issue_admin_token(base, &self.password, &[])
                .with_context(|| format!("{site} {unit} did not issue a token"))?;
            self.figures.issued += 1;
            self.tokens.push(Issued {
                site,
                unit: unit.clone(),
                round,
                token,
            });
        }
        let mut valid = Vec::new();
        for (site, unit, base) in &units {
            let mut ok = 0;
            for issued in &self.tokens {
                let status = token_status(base, &issued.token, &issued.token)?;
                match issued.site == *site {
                    true => self.figures.same_site += 1,
                    false => self.figures.cross_site += 1,
                }
                if status == 200 {
                    ok += 1;
                } else {
                    self.figures.failed += 1;
                    self.figures.failures.push(format!(
                        "a token issued on {} {} {} was refused by {site} {unit}: {status}",
                        issued.site, issued.unit, issued.round
                    ));
                }
            }
            valid.push(format!("{site} {unit} {ok}/{}", self.tokens.len()));
        }
        writeln!(self.out, "    valid: {}", valid.join(", "))?;
        Ok(())
    }
}
