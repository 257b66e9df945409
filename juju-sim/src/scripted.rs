//! Remote charms scripted in Rust: the other side of a relation, written inside a test. A
//! scripted charm's hooks go through the same hook tools, rules and commit semantics as a real
//! charm's; only the process is missing. This module is the mechanism (the trait and the hook
//! handle); the charms a test plays against are its own, or a fixtures crate's.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::state::{HookEvent, World};
use crate::tools::run_tool;

/// A charm whose hooks are Rust code.
pub trait ScriptedCharm: Send {
    /// Its metadata.yaml.
    fn metadata(&self) -> &str;
    /// Handles one hook; an error fails the hook (and Juju retries it).
    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> Result<()>;
}

/// A charm with this metadata that does nothing in its hooks: a provider that has not
/// answered yet, a subordinate that only relates.
pub struct Inert(pub String);

impl ScriptedCharm for Inert {
    fn metadata(&self) -> &str {
        &self.0
    }
    fn handle(&mut self, _hook: &mut ScriptedHook<'_>) -> Result<()> {
        Ok(())
    }
}

/// One hook of a scripted charm: the hook tools, with the running unit's rights.
pub struct ScriptedHook<'a> {
    world: &'a mut World,
    pub unit: String,
    pub event: HookEvent,
}

impl<'a> ScriptedHook<'a> {
    pub fn new(world: &'a mut World, unit: &str, event: &HookEvent) -> ScriptedHook<'a> {
        ScriptedHook {
            world,
            unit: unit.to_owned(),
            event: event.clone(),
        }
    }

    /// Calls a hook tool as the charm process would; a non-zero exit is an error.
    pub fn tool(&mut self, name: &str, args: &[&str]) -> Result<String> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let output = run_tool(self.world, name, &args, &[]);
        if output.code != 0 {
            bail!("{name} failed ({}): {}", output.code, output.stderr.trim());
        }
        Ok(output.stdout)
    }

    fn json<T: serde::de::DeserializeOwned>(&mut self, name: &str, args: &[&str]) -> Result<T> {
        let mut all = vec!["--format=json"];
        all.extend_from_slice(args);
        let out = self.tool(name, &all)?;
        Ok(serde_json::from_str(&out)?)
    }

    /// The hook's own relation, as `endpoint:id`.
    pub fn relation(&self) -> Option<String> {
        let id = self.event.relation?;
        let endpoint = self.world.endpoint_of(id, World::app_of(&self.unit))?;
        Some(format!("{endpoint}:{id}"))
    }

    pub fn hook_name(&self) -> &str {
        &self.event.name
    }

    pub fn is_leader(&mut self) -> Result<bool> {
        self.json("is-leader", &[])
    }

    pub fn address(&self) -> String {
        self.world
            .units
            .get(&self.unit)
            .map(|u| u.address.clone())
            .unwrap_or_default()
    }

    pub fn relation_ids(&mut self, endpoint: &str) -> Result<Vec<String>> {
        self.json("relation-ids", &[endpoint])
    }

    pub fn relation_list(&mut self, relation: &str) -> Result<Vec<String>> {
        self.json("relation-list", &["-r", relation])
    }

    pub fn relation_get(
        &mut self,
        relation: &str,
        target: &str,
        app: bool,
    ) -> Result<BTreeMap<String, String>> {
        let mut args = vec!["-r", relation];
        if app {
            args.push("--app");
        }
        args.push("-");
        args.push(target);
        self.json("relation-get", &args)
    }

    pub fn relation_set(
        &mut self,
        relation: &str,
        app: bool,
        settings: &[(&str, &str)],
    ) -> Result<()> {
        let pairs: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["-r", relation];
        if app {
            args.push("--app");
        }
        args.extend(pairs.iter().map(String::as_str));
        self.tool("relation-set", &args).map(|_| ())
    }

    pub fn status_set(&mut self, status: &str, message: &str) -> Result<()> {
        self.tool("status-set", &[status, "--", message])
            .map(|_| ())
    }

    /// Declares the virtual addresses a cluster manager runs for `app` (a scripted hacluster
    /// plays Pacemaker): with machines, the model puts each on one live unit's machine.
    pub fn set_vips(&mut self, app: &str, vips: Vec<std::net::Ipv4Addr>) {
        self.world.vips.insert(app.to_owned(), vips);
    }
}
