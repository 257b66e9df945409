//! A Juju model simulator. It runs real charm binaries as Juju runs them — `dispatch` in the
//! charm directory, Juju's environment, hook tools on PATH that talk to a unit agent over a
//! socket — and plays Juju's side: hook order, data bag rules, commit-on-success, retries of
//! failed hooks, secrets, leadership and actions. Remote charms can be scripted in Rust
//! ([`scripted`]).
//!
//! The API follows ops' Scenario: build a model, act on it (`deploy`, `relate`, `set_config`,
//! `run_action`, ...), `settle`, then read the state out.
//!
//! A [`Controller`] holds several models, with offers and cross-model relations between them
//! (see [`controller`]).
//!
//! This crate knows no particular charm: the model, the hook runner and its tools, the
//! controller, and machines, which are given the paths a charm needs by whoever deploys it
//! ([`machine::MachineLayout`]). Fixtures for one charm (its scripted peers, machine layout,
//! bundles) live in a crate of their own that depends on this one; `tests/core_is_charm_free.rs`
//! keeps it so.

pub mod charm;
pub mod cli;
pub mod controller;
pub mod format;
pub mod goyaml;
pub mod machine;
pub mod scripted;
pub mod server;
pub mod state;
pub mod tools;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

use charm::{CharmMeta, Role};
pub use controller::{Controller, CrossModelRelation, Offer};
use scripted::{ScriptedCharm, ScriptedHook};
use server::Server;
use state::{
    ActionTask, App, Bag, CharmKind, HookContext, HookEvent, HookRun, Pending, RelationEnd,
    StatusRecord, Unit, World,
};

/// How often a failed hook is retried before `settle` gives up (Juju retries forever, with
/// backoff; a test needs an answer).
pub const MAX_RETRIES: u32 = 3;

/// Bound on hooks run by one `settle`.
pub const MAX_HOOKS_PER_SETTLE: usize = 20_000;

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the multi-call tool executable is: next to the running executable, or one directory up
/// (test binaries live in target/<profile>/deps).
pub fn find_tool_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let mut dir = exe.parent().map(Path::to_path_buf);
    for _ in 0..2 {
        if let Some(d) = &dir {
            let candidate = d.join("juju-sim-tool");
            if candidate.is_file() {
                return Ok(candidate);
            }
            dir = d.parent().map(Path::to_path_buf);
        }
    }
    bail!(
        "juju-sim-tool is not built next to {}: run `cargo build -p juju-sim`",
        exe.display()
    )
}

/// A charm whose hooks run inside the test process: it gets the environment Juju gives a hook
/// and reaches the unit agent through a [`ToolChannel`], with the same rules, access checks and
/// commit-on-success as a charm process calling the tools on PATH. Returns the exit code.
pub trait InProcessCharm {
    fn run_hook(&mut self, env: &BTreeMap<String, String>, tools: &ToolChannel) -> i32;
}

impl<F: FnMut(&BTreeMap<String, String>, &ToolChannel) -> i32> InProcessCharm for F {
    fn run_hook(&mut self, env: &BTreeMap<String, String>, tools: &ToolChannel) -> i32 {
        self(env, tools)
    }
}

/// The hook tools of the running hook, called in-process: what a tool process would print and
/// return for the same argv and stdin.
#[derive(Clone)]
pub struct ToolChannel {
    world: Arc<Mutex<World>>,
}

impl ToolChannel {
    pub fn call(&self, tool: &str, args: &[String], stdin: &[u8]) -> tools::ToolOutput {
        let mut world = self.world.lock().unwrap_or_else(|p| p.into_inner());
        tools::run_tool(&mut world, tool, args, stdin)
    }
}

/// A simulated Juju model.
pub struct Model {
    world: Arc<Mutex<World>>,
    scripted: BTreeMap<String, Box<dyn ScriptedCharm>>,
    in_process: BTreeMap<String, Box<dyn InProcessCharm>>,
    /// Why charm directories cannot be deployed, when the tool executable is not built.
    tools_missing: Option<String>,
    tools_dir: PathBuf,
    server: Server,
    /// Extra environment for every hook process.
    extra_env: Vec<(String, String)>,
    /// Paths each unit sees privately (its "machine"): bind-mounted from a per-unit directory
    /// in a mount namespace of the hook's own.
    private_paths: Vec<PathBuf>,
    /// Units as machines (see [`Model::use_machines`]); dropped before the directory.
    machines: Option<machine::Machines>,
    base: PathBuf,
    _dir: TempDir,
}

impl Model {
    /// A model on Juju 3.6.1.
    pub fn new() -> Result<Model> {
        Model::with_juju_version("3.6.1")
    }

    pub fn with_juju_version(version: &str) -> Result<Model> {
        // In-process charms need no tool executable; charm directories do (checked on deploy).
        let tool = find_tool_binary();
        // Models made in the same nanosecond (a controller's) still get directories of their own.
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!(
            "juju-sim-{}-{made}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let tools_dir = base.join("tools");
        std::fs::create_dir_all(&tools_dir)
            .with_context(|| format!("cannot create {}", tools_dir.display()))?;
        if let Ok(tool) = &tool {
            for name in tools::TOOL_NAMES {
                symlink(tool, tools_dir.join(name))
                    .with_context(|| format!("cannot link the {name} tool"))?;
            }
        }
        let mut state = World::new(version);
        state.resource_dir = Some(base.join("resources"));
        let world = Arc::new(Mutex::new(state));
        let server = Server::start(&base.join("agent.socket"), Arc::clone(&world))?;
        Ok(Model {
            world,
            scripted: BTreeMap::new(),
            in_process: BTreeMap::new(),
            tools_missing: tool.err().map(|e| format!("{e:#}")),
            tools_dir,
            server,
            extra_env: Vec::new(),
            private_paths: Vec::new(),
            machines: None,
            base: base.clone(),
            _dir: TempDir(base),
        })
    }

    /// Locks the model state for reading or direct setup.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives every unit its own view of these paths, as if each ran on its own machine: hooks
    /// run in a mount namespace where each path is a bind mount of a per-unit directory. Needs
    /// root and `unshare` (util-linux).
    pub fn isolate_paths(&mut self, paths: &[&str]) {
        self.private_paths
            .extend(paths.iter().map(|p| PathBuf::from(*p)));
    }

    /// Makes every unit added from now on a machine of its own (see [`machine`]): its own
    /// network namespace and address on a bridge of the model's, and a persistent mount
    /// namespace with its own copies of the paths `layout` names. Daemons its hooks start stay
    /// in it. Needs root, iproute2 and util-linux.
    pub fn use_machines(&mut self, layout: machine::MachineLayout) -> Result<()> {
        if self.machines.is_none() {
            self.machines = Some(machine::Machines::new(&self.base.join("machines"), layout)?);
        }
        Ok(())
    }

    /// The host's address on the machines' bridge: where units reach services of the host.
    pub fn host_address(&self) -> Option<String> {
        self.machines.as_ref().map(|m| m.host_address().to_string())
    }

    /// A unit's address (its machine's, or its loopback alias).
    pub fn unit_address(&self, unit: &str) -> Option<String> {
        self.world().units.get(unit).map(|u| u.address.clone())
    }

    /// Runs `argv` inside `unit`'s machine (its namespaces), as root.
    pub fn exec_on_unit(&self, unit: &str, argv: &[&str]) -> Result<std::process::Output> {
        let (program, args) = argv.split_first().context("exec_on_unit needs a command")?;
        let mut command = self
            .machines
            .as_ref()
            .and_then(|m| m.command(unit, Path::new(program)))
            .with_context(|| format!("{unit} has no machine (use_machines before deploying)"))?;
        command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {program} on {unit}"))
    }

    /// Runs `program` with `args` on `unit`'s machine (its namespaces), as an operator's
    /// `juju exec --unit` would; its output.
    pub fn exec_on(
        &self,
        unit: &str,
        program: &Path,
        args: &[&str],
    ) -> Result<std::process::Output> {
        let mut command = self
            .machines
            .as_ref()
            .and_then(|m| m.command(unit, program))
            .with_context(|| format!("{unit} has no machine"))?;
        command
            .args(args)
            .output()
            .with_context(|| format!("cannot run {} on {unit}", program.display()))
    }

    /// The directory that holds `path` for `unit` (see [`Model::isolate_paths`]).
    pub fn unit_path(&self, unit: &str, path: &str) -> PathBuf {
        self.base
            .join("machines")
            .join(unit.replace('/', "-"))
            .join(path.trim_start_matches('/'))
    }

    /// Adds an environment variable to every hook process.
    pub fn set_hook_env(&mut self, name: &str, value: &str) {
        self.extra_env.push((name.to_owned(), value.to_owned()));
    }

    // -----------------------------------------------------------------------------------------
    // Acting on the model.

    /// `juju deploy <charm_dir> <app> -n <units> --config ...`.
    pub fn deploy(
        &mut self,
        app: &str,
        charm_dir: &Path,
        units: usize,
        config: Map<String, Value>,
    ) -> Result<Vec<String>> {
        if let Some(why) = &self.tools_missing {
            bail!("cannot run charm processes: {why}");
        }
        let charm_dir = charm_dir
            .canonicalize()
            .with_context(|| format!("cannot find the charm directory {}", charm_dir.display()))?;
        let meta = CharmMeta::load(&charm_dir)?;
        self.add_app(app, meta, CharmKind::Dir(charm_dir), config)?;
        (0..units).map(|_| self.add_unit(app)).collect()
    }

    /// Deploys a charm whose hooks run in this process (its metadata.yaml, config.yaml and
    /// actions.yaml from `charm_dir`).
    pub fn deploy_in_process(
        &mut self,
        app: &str,
        charm_dir: &Path,
        units: usize,
        config: Map<String, Value>,
        charm: Box<dyn InProcessCharm>,
    ) -> Result<Vec<String>> {
        let meta = CharmMeta::load(charm_dir)?;
        self.in_process.insert(app.to_owned(), charm);
        self.add_app(
            app,
            meta,
            CharmKind::InProcess(charm_dir.to_path_buf()),
            config,
        )?;
        (0..units).map(|_| self.add_unit(app)).collect()
    }

    /// Deploys a remote charm scripted in Rust.
    pub fn deploy_scripted(
        &mut self,
        app: &str,
        charm: Box<dyn ScriptedCharm>,
        units: usize,
    ) -> Result<Vec<String>> {
        let meta = CharmMeta::from_yaml(charm.metadata(), None)?;
        self.scripted.insert(app.to_owned(), charm);
        self.add_app(app, meta, CharmKind::Scripted, Map::new())?;
        (0..units).map(|_| self.add_unit(app)).collect()
    }

    fn add_app(
        &mut self,
        app: &str,
        meta: CharmMeta,
        charm: CharmKind,
        config: Map<String, Value>,
    ) -> Result<()> {
        let mut world = self.world();
        if world.apps.contains_key(app) {
            bail!("application {app:?} already exists");
        }
        let mut checked = Map::new();
        for (name, value) in config {
            checked.insert(name.clone(), meta.check_option(&name, &value)?);
        }
        let peers: Vec<String> = meta.peer_endpoints().map(|e| e.name.clone()).collect();
        world
            .apps
            .insert(app.to_owned(), App::new(app, meta, charm, checked));
        // Peer relations exist from the start.
        for endpoint in peers {
            let end = RelationEnd {
                app: app.to_owned(),
                endpoint,
            };
            world.add_relation(vec![end], false);
        }
        Ok(())
    }

    /// `juju add-unit <app>`: the new unit's install sequence, and joins with its peers and
    /// with every related application.
    pub fn add_unit(&mut self, app: &str) -> Result<String> {
        let mut world = self.world.lock().unwrap_or_else(|p| p.into_inner());
        if world.is_remote_app(app) {
            bail!("cannot add units to {app:?}: it is an application of another model");
        }
        let Some(application) = world.apps.get_mut(app) else {
            bail!("application {app:?} not found");
        };
        let number = application.next_unit;
        application.next_unit += 1;
        let name = format!("{app}/{number}");
        let first = application.leader.is_none();
        if first {
            application.leader = Some(name.clone());
        }
        let charm_unit = matches!(world.apps[app].charm, CharmKind::Dir(_));
        let address = match self.machines.as_mut() {
            Some(machines) if charm_unit => machines.add(&name)?.to_string(),
            _ => {
                world.next_address += 1;
                format!("127.0.{}.{}", world.address_block, world.next_address - 1)
            }
        };
        world.units.insert(
            name.clone(),
            Unit {
                name: name.clone(),
                app: app.to_owned(),
                address,
                status: StatusRecord {
                    status: "waiting".to_owned(),
                    message: "agent initialising".to_owned(),
                },
                ports: Default::default(),
                queue: Default::default(),
                failed: None,
                alive: true,
                machine_down: false,
                agent_stopped: false,
                dying: false,
                agent_error: None,
            },
        );
        world.queue(&name, HookEvent::simple("install"));
        let relations = world.relations_of(app);
        let peer_relations: Vec<u32> = relations
            .iter()
            .copied()
            .filter(|id| world.relations[id].is_peer())
            .collect();
        for id in &peer_relations {
            queue_relation_hook(&mut world, &name, *id, "created", None, None);
        }
        world.queue(
            &name,
            HookEvent::simple(if first {
                "leader-elected"
            } else {
                "leader-settings-changed"
            }),
        );
        world.queue(&name, HookEvent::simple("config-changed"));
        world.queue(&name, HookEvent::simple("start"));
        // A subordinate related over a container-scoped relation comes with the new unit, on
        // its machine (the simulator pairs them by number).
        let subordinates: Vec<String> = relations
            .iter()
            .filter(|id| world.relations[id].container_scope)
            .filter_map(|id| world.relations[id].remote_app(app).map(str::to_owned))
            .filter(|remote| world.apps.get(remote).is_some_and(|a| a.meta.subordinate))
            .collect();
        for id in relations {
            let peer = world.relations[&id].is_peer();
            if !peer {
                queue_relation_hook(&mut world, &name, id, "created", None, None);
            }
            for remote in world.remote_units(id, &name) {
                queue_join(&mut world, &name, id, &remote);
                queue_join(&mut world, &remote, id, &name);
            }
        }
        for subordinate in subordinates {
            if let Some(sub) = world.apps.get_mut(&subordinate) {
                sub.next_unit = sub.next_unit.max(number);
            }
            drop(world);
            self.add_unit(&subordinate)?;
            world = self.world.lock().unwrap_or_else(|p| p.into_inner());
        }
        Ok(name)
    }

    /// Stops `unit`'s machine as a power failure would: everything on it dies, its network
    /// goes down, its agent runs no hook (they wait), and Pacemaker moves the VIPs it held.
    pub fn stop_machine(&mut self, unit: &str) -> Result<()> {
        {
            let mut world = self.world();
            if world.units.contains_key(unit) && !world.runs_hooks(unit) {
                bail!("{unit:?} is a unit of another model: its machine is there");
            }
            let u = world
                .units
                .get_mut(unit)
                .with_context(|| format!("unit {unit:?} not found"))?;
            u.machine_down = true;
        }
        let machines = self
            .machines
            .as_mut()
            .context("no machines (use_machines before deploying)")?;
        machines.stop(unit);
        self.place_vips()
    }

    /// Stops `unit`'s agent (`systemctl stop jujud-machine-N`): its hooks wait until
    /// [`Model::start_agent`], while its machine and services go on serving.
    pub fn stop_agent(&mut self, unit: &str) -> Result<()> {
        self.set_agent_stopped(unit, true)
    }

    /// Starts `unit`'s agent again: it runs config-changed, as Juju does when an agent
    /// restarts, then every hook that waited.
    pub fn start_agent(&mut self, unit: &str) -> Result<()> {
        self.set_agent_stopped(unit, false)?;
        self.world()
            .units
            .get_mut(unit)
            .with_context(|| format!("unit {unit:?} not found"))?
            .queue
            .push_front(HookEvent::simple("config-changed"));
        Ok(())
    }

    fn set_agent_stopped(&mut self, unit: &str, stopped: bool) -> Result<()> {
        let mut world = self.world();
        if world.units.contains_key(unit) && !world.runs_hooks(unit) {
            bail!("{unit:?} is a unit of another model: its agent runs there");
        }
        let u = world
            .units
            .get_mut(unit)
            .with_context(|| format!("unit {unit:?} not found"))?;
        u.agent_stopped = stopped;
        Ok(())
    }

    /// The unit whose machine holds `vip`, once hacluster placed it.
    pub fn vip_holder(&self, vip: std::net::Ipv4Addr) -> Option<String> {
        self.machines
            .as_ref()
            .and_then(|m| m.vip_holder(vip).map(str::to_owned))
    }

    /// Plays Pacemaker for every VIP hacluster was asked for: each on one live unit of its
    /// application (the one holding it while it lives, else the first by name).
    fn place_vips(&mut self) -> Result<()> {
        let Some(machines) = self.machines.as_ref() else {
            return Ok(());
        };
        let moves: Vec<(std::net::Ipv4Addr, String)> = {
            let world = self.world();
            let mut moves = Vec::new();
            for (app, vips) in &world.vips {
                let live: Vec<&str> = world
                    .units
                    .values()
                    .filter(|u| u.app == *app && u.alive && !u.dying && !u.machine_down)
                    .filter(|u| machines.address(&u.name).is_some())
                    .map(|u| u.name.as_str())
                    .collect();
                for vip in vips {
                    let holder = machines.vip_holder(*vip);
                    if holder.is_some_and(|h| live.contains(&h)) {
                        continue;
                    }
                    if let Some(first) = live.first() {
                        moves.push((*vip, (*first).to_owned()));
                    }
                }
            }
            moves
        };
        if let Some(machines) = self.machines.as_mut() {
            for (vip, unit) in moves {
                machines.hold_vip(vip, &unit)?;
            }
        }
        Ok(())
    }

    /// `juju remove-unit <unit>`: departed on both sides, then broken (non-peer), stop, remove.
    pub fn remove_unit(&mut self, unit: &str) -> Result<()> {
        let mut world = self.world();
        if world.units.contains_key(unit) && !world.runs_hooks(unit) {
            bail!("cannot remove {unit:?}: it is a unit of another model");
        }
        let Some(u) = world.units.get_mut(unit) else {
            bail!("unit {unit:?} not found");
        };
        if u.dying {
            bail!("unit {unit:?} is already being removed");
        }
        u.dying = true;
        let app = u.app.clone();
        for id in world.relations_of(&app) {
            let rel = &world.relations[&id];
            let peer = rel.is_peer();
            let watchers: Vec<String> = rel
                .joined
                .iter()
                .filter(|(w, seen)| *w != unit && seen.contains(unit))
                .map(|(w, _)| w.clone())
                .collect();
            let mine: Vec<String> = rel
                .joined
                .get(unit)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for watcher in watchers {
                queue_relation_hook(&mut world, &watcher, id, "departed", Some(unit), Some(unit));
            }
            for remote in mine {
                queue_relation_hook(&mut world, unit, id, "departed", Some(&remote), Some(unit));
            }
            if !peer && world.relations[&id].in_scope.contains(unit) {
                queue_relation_hook(&mut world, unit, id, "broken", None, None);
            }
        }
        world.queue(unit, HookEvent::simple("stop"));
        world.queue(unit, HookEvent::simple("remove"));
        // Leadership moves on when the leader goes.
        if world.is_leader(unit) {
            let next = world
                .live_units_of(&app)
                .into_iter()
                .filter(|u| u != unit && !world.units[u].dying)
                .min_by_key(|u| unit_number(u));
            elect(&mut world, &app, next);
        }
        // Its subordinates go with it.
        let subordinates: Vec<String> = world
            .relations_of(&app)
            .into_iter()
            .filter(|id| world.relations[id].container_scope)
            .flat_map(|id| world.remote_units(id, unit))
            .filter(|sub| {
                world
                    .apps
                    .get(World::app_of(sub))
                    .is_some_and(|a| a.meta.subordinate)
                    && !world.units[sub].dying
            })
            .collect();
        drop(world);
        for subordinate in subordinates {
            self.remove_unit(&subordinate)?;
        }
        Ok(())
    }

    /// `juju integrate a b`: each side may be `app` or `app:endpoint`.
    pub fn relate(&mut self, a: &str, b: &str) -> Result<u32> {
        let mut world = self.world();
        let (a_app, a_ep, b_app, b_ep) = match_endpoints(&world, a, b)?;
        for app in [&a_app, &b_app] {
            if let Some(CharmKind::Remote(remote)) = world.apps.get(app.as_str()).map(|a| &a.charm)
                && remote.offer.is_none()
            {
                bail!("{app:?} consumes an offer of this model: relate from its own model");
            }
        }
        let container_scope = [(&a_app, &a_ep), (&b_app, &b_ep)].iter().any(|(app, ep)| {
            world.apps[app.as_str()]
                .meta
                .endpoint(ep)
                .is_some_and(|e| e.container_scope)
        });
        let ends = vec![
            RelationEnd {
                app: a_app.clone(),
                endpoint: a_ep,
            },
            RelationEnd {
                app: b_app.clone(),
                endpoint: b_ep,
            },
        ];
        let id = world.add_relation(ends, container_scope);
        let units: Vec<String> = world
            .live_units_of(&a_app)
            .into_iter()
            .chain(world.live_units_of(&b_app))
            .collect();
        for unit in &units {
            queue_relation_hook(&mut world, unit, id, "created", None, None);
        }
        for unit in &units {
            for remote in world.remote_units(id, unit) {
                queue_join(&mut world, unit, id, &remote);
            }
        }
        Ok(id)
    }

    /// `juju remove-relation`: departed for each remote unit on every unit, then broken.
    pub fn unrelate(&mut self, id: u32) -> Result<()> {
        unrelate(&mut self.world(), id)
    }

    /// `juju config <app> key=value ...`: checked against config.yaml; config-changed on every
    /// unit when something changed.
    pub fn set_config(&mut self, app: &str, values: Map<String, Value>) -> Result<()> {
        let mut world = self.world();
        if world.is_remote_app(app) {
            bail!("cannot configure {app:?}: it is an application of another model");
        }
        let Some(application) = world.apps.get_mut(app) else {
            bail!("application {app:?} not found");
        };
        let mut changed = false;
        for (name, value) in values {
            let value = if value.is_null() {
                None
            } else {
                Some(application.meta.check_option(&name, &value)?)
            };
            let before = match value {
                Some(v) => application
                    .config
                    .insert(name, v.clone())
                    .filter(|b| *b == v),
                None => {
                    if application.config.remove(&name).is_some() {
                        None
                    } else {
                        Some(Value::Null)
                    }
                }
            };
            changed |= before.is_none();
        }
        if changed {
            for unit in world.live_units_of(app) {
                world.queue(&unit, HookEvent::simple("config-changed"));
            }
        }
        Ok(())
    }

    /// `juju attach-resource <app> <name>=<file>`: a declared resource's new content; every unit
    /// of the application runs upgrade-charm (as Juju's unit agents do for a new revision).
    pub fn attach_resource(&mut self, app: &str, name: &str, content: &[u8]) -> Result<()> {
        let mut world = self.world();
        let Some(application) = world.apps.get_mut(app) else {
            bail!("application {app:?} not found");
        };
        if !application.meta.resources.contains_key(name) {
            bail!("invalid resource name {name:?}: {app}'s charm declares no such resource");
        }
        application
            .resources
            .insert(name.to_owned(), content.to_vec());
        for unit in world.live_units_of(app) {
            world.queue(&unit, HookEvent::simple("upgrade-charm"));
        }
        Ok(())
    }

    /// Makes `unit` the leader of its application.
    pub fn set_leader(&mut self, unit: &str) -> Result<()> {
        let mut world = self.world();
        if !world.runs_hooks(unit) {
            bail!("unit {unit:?} not found in this model");
        }
        let app = World::app_of(unit).to_owned();
        elect(&mut world, &app, Some(unit.to_owned()));
        Ok(())
    }

    /// Sets a leader setting of `app` as a charm before this one left it (`leader-set`, which
    /// the Python charms used), without running a hook.
    pub fn set_leader_setting(&mut self, app: &str, key: &str, value: &str) -> Result<()> {
        let mut world = self.world();
        let Some(application) = world.apps.get_mut(app) else {
            bail!("application {app:?} not found");
        };
        application
            .leader_settings
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    /// One update-status tick on every unit.
    pub fn update_status(&mut self) {
        let mut world = self.world();
        let units: Vec<String> = world
            .units
            .values()
            .filter(|u| u.alive)
            .map(|u| u.name.clone())
            .collect();
        for unit in units {
            world.queue(&unit, HookEvent::simple("update-status"));
        }
    }

    /// `juju refresh`: upgrade-charm, config-changed, leader-settings-changed (non-leaders),
    /// start.
    pub fn upgrade_charm(&mut self, app: &str) -> Result<()> {
        let mut world = self.world();
        if !world.apps.contains_key(app) || world.is_remote_app(app) {
            bail!("application {app:?} not found in this model");
        }
        for unit in world.live_units_of(app) {
            world.queue(&unit, HookEvent::simple("upgrade-charm"));
            world.queue(&unit, HookEvent::simple("config-changed"));
            if !world.is_leader(&unit) {
                world.queue(&unit, HookEvent::simple("leader-settings-changed"));
            }
            world.queue(&unit, HookEvent::simple("start"));
        }
        Ok(())
    }

    /// `juju run <unit> <action> k=v ...`: params checked and defaulted from actions.yaml; the
    /// model settles first (the task queues behind pending hooks) and after.
    pub fn run_action(
        &mut self,
        unit: &str,
        name: &str,
        params: Map<String, Value>,
    ) -> Result<ActionTask> {
        self.settle()?;
        let id = self.queue_action(unit, name, params)?;
        self.settle()?;
        let world = self.world();
        Ok(world.actions[&id].clone())
    }

    /// Runs an action at once, before any other pending hook and without settling after it: the
    /// other units have not reacted yet when it returns (Juju runs them concurrently).
    pub fn run_action_now(
        &mut self,
        unit: &str,
        name: &str,
        params: Map<String, Value>,
    ) -> Result<ActionTask> {
        let id = self.queue_action(unit, name, params)?;
        let event = self
            .world()
            .units
            .get_mut(unit)
            .and_then(|u| u.queue.pop_front())
            .context("the action was not queued")?;
        self.run_hook(unit, &event)?;
        let world = self.world();
        Ok(world.actions[&id].clone())
    }

    /// The next call of `tool` by `unit` fails with `code` and `ERROR <message>` on stderr.
    pub fn fail_tool(&mut self, unit: &str, tool: &str, code: i32, message: &str) {
        self.world().tool_faults.push(state::ToolFault {
            unit: unit.to_owned(),
            tool: tool.to_owned(),
            code,
            message: message.to_owned(),
        });
    }

    /// The next call of `tool` by `unit` kills the hook's process with SIGKILL before the call
    /// takes effect (a machine losing power, the OOM killer): Juju then discards what the hook
    /// set and retries it.
    pub fn kill_at_tool(&mut self, unit: &str, tool: &str) {
        self.fail_tool(unit, tool, tools::KILL_THE_HOOK, "killed by the test");
    }

    /// Queues a hook on a unit (e.g. `config-changed` after an agent restart).
    pub fn queue_hook(&mut self, unit: &str, hook: &str) {
        self.world().queue(unit, HookEvent::simple(hook));
    }

    /// Runs only this unit's pending hooks.
    pub fn settle_unit(&mut self, unit: &str) -> Result<()> {
        for _ in 0..MAX_HOOKS_PER_SETTLE {
            let event = self
                .world()
                .units
                .get_mut(unit)
                .and_then(|u| u.queue.pop_front());
            let Some(event) = event else {
                return Ok(());
            };
            if !self.run_hook(unit, &event)? {
                bail!("{unit}: hook {:?} failed", event.name);
            }
        }
        Err(anyhow!("{unit} did not settle"))
    }

    /// Runs an action actions.yaml does not declare, as a Juju whose charm metadata and charm
    /// code disagree would (a packaging mistake); returns its task.
    pub fn run_undeclared_action_now(&mut self, unit: &str, name: &str) -> Result<ActionTask> {
        let id = self.queue_action_unchecked(unit, name, Map::new())?;
        self.settle_unit(unit)?;
        let world = self.world();
        Ok(world.actions[&id].clone())
    }

    fn queue_action(&mut self, unit: &str, name: &str, params: Map<String, Value>) -> Result<u64> {
        let params = {
            let world = self.world();
            let Some(u) = world.units.get(unit) else {
                bail!("unit {unit:?} not found");
            };
            world.apps[&u.app].meta.action_params(name, &params)?
        };
        self.queue_action_unchecked(unit, name, params)
    }

    /// Queues an action with these parameters, first on the unit's queue, as Juju runs actions.
    fn queue_action_unchecked(
        &mut self,
        unit: &str,
        name: &str,
        params: Map<String, Value>,
    ) -> Result<u64> {
        let id = {
            let mut world = self.world();
            if !world.runs_hooks(unit) {
                bail!("unit {unit:?} not found in this model");
            }
            let id = world.next_action;
            world.next_action += 1;
            world.actions.insert(
                id,
                ActionTask {
                    id,
                    unit: unit.to_owned(),
                    name: name.to_owned(),
                    params,
                    status: "running".to_owned(),
                    message: None,
                    results: Map::new(),
                    logs: Vec::new(),
                    stdout: String::new(),
                    stderr: String::new(),
                },
            );
            let mut event = HookEvent::simple(name);
            event.action = Some(id);
            world
                .units
                .get_mut(unit)
                .expect("unit")
                .queue
                .push_front(event);
            id
        };
        Ok(id)
    }

    // -----------------------------------------------------------------------------------------
    // Running hooks.

    /// Runs hooks until none is pending. Units take turns, one hook each, in name order. A
    /// failed hook is retried before anything else on its unit, up to [`MAX_RETRIES`] times.
    pub fn settle(&mut self) -> Result<()> {
        for _ in 0..MAX_HOOKS_PER_SETTLE {
            if !self.step()? {
                return self.settled();
            }
        }
        Err(anyhow!(
            "the model did not settle within {MAX_HOOKS_PER_SETTLE} hooks"
        ))
    }

    /// Runs the next pending hook, as [`Model::settle`] takes them; false when none is
    /// pending. A hook that failed more than [`MAX_RETRIES`] times is an error.
    pub(crate) fn step(&mut self) -> Result<bool> {
        let next = {
            let mut world = self.world();
            next_hook(&mut world)
        };
        let Some((unit, event, retry)) = next else {
            return Ok(false);
        };
        let ok = self.run_hook(&unit, &event)?;
        let mut world = self.world();
        if event.action.is_some() {
            return Ok(true);
        }
        let u = world
            .units
            .get_mut(&unit)
            .with_context(|| format!("unit {unit:?} vanished while its hook ran"))?;
        if ok {
            u.failed = None;
            u.agent_error = None;
            return Ok(true);
        }
        let tries = retry + 1;
        if tries > MAX_RETRIES {
            let last = world
                .hook_log
                .iter()
                .rev()
                .find(|r| r.unit == unit)
                .map(|r| format!("{}{}", r.stdout, r.stderr))
                .unwrap_or_default();
            // Charms (ops among them) report tracebacks through juju-log.
            let logged: Vec<String> = world
                .logs
                .iter()
                .filter(|l| l.unit == unit)
                .rev()
                .take(5)
                .map(|l| format!("{} {}", l.level, l.message))
                .collect();
            let last = format!(
                "{last}{}",
                logged.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            bail!(
                "{unit}: hook {:?} failed {tries} times; last output:\n{last}",
                event.name
            );
        }
        u.agent_error = Some(format!("hook failed: {:?}", event.name));
        u.failed = Some((event, tries));
        Ok(true)
    }

    /// What Juju has done once nothing is pending: relations whose units all left are gone,
    /// and Pacemaker has placed the VIPs.
    pub(crate) fn settled(&mut self) -> Result<()> {
        self.world()
            .relations
            .retain(|_, r| !(r.dying && r.in_scope.is_empty()));
        self.place_vips()
    }

    /// Runs one hook (or action) on a unit and commits or discards its changes.
    fn run_hook(&mut self, unit: &str, event: &HookEvent) -> Result<bool> {
        let (charm, context_id) = {
            let mut world = self.world();
            let context_id = format!("{unit}-{}-{}", event.name, world.next_context);
            world.next_context += 1;
            enter_hook(&mut world, unit, event);
            world.current = Some(HookContext {
                id: context_id.clone(),
                unit: unit.to_owned(),
                event: event.clone(),
                pending: Vec::new(),
                calls: Vec::new(),
            });
            let app = World::app_of(unit).to_owned();
            (world.apps[&app].charm.clone(), context_id)
        };
        let started = Instant::now();
        let (code, stdout, stderr) = match charm {
            CharmKind::Dir(dir) => self.exec_dispatch(&dir, unit, event, &context_id)?,
            CharmKind::InProcess(dir) => {
                let env: BTreeMap<String, String> = {
                    let world = self.world();
                    hook_environment(
                        &world,
                        &dir,
                        unit,
                        event,
                        &context_id,
                        &self.tools_dir,
                        &self.server.socket,
                    )
                    .into_iter()
                    .collect()
                };
                let channel = ToolChannel {
                    world: Arc::clone(&self.world),
                };
                let app = World::app_of(unit).to_owned();
                let charm = self
                    .in_process
                    .get_mut(&app)
                    .context("in-process charm missing")?;
                (charm.run_hook(&env, &channel), String::new(), String::new())
            }
            CharmKind::Remote(remote) => {
                bail!(
                    "{unit} runs no hooks here: it is a unit of {:?} in model {:?}",
                    remote.app,
                    remote.model
                );
            }
            CharmKind::Scripted => {
                let app = World::app_of(unit).to_owned();
                let mut world = self.world.lock().unwrap_or_else(|p| p.into_inner());
                let handler = self
                    .scripted
                    .get_mut(&app)
                    .context("scripted charm missing")?;
                if event.name == "start" {
                    // Scripted charms stand in for real ones that would report readiness.
                    let ready = StatusRecord {
                        status: "active".to_owned(),
                        message: "scripted".to_owned(),
                    };
                    if world.is_leader(unit)
                        && let Some(a) = world.apps.get_mut(&app)
                    {
                        a.status = ready.clone();
                    }
                    if let Some(u) = world.units.get_mut(unit) {
                        u.status = ready;
                    }
                }
                let mut hook = ScriptedHook::new(&mut world, unit, event);
                let code = match handler.handle(&mut hook) {
                    Ok(()) => 0,
                    Err(_) => 1,
                };
                (code, String::new(), String::new())
            }
        };
        let duration = started.elapsed();
        let mut world = self.world.lock().unwrap_or_else(|p| p.into_inner());
        let context = world.current.take().context("the hook context vanished")?;
        let ok = code == 0;
        if let Some(id) = event.action {
            let task = world.actions.get_mut(&id).expect("task");
            task.stdout = stdout.clone();
            task.stderr = stderr.clone();
            if task.status == "running" {
                if ok {
                    task.status = "completed".to_owned();
                } else {
                    task.status = "failed".to_owned();
                    task.message = Some(format!("exit status {code}"));
                }
            }
        }
        if ok {
            commit(&mut world, &context);
        } else {
            discard(&mut world, &context);
        }
        leave_hook(&mut world, unit, event, ok);
        if ok
            && event.name == "remove"
            && let Some(machines) = self.machines.as_mut()
        {
            machines.remove(unit);
        }
        world.hook_log.push(HookRun {
            unit: unit.to_owned(),
            hook: event.name.clone(),
            exit_code: code,
            duration,
            ended: started + duration,
            tool_calls: context.calls,
            stdout,
            stderr,
        });
        Ok(ok)
    }

    fn exec_dispatch(
        &self,
        dir: &Path,
        unit: &str,
        event: &HookEvent,
        context_id: &str,
    ) -> Result<(i32, String, String)> {
        let env = {
            let world = self.world();
            hook_environment(
                &world,
                dir,
                unit,
                event,
                context_id,
                &self.tools_dir,
                &self.server.socket,
            )
        };
        // Juju before 2.8 runs hooks/<hook> (actions/<action>) instead of dispatch.
        let program = match self.world().runs_dispatch() {
            true => dir.join("dispatch"),
            false if event.action.is_some() => dir.join("actions").join(&event.name),
            false => dir.join("hooks").join(&event.name),
        };
        let machine = self
            .machines
            .as_ref()
            .and_then(|m| m.command_in(unit, &program, Some(dir)));
        let mut command = if let Some(command) = machine {
            command
        } else if self.private_paths.is_empty() {
            Command::new(&program)
        } else {
            // A private mount namespace per hook: each isolated path is the unit's own.
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                .arg(r#"d=$1; shift; while [ $# -gt 0 ]; do mkdir -p "$1" "$2" && mount --bind "$1" "$2" || exit 97; shift 2; done; exec "$d""#)
                .arg("sh")
                .arg(&program);
            for path in &self.private_paths {
                let own = self.unit_path(unit, &path.to_string_lossy());
                std::fs::create_dir_all(&own)
                    .with_context(|| format!("cannot create {}", own.display()))?;
                c.arg(own).arg(path);
            }
            c
        };
        let output = command
            .current_dir(dir)
            .env_clear()
            .envs(env)
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", program.display()))?;
        let code = output.status.code().unwrap_or(-1);
        Ok((
            code,
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }

    // -----------------------------------------------------------------------------------------
    // Reading the state out.

    pub fn unit_status(&self, unit: &str) -> Option<(String, String)> {
        let world = self.world();
        let u = world.units.get(unit)?;
        Some((u.status.status.clone(), u.status.message.clone()))
    }

    pub fn app_status(&self, app: &str) -> Option<(String, String)> {
        let world = self.world();
        let a = world.apps.get(app)?;
        Some((a.status.status.clone(), a.status.message.clone()))
    }

    /// A committed data bag: `bag` is a unit or an application name.
    pub fn relation_data(&self, relation: u32, bag: &str) -> Bag {
        self.world().bag(relation, bag)
    }

    /// The id of the (first) relation between an application's endpoint and anything.
    pub fn relation_id(&self, app: &str, endpoint: &str) -> Option<u32> {
        let world = self.world();
        world
            .relations
            .values()
            .find(|r| r.end_of(app).is_some_and(|e| e.endpoint == endpoint) && !r.dying)
            .map(|r| r.id)
    }

    pub fn hook_log(&self) -> Vec<HookRun> {
        self.world().hook_log.clone()
    }

    pub fn logs(&self) -> Vec<state::LogLine> {
        self.world().logs.clone()
    }

    pub fn leader(&self, app: &str) -> Option<String> {
        self.world().apps.get(app).and_then(|a| a.leader.clone())
    }

    pub fn units(&self, app: &str) -> Vec<String> {
        self.world().live_units_of(app)
    }

    /// What `juju show-unit <unit> --format yaml` prints (Juju 3.x), byte for byte; empty for a
    /// unit the model does not have.
    pub fn show_unit(&self, unit: &str) -> String {
        cli::show_unit(&self.world(), unit)
    }

    /// What `juju show-secret <id> --reveal --format yaml` prints (Juju 3.x) for every secret in
    /// the model, in one mapping keyed by secret ID; created and updated times are
    /// [`cli::PLACEHOLDER_TIME`].
    pub fn show_secret_reveal(&self) -> String {
        cli::show_secrets_revealed(&self.world())
    }

    /// Writes [`Model::show_unit`] for every live unit to `<dir>/show-unit/<app>-<n>.yaml` and
    /// [`Model::show_secret_reveal`] to `<dir>/secrets.yaml`, for tools that read Juju's output;
    /// returns how many units it wrote.
    pub fn write_cli_output(&self, dir: &Path) -> Result<usize> {
        let units_dir = dir.join("show-unit");
        std::fs::create_dir_all(&units_dir)
            .with_context(|| format!("cannot create {}", units_dir.display()))?;
        // Units an earlier run had may be gone from this one; only .yaml files are ours.
        for entry in std::fs::read_dir(&units_dir)
            .with_context(|| format!("cannot read {}", units_dir.display()))?
        {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        let units: Vec<String> = {
            let world = self.world();
            world
                .units
                .values()
                .filter(|u| u.alive)
                .map(|u| u.name.clone())
                .collect()
        };
        for unit in &units {
            let path = units_dir.join(format!("{}.yaml", unit.replace('/', "-")));
            std::fs::write(&path, self.show_unit(unit))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let secrets = dir.join("secrets.yaml");
        std::fs::write(&secrets, self.show_secret_reveal())
            .with_context(|| format!("cannot write {}", secrets.display()))?;
        Ok(units.len())
    }
}

fn unit_number(unit: &str) -> u32 {
    unit.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Gives an application a new leader: leader-elected on it, leader-settings-changed on the rest.
fn elect(world: &mut World, app: &str, leader: Option<String>) {
    let Some(application) = world.apps.get_mut(app) else {
        return;
    };
    application.leader = leader.clone();
    let Some(leader) = leader else {
        return;
    };
    for unit in world.live_units_of(app) {
        if world.units[&unit].dying {
            continue;
        }
        if unit == leader {
            world.queue(&unit, HookEvent::simple("leader-elected"));
        } else {
            world.queue(&unit, HookEvent::simple("leader-settings-changed"));
        }
    }
}

/// Works out the two endpoints of `juju integrate a b`.
fn match_endpoints(world: &World, a: &str, b: &str) -> Result<(String, String, String, String)> {
    let split = |s: &str| -> (String, Option<String>) {
        match s.split_once(':') {
            Some((app, ep)) => (app.to_owned(), Some(ep.to_owned())),
            None => (s.to_owned(), None),
        }
    };
    let (a_app, a_ep) = split(a);
    let (b_app, b_ep) = split(b);
    let meta = |app: &str| -> Result<&CharmMeta> {
        world
            .apps
            .get(app)
            .map(|a| &a.meta)
            .ok_or_else(|| anyhow!("application {app:?} not found"))
    };
    let (a_meta, b_meta) = (meta(&a_app)?, meta(&b_app)?);
    let mut candidates = Vec::new();
    for ae in &a_meta.endpoints {
        for be in &b_meta.endpoints {
            let roles_fit = matches!(
                (ae.role, be.role),
                (Role::Provides, Role::Requires) | (Role::Requires, Role::Provides)
            );
            if roles_fit
                && ae.interface == be.interface
                && a_ep.as_ref().is_none_or(|e| *e == ae.name)
                && b_ep.as_ref().is_none_or(|e| *e == be.name)
            {
                candidates.push((ae.name.clone(), be.name.clone()));
            }
        }
    }
    match candidates.len() {
        1 => {
            let (ae, be) = candidates.remove(0);
            Ok((a_app, ae, b_app, be))
        }
        0 => bail!("no relations found between {a:?} and {b:?}"),
        _ => bail!("ambiguous relation: {a:?} {b:?} could refer to {candidates:?}"),
    }
}

fn queue_relation_hook(
    world: &mut World,
    unit: &str,
    id: u32,
    kind: &str,
    remote_unit: Option<&str>,
    departing: Option<&str>,
) {
    let app = World::app_of(unit).to_owned();
    let Some(rel) = world.relations.get(&id) else {
        return;
    };
    let Some(end) = rel.end_of(&app) else {
        return;
    };
    let remote_app = rel.remote_app(&app).map(str::to_owned);
    let event = HookEvent {
        name: format!("{}-relation-{kind}", end.endpoint),
        relation: Some(id),
        remote_unit: remote_unit.map(str::to_owned),
        remote_app,
        departing_unit: departing.map(str::to_owned),
        secret: None,
        action: None,
    };
    // Teardown hooks reach dying units too; remote units run none here.
    if !world.runs_hooks(unit) {
        return;
    }
    if let Some(u) = world.units.get_mut(unit)
        && u.alive
    {
        u.queue.push_back(event);
    }
}

/// `-joined` immediately followed by `-changed` for one remote unit.
fn queue_join(world: &mut World, unit: &str, id: u32, remote: &str) {
    queue_relation_hook(world, unit, id, "joined", Some(remote), None);
    queue_relation_hook(world, unit, id, "changed", Some(remote), None);
}

/// The next hook to run: a unit's failed hook first, then its queue; units take turns.
fn next_hook(world: &mut World) -> Option<(String, HookEvent, u32)> {
    let names: Vec<String> = world.units.keys().cloned().collect();
    // Start after the unit that ran last, so units take turns.
    let last = world.hook_log.last().map(|r| r.unit.clone());
    let start = last
        .and_then(|l| names.iter().position(|n| *n == l).map(|p| p + 1))
        .unwrap_or(0);
    for i in 0..names.len() {
        let name = &names[(start + i) % names.len()];
        if !world.runs_hooks(name) {
            continue;
        }
        let unit = world.units.get_mut(name)?;
        if !unit.alive || unit.machine_down || unit.agent_stopped {
            continue;
        }
        if let Some((event, tries)) = unit.failed.clone() {
            return Some((name.clone(), event, tries));
        }
        if let Some(event) = unit.queue.pop_front() {
            return Some((name.clone(), event, 0));
        }
    }
    None
}

/// What Juju updates just before a hook runs: scope and membership.
fn enter_hook(world: &mut World, unit: &str, event: &HookEvent) {
    let Some(id) = event.relation else {
        return;
    };
    let address = world
        .units
        .get(unit)
        .map(|u| u.address.clone())
        .unwrap_or_default();
    let Some(rel) = world.relations.get_mut(&id) else {
        return;
    };
    if event.name.ends_with("-relation-created") && rel.in_scope.insert(unit.to_owned()) {
        // Juju fills in the unit's addresses when it enters scope.
        let bag = rel.unit_data.entry(unit.to_owned()).or_default();
        bag.insert("private-address".to_owned(), address.clone());
        bag.insert("ingress-address".to_owned(), address.clone());
        bag.insert("egress-subnets".to_owned(), format!("{address}/32"));
    }
    if event.name.ends_with("-relation-joined")
        && let Some(remote) = &event.remote_unit
    {
        rel.joined
            .entry(unit.to_owned())
            .or_default()
            .insert(remote.clone());
    }
    if event.name.ends_with("-relation-departed")
        && let Some(remote) = &event.remote_unit
    {
        // In -departed the departing unit is already gone from relation-list.
        if let Some(seen) = rel.joined.get_mut(unit) {
            seen.remove(remote);
        }
    }
}

/// What Juju does once a hook has finished.
fn leave_hook(world: &mut World, unit: &str, event: &HookEvent, ok: bool) {
    if !ok {
        return;
    }
    if event.name.ends_with("-relation-broken")
        && let Some(id) = event.relation
        && let Some(rel) = world.relations.get_mut(&id)
    {
        rel.in_scope.remove(unit);
        rel.joined.remove(unit);
    }
    if event.name == "remove" {
        if let Some(u) = world.units.get_mut(unit) {
            u.alive = false;
        }
        for rel in world.relations.values_mut() {
            rel.in_scope.remove(unit);
            rel.joined.remove(unit);
            for seen in rel.joined.values_mut() {
                seen.remove(unit);
            }
        }
    }
}

/// Applies a successful hook's pending changes and sends the events they cause.
fn commit(world: &mut World, context: &HookContext) {
    let unit = context.unit.clone();
    let mut changed_bags: Vec<(u32, String)> = Vec::new();
    let mut changed_secrets: Vec<String> = Vec::new();
    for pending in &context.pending {
        match pending {
            Pending::RelationSet {
                relation,
                bag,
                key,
                value,
            } => {
                let Some(rel) = world.relations.get_mut(relation) else {
                    continue;
                };
                let data = if bag.contains('/') {
                    rel.unit_data.entry(bag.clone()).or_default()
                } else {
                    rel.app_data.entry(bag.clone()).or_default()
                };
                let before = match value {
                    Some(v) => data.insert(key.clone(), v.clone()),
                    None => data.remove(key),
                };
                if before != *value && !changed_bags.contains(&(*relation, bag.clone())) {
                    changed_bags.push((*relation, bag.clone()));
                }
            }
            Pending::OpenPort(port) => {
                if let Some(u) = world.units.get_mut(&unit) {
                    u.ports.insert(port.clone());
                }
            }
            Pending::ClosePort(port) => {
                if let Some(u) = world.units.get_mut(&unit) {
                    u.ports.remove(port);
                }
            }
            Pending::SecretAdd(_) => {}
            Pending::SecretSet { id, content } => {
                if let Some(secret) = world.secrets.get_mut(id)
                    && secret.revisions.last() != Some(content)
                {
                    secret.revisions.push(content.clone());
                    changed_secrets.push(id.clone());
                }
            }
            Pending::SecretMeta {
                id,
                label,
                description,
            } => {
                if let Some(secret) = world.secrets.get_mut(id) {
                    if label.is_some() {
                        secret.label = label.clone();
                    }
                    if description.is_some() {
                        secret.description = description.clone();
                    }
                }
            }
            Pending::SecretGrant {
                id,
                target,
                relation,
            } => {
                if let Some(secret) = world.secrets.get_mut(id) {
                    secret.grants.insert(target.clone(), *relation);
                }
            }
            Pending::SecretRevoke { id, target } => {
                if let Some(secret) = world.secrets.get_mut(id) {
                    secret.grants.remove(target);
                }
            }
            Pending::SecretRemove(id) => {
                world.secrets.remove(id);
            }
        }
    }
    // relation-changed for every unit that sees a changed bag, never the writer.
    for (id, bag) in changed_bags {
        notify_bag_changed(world, id, &bag, Some(&unit));
    }
    // secret-changed for consumers tracking an older revision.
    for id in changed_secrets {
        let Some(secret) = world.secrets.get(&id) else {
            continue;
        };
        let latest = secret.latest();
        let label = secret.label.clone();
        let uri = secret.uri();
        let consumers: Vec<String> = secret
            .tracked
            .iter()
            .filter(|(consumer, revision)| **consumer != unit && **revision < latest)
            .map(|(c, _)| c.clone())
            .collect();
        for consumer in consumers {
            let mut event = HookEvent::simple("secret-changed");
            event.secret = Some((uri.clone(), label.clone(), latest));
            world.queue(&consumer, event);
        }
    }
}

/// Queues relation-changed on every unit of this model that sees `bag` of relation `id`:
/// for a unit bag, the units that have seen that unit join; for an application bag, the units
/// in scope on the other side (in a peer relation, every unit but the writer).
fn notify_bag_changed(world: &mut World, id: u32, bag: &str, writer: Option<&str>) {
    let Some(rel) = world.relations.get(&id) else {
        return;
    };
    let mut targets: Vec<(String, Option<String>)> = Vec::new();
    if bag.contains('/') {
        for (watcher, seen) in &rel.joined {
            if watcher != bag && seen.contains(bag) {
                targets.push((watcher.clone(), Some(bag.to_owned())));
            }
        }
    } else {
        for watcher in &rel.in_scope {
            let watcher_app = World::app_of(watcher);
            let sees = if rel.is_peer() {
                Some(watcher.as_str()) != writer
            } else {
                watcher_app != bag
            };
            if sees {
                targets.push((watcher.clone(), None));
            }
        }
    }
    for (watcher, remote_unit) in targets {
        queue_relation_hook(world, &watcher, id, "changed", remote_unit.as_deref(), None);
    }
}

/// `juju remove-relation` in one model: departed for each remote unit on every unit, then
/// broken; the relation is dying until its units have left.
fn unrelate(world: &mut World, id: u32) -> Result<()> {
    let Some(rel) = world.relations.get(&id) else {
        bail!("relation {id} not found");
    };
    if rel.is_peer() {
        bail!("peer relations cannot be removed");
    }
    let joined = rel.joined.clone();
    let in_scope: Vec<String> = rel.in_scope.iter().cloned().collect();
    for (unit, remotes) in joined {
        for remote in remotes {
            queue_relation_hook(world, &unit, id, "departed", Some(&remote), Some(&remote));
        }
    }
    for unit in in_scope {
        queue_relation_hook(world, &unit, id, "broken", None, None);
    }
    if let Some(rel) = world.relations.get_mut(&id) {
        rel.dying = true;
    }
    Ok(())
}

/// Throws away a failed hook's transactional changes (secrets it created included).
fn discard(world: &mut World, context: &HookContext) {
    for pending in &context.pending {
        if let Pending::SecretAdd(id) = pending {
            world.secrets.remove(id);
        }
    }
}

/// The environment Juju gives a hook (reference §1.3).
fn hook_environment(
    world: &World,
    dir: &Path,
    unit: &str,
    event: &HookEvent,
    context_id: &str,
    tools_dir: &Path,
    socket: &Path,
) -> Vec<(String, String)> {
    let charm_dir = dir.display().to_string();
    let system_path =
        std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".to_owned());
    let action = event.action.is_some();
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            format!("{}:{system_path}", tools_dir.display()),
        ),
        (
            "JUJU_DISPATCH_PATH".into(),
            format!(
                "{}/{}",
                if action { "actions" } else { "hooks" },
                event.name
            ),
        ),
        (
            "JUJU_HOOK_NAME".into(),
            if action {
                String::new()
            } else {
                event.name.clone()
            },
        ),
        ("JUJU_UNIT_NAME".into(), unit.to_owned()),
        ("JUJU_MODEL_NAME".into(), world.model_name.clone()),
        ("JUJU_MODEL_UUID".into(), world.model_uuid.clone()),
        ("JUJU_VERSION".into(), world.juju_version.clone()),
        ("JUJU_CHARM_DIR".into(), charm_dir.clone()),
        ("CHARM_DIR".into(), charm_dir),
        ("JUJU_CONTEXT_ID".into(), context_id.to_owned()),
        (
            "JUJU_AGENT_SOCKET_ADDRESS".into(),
            socket.display().to_string(),
        ),
        ("JUJU_AGENT_SOCKET_NETWORK".into(), "unix".into()),
        ("JUJU_API_ADDRESSES".into(), "127.0.0.1:17070".into()),
        ("JUJU_MACHINE_ID".into(), unit_number(unit).to_string()),
        ("JUJU_PRINCIPAL_UNIT".into(), String::new()),
        ("JUJU_AVAILABILITY_ZONE".into(), String::new()),
        ("CLOUD_API_VERSION".into(), String::new()),
        ("JUJU_CHARM_HTTP_PROXY".into(), String::new()),
        ("JUJU_CHARM_HTTPS_PROXY".into(), String::new()),
        ("JUJU_CHARM_FTP_PROXY".into(), String::new()),
        ("JUJU_CHARM_NO_PROXY".into(), String::new()),
        ("LANG".into(), "C.UTF-8".into()),
        ("TERM".into(), "tmux-256color".into()),
        ("DEBIAN_FRONTEND".into(), "noninteractive".into()),
        ("APT_LISTCHANGES_FRONTEND".into(), "none".into()),
    ];
    if !world.runs_dispatch() {
        env.retain(|(name, _)| name != "JUJU_DISPATCH_PATH");
    }
    if let Some(id) = event.relation {
        let app = World::app_of(unit);
        let endpoint = world.endpoint_of(id, app).unwrap_or_default();
        env.push(("JUJU_RELATION".into(), endpoint.clone()));
        env.push(("JUJU_RELATION_ID".into(), format!("{endpoint}:{id}")));
        env.push((
            "JUJU_REMOTE_APP".into(),
            event.remote_app.clone().unwrap_or_default(),
        ));
        env.push((
            "JUJU_REMOTE_UNIT".into(),
            event.remote_unit.clone().unwrap_or_default(),
        ));
        if let Some(departing) = &event.departing_unit {
            env.push(("JUJU_DEPARTING_UNIT".into(), departing.clone()));
        }
    }
    if let Some(id) = event.action {
        env.push(("JUJU_ACTION_NAME".into(), event.name.clone()));
        env.push(("JUJU_ACTION_UUID".into(), id.to_string()));
        env.push(("JUJU_ACTION_TAG".into(), format!("action-{id}")));
    }
    if let Some((uri, label, revision)) = &event.secret {
        env.push(("JUJU_SECRET_ID".into(), uri.clone()));
        env.push((
            "JUJU_SECRET_LABEL".into(),
            label.clone().unwrap_or_default(),
        ));
        if *revision > 0 {
            env.push(("JUJU_SECRET_REVISION".into(), revision.to_string()));
        }
    }
    env
}
