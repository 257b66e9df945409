//! The hook tools, as the unit agent answers them: argument parsing, Juju's access rules, exact
//! error messages and exit codes (2 for usage errors, 1 for runtime errors), and output formats.
//!
//! Every tool works on the running hook's context: reads see committed data plus this hook's own
//! pending writes; writes that Juju makes transactional are recorded as [`Pending`] and only
//! committed by the runner when the hook exits 0.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::format::{Format, render};
use crate::state::{HookContext, HookEvent, LogLine, Pending, Secret, World};

/// The exit code a [`crate::state::ToolFault`] gives to have the tool executable kill the hook
/// process that called it (SIGKILL), instead of failing the call.
pub const KILL_THE_HOOK: i32 = -9;

/// What a tool process prints and returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ToolOutput {
    fn ok(stdout: String) -> ToolOutput {
        ToolOutput {
            code: 0,
            stdout,
            stderr: String::new(),
        }
    }
}

/// A failure: `ERROR <message>` on stderr and the exit code.
struct Fail(i32, String);

fn usage(message: impl Into<String>) -> Fail {
    Fail(2, message.into())
}

fn runtime(message: impl Into<String>) -> Fail {
    Fail(1, message.into())
}

type ToolResult = Result<String, Fail>;

/// The tools the simulator answers, for the tools directory.
pub const TOOL_NAMES: [&str; 32] = [
    "config-get",
    "relation-ids",
    "relation-list",
    "relation-get",
    "relation-set",
    "is-leader",
    "leader-get",
    "leader-set",
    "status-set",
    "status-get",
    "application-version-set",
    "juju-log",
    "action-get",
    "action-set",
    "action-fail",
    "action-log",
    "open-port",
    "close-port",
    "opened-ports",
    "network-get",
    "unit-get",
    "goal-state",
    "secret-add",
    "secret-get",
    "secret-set",
    "secret-grant",
    "secret-revoke",
    "secret-remove",
    "secret-ids",
    "secret-info-get",
    "state-get",
    "resource-get",
];

/// Runs one tool call for the hook in `world.current`.
pub fn run_tool(world: &mut World, tool: &str, args: &[String], stdin: &[u8]) -> ToolOutput {
    let Some(ctx) = world.current.as_mut() else {
        return ToolOutput {
            code: 1,
            stdout: String::new(),
            stderr: "ERROR no hook is running\n".to_owned(),
        };
    };
    let mut line = tool.to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    ctx.calls.push(line);
    let unit = ctx.unit.clone();
    if let Some(at) = world
        .tool_faults
        .iter()
        .position(|f| f.unit == unit && f.tool == tool)
    {
        let fault = world.tool_faults.remove(at);
        return ToolOutput {
            code: fault.code,
            stdout: String::new(),
            stderr: format!("ERROR {}\n", fault.message),
        };
    }
    let result = dispatch(world, tool, args, stdin);
    match result {
        Ok(stdout) => ToolOutput::ok(stdout),
        Err(Fail(code, message)) => ToolOutput {
            code,
            stdout: String::new(),
            stderr: format!("ERROR {message}\n"),
        },
    }
}

fn dispatch(world: &mut World, tool: &str, args: &[String], stdin: &[u8]) -> ToolResult {
    match tool {
        "config-get" => config_get(world, args),
        "resource-get" => resource_get(world, args),
        "relation-ids" => relation_ids(world, args),
        "relation-list" => relation_list(world, args),
        "relation-get" => relation_get(world, args),
        "relation-set" => relation_set(world, args, stdin),
        "is-leader" => is_leader(world, args),
        "leader-get" => leader_get(world, args),
        "leader-set" => leader_set(world, args),
        "status-set" => status_set(world, args),
        "status-get" => status_get(world, args),
        "application-version-set" => application_version_set(world, args),
        "juju-log" => juju_log(world, args),
        "action-get" => action_get(world, args),
        "action-set" => action_set(world, args),
        "action-fail" => action_fail(world, args),
        "action-log" => action_log(world, args),
        "open-port" => port(world, args, true),
        "close-port" => port(world, args, false),
        "opened-ports" => opened_ports(world, args),
        "network-get" => network_get(world, args),
        "unit-get" => unit_get(world, args),
        "goal-state" => goal_state(world, args),
        "secret-add" => secret_add(world, args, stdin),
        "secret-get" => secret_get(world, args),
        "secret-set" => secret_set(world, args, stdin),
        "secret-grant" => secret_grant(world, args),
        "secret-revoke" => secret_revoke(world, args),
        "secret-remove" => secret_remove(world, args),
        "secret-ids" => secret_ids(world, args),
        "secret-info-get" => secret_info_get(world, args),
        "state-get" => Ok(render(&json!({}), parse(args, &[FORMAT])?.format()?)),
        other => Err(runtime(format!("unknown hook tool {other:?}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Argument parsing, gnuflag style: flags anywhere, `--` ends them, `--flag=value` or
// `--flag value`, booleans as `--flag` or `--flag=true|false`.

/// A flag: its names and whether it takes a value.
type FlagSpec = (&'static [&'static str], bool);

const FORMAT: FlagSpec = (&["format"], true);
const RELATION: FlagSpec = (&["r", "relation"], true);
const APP: FlagSpec = (&["app"], false);
/// secret-add and secret-set take the same flags.
const SECRET_FLAGS: [FlagSpec; 6] = [
    (&["owner"], true),
    (&["label"], true),
    (&["description"], true),
    (&["expire"], true),
    (&["rotate"], true),
    (&["file"], true),
];

struct Args {
    flags: BTreeMap<&'static str, String>,
    positional: Vec<String>,
}

impl Args {
    fn flag(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }

    fn on(&self, name: &str) -> bool {
        self.flags.get(name).is_some_and(|v| v == "true")
    }

    fn format(&self) -> Result<Format, Fail> {
        self.format_or(Format::Smart)
    }

    fn format_or(&self, default: Format) -> Result<Format, Fail> {
        match self.flag("format") {
            None => Ok(default),
            Some(name) => Format::parse(name).ok_or_else(|| {
                usage(format!(
                    "invalid value {name:?} for option --format: unknown format {name:?}"
                ))
            }),
        }
    }

    fn at_most(&self, n: usize) -> Result<(), Fail> {
        if self.positional.len() > n {
            let extra: Vec<String> = self.positional[n..]
                .iter()
                .map(|a| format!("{a:?}"))
                .collect();
            return Err(usage(format!("unrecognized args: [{}]", extra.join(" "))));
        }
        Ok(())
    }
}

fn parse(args: &[String], spec: &[FlagSpec]) -> Result<Args, Fail> {
    let mut flags = BTreeMap::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            positional.extend(args[i..].iter().cloned());
            break;
        }
        let Some(stripped) = arg.strip_prefix('-').filter(|s| !s.is_empty()) else {
            positional.push(arg.clone());
            continue;
        };
        let stripped = stripped.strip_prefix('-').unwrap_or(stripped);
        let (name, inline) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (stripped, None),
        };
        let Some((names, takes_value)) = spec.iter().find(|(names, _)| names.contains(&name))
        else {
            return Err(usage(format!("flag provided but not defined: -{name}")));
        };
        let value = if *takes_value {
            match inline {
                Some(v) => v,
                None => {
                    let Some(v) = args.get(i) else {
                        return Err(usage(format!("flag needs an argument: -{name}")));
                    };
                    i += 1;
                    v.clone()
                }
            }
        } else {
            // Go's strconv.ParseBool, which gnuflag uses.
            match inline.as_deref() {
                None | Some("1" | "t" | "T" | "TRUE" | "true" | "True") => "true".to_owned(),
                Some("0" | "f" | "F" | "FALSE" | "false" | "False") => "false".to_owned(),
                Some(other) => {
                    return Err(usage(format!(
                        "invalid boolean value {other:?} for -{name}"
                    )));
                }
            }
        };
        flags.insert(names[0], value);
    }
    Ok(Args { flags, positional })
}

/// `key=value` arguments (juju/utils keyvalues): trimmed, no duplicates.
fn key_values(items: &[String]) -> Result<Vec<(String, String)>, Fail> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for item in items {
        let Some((key, value)) = item.split_once('=') else {
            return Err(usage(format!("expected \"key=value\", got {item:?}")));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(usage(format!("expected \"key=value\", got {item:?}")));
        }
        if seen.insert(key.to_owned(), ()).is_some() {
            return Err(usage(format!("key {key:?} specified more than once")));
        }
        out.push((key.to_owned(), value.trim().to_owned()));
    }
    Ok(out)
}

fn ctx(world: &World) -> &HookContext {
    // run_tool checked that a hook is running.
    world.current.as_ref().expect("a hook is running")
}

fn ctx_mut(world: &mut World) -> &mut HookContext {
    world.current.as_mut().expect("a hook is running")
}

fn unit(world: &World) -> String {
    ctx(world).unit.clone()
}

// ---------------------------------------------------------------------------------------------
// Relations.

/// Resolves `-r` (or the hook's own relation) to a relation this unit is in.
fn relation_id(world: &World, flag: Option<&str>) -> Result<u32, Fail> {
    let me = unit(world);
    let app = World::app_of(&me).to_owned();
    let Some(text) = flag else {
        return ctx(world)
            .event
            .relation
            .ok_or_else(|| usage("no relation id specified"));
    };
    let not_found = || {
        usage(format!(
            "invalid value {text:?} for flag -r: relation not found"
        ))
    };
    let (prefix, number) = match text.rsplit_once(':') {
        Some((p, n)) => (Some(p), n),
        None => (None, text),
    };
    let id: u32 = number.parse().map_err(|_| {
        usage(format!(
            "invalid value {text:?} for flag -r: invalid relation id"
        ))
    })?;
    let rel = world.relations.get(&id).ok_or_else(not_found)?;
    let end = rel.end_of(&app).ok_or_else(not_found)?;
    if prefix.is_some_and(|p| p != end.endpoint) {
        return Err(not_found());
    }
    Ok(id)
}

fn relation_key(world: &World, id: u32, app: &str) -> String {
    format!("{}:{id}", world.endpoint_of(id, app).unwrap_or_default())
}

/// A bag as the running unit sees it: committed data plus its own pending writes.
fn visible_bag(world: &World, id: u32, bag: &str) -> BTreeMap<String, String> {
    let mut data = world.bag(id, bag);
    let context = ctx(world);
    for pending in &context.pending {
        if let Pending::RelationSet {
            relation,
            bag: b,
            key,
            value,
        } = pending
            && *relation == id
            && b == bag
        {
            match value {
                Some(v) => data.insert(key.clone(), v.clone()),
                None => data.remove(key),
            };
        }
    }
    data
}

fn relation_ids(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[FORMAT])?;
    args.at_most(1)?;
    let me = unit(world);
    let app = World::app_of(&me).to_owned();
    let endpoint = match args.positional.first() {
        Some(e) => e.clone(),
        None => {
            let event = &ctx(world).event;
            match event.relation.and_then(|id| world.endpoint_of(id, &app)) {
                Some(e) => e,
                None => return Err(usage("no endpoint name specified")),
            }
        }
    };
    let mut ids: Vec<String> = world
        .relations
        .values()
        .filter(|r| !r.dying && r.in_scope.contains(&me))
        .filter(|r| r.end_of(&app).is_some_and(|e| e.endpoint == endpoint))
        .map(|r| format!("{endpoint}:{}", r.id))
        .collect();
    ids.sort();
    Ok(render(&json!(ids), args.format()?))
}

fn relation_list(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[FORMAT, RELATION, APP])?;
    args.at_most(0)?;
    let id = relation_id(world, args.flag("r"))?;
    let me = unit(world);
    let rel = &world.relations[&id];
    if args.on("app") {
        let remote = rel.remote_app(World::app_of(&me)).unwrap_or_default();
        return Ok(render(&json!(remote), args.format()?));
    }
    let mut units: Vec<String> = rel
        .joined
        .get(&me)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    units.sort_by_key(|u| {
        let (app, n) = u.split_once('/').unwrap_or((u, "0"));
        (app.to_owned(), n.parse::<u32>().unwrap_or(0))
    });
    Ok(render(&json!(units), args.format()?))
}

fn relation_get(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[FORMAT, RELATION, APP])?;
    args.at_most(2)?;
    let id = relation_id(world, args.flag("r"))?;
    let me = unit(world);
    let my_app = World::app_of(&me).to_owned();
    let mut app_bag = args.on("app");
    let key = args.positional.first().filter(|k| *k != "-").cloned();
    let target = match args.positional.get(1) {
        Some(t) => t.clone(),
        None => {
            let event = &ctx(world).event;
            let same_relation = event.relation == Some(id);
            match (&event.remote_unit, &event.remote_app) {
                (Some(u), _) if same_relation && !app_bag => u.clone(),
                (_, Some(a)) if same_relation => {
                    app_bag = true;
                    a.clone()
                }
                _ => return Err(usage("no unit or application specified")),
            }
        }
    };
    let target = if app_bag {
        World::app_of(&target).to_owned()
    } else {
        if !target.contains('/') {
            return Err(usage(format!(
                "expected unit name, got application name {target:?}"
            )));
        }
        target
    };
    let rel = &world.relations[&id];
    let allowed = if app_bag {
        if target == my_app {
            rel.is_peer() || world.is_leader(&me)
        } else {
            rel.involves(&target)
        }
    } else {
        let target_app = World::app_of(&target);
        rel.involves(target_app) && world.units.contains_key(&target)
    };
    if !allowed {
        return Err(runtime("permission denied"));
    }
    let data = if target == me || (app_bag && target == my_app) {
        visible_bag(world, id, &target)
    } else {
        world.bag(id, &target)
    };
    let format = args.format()?;
    Ok(match key {
        Some(k) => render(&data.get(&k).map_or(Value::Null, |v| json!(v)), format),
        None => render(&json!(data), format),
    })
}

fn relation_set(world: &mut World, args: &[String], stdin: &[u8]) -> ToolResult {
    let parsed = parse(args, &[FORMAT, RELATION, APP, (&["file"], true)])?;
    let id = relation_id(world, parsed.flag("r"))?;
    let me = unit(world);
    let mut settings: Vec<(String, String)> = Vec::new();
    if let Some(file) = parsed.flag("file") {
        let text = if file == "-" {
            String::from_utf8_lossy(stdin).into_owned()
        } else {
            std::fs::read_to_string(file)
                .map_err(|e| runtime(format!("cannot read {file}: {e}")))?
        };
        let map: Option<BTreeMap<String, Value>> = serde_norway::from_str(&text)
            .map_err(|e| runtime(format!("cannot parse {file}: {e}")))?;
        for (key, value) in map.unwrap_or_default() {
            let value = match value {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            settings.push((key, value));
        }
    }
    for (key, value) in key_values(&parsed.positional)? {
        settings.retain(|(k, _)| *k != key);
        settings.push((key, value));
    }
    let bag = if parsed.on("app") {
        if !world.is_leader(&me) {
            return Err(runtime("cannot write relation settings"));
        }
        World::app_of(&me).to_owned()
    } else {
        me
    };
    let context = ctx_mut(world);
    for (key, value) in settings {
        context.pending.push(Pending::RelationSet {
            relation: id,
            bag: bag.clone(),
            key,
            value: (!value.is_empty()).then_some(value),
        });
    }
    let mut out = String::new();
    if parsed.flag("format").is_some() {
        out.clear();
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Config, leadership, status, logs.

fn config_get(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[FORMAT, (&["a", "all"], false)])?;
    args.at_most(1)?;
    let me = unit(world);
    let app = World::app_of(&me);
    let mut config = world.config_of(app);
    if let Some(key) = args.positional.first() {
        if args.on("a") {
            return Err(usage(format!(
                "cannot use argument --all together with key {key:?}"
            )));
        }
        return Ok(render(
            config.get(key).unwrap_or(&Value::Null),
            args.format()?,
        ));
    }
    if args.on("a") {
        for name in world.apps[app].meta.options.keys() {
            config.entry(name.clone()).or_insert(Value::Null);
        }
    }
    Ok(render(&Value::Object(config), args.format()?))
}

/// `resource-get <name>`: the path of this unit's copy of the resource, written from what was
/// attached; a resource that was never attached (or is not declared) cannot be downloaded.
fn resource_get(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[])?;
    args.at_most(1)?;
    let Some(name) = args.positional.first() else {
        return Err(usage("no resource name specified"));
    };
    let me = unit(world);
    let app = World::app_of(&me).to_owned();
    let not_found = || {
        runtime(format!(
            "could not download resource: HTTP request failed: resource#{app}/{name} not found"
        ))
    };
    let application = &world.apps[&app];
    let meta = application.meta.resources.get(name).ok_or_else(not_found)?;
    let content = application.resources.get(name).ok_or_else(not_found)?;
    let dir = world
        .resource_dir
        .as_ref()
        .ok_or_else(|| runtime("this model keeps no resources"))?
        .join(&me)
        .join(name);
    let path = dir.join(meta.filename.as_deref().unwrap_or(name));
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, content))
        .map_err(|e| runtime(format!("cannot store the resource: {e}")))?;
    Ok(format!("{}\n", path.display()))
}

fn is_leader(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[FORMAT])?;
    args.at_most(0)?;
    let me = unit(world);
    Ok(render(&json!(world.is_leader(&me)), args.format()?))
}

fn leader_get(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[FORMAT])?;
    args.at_most(1)?;
    let me = unit(world);
    let settings = &world.apps[World::app_of(&me)].leader_settings;
    match args.positional.first().filter(|k| *k != "-") {
        Some(key) if key.contains('=') => Err(usage(format!("invalid key {key:?}"))),
        Some(key) => Ok(render(
            &settings.get(key).map_or(Value::Null, |v| json!(v)),
            args.format()?,
        )),
        None => Ok(render(&json!(settings), args.format()?)),
    }
}

fn leader_set(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[(&["file"], true)])?;
    let pairs = key_values(&args.positional)?;
    let me = unit(world);
    if !world.is_leader(&me) {
        return Err(runtime(
            "cannot write leadership settings: cannot write settings: not the leader",
        ));
    }
    let app = World::app_of(&me).to_owned();
    let settings = &mut world.apps.get_mut(&app).expect("app").leader_settings;
    let mut changed = false;
    for (key, value) in pairs {
        let before = if value.is_empty() {
            settings.remove(&key)
        } else {
            settings.insert(key, value.clone())
        };
        changed |= before.as_deref() != Some(value.as_str()).filter(|v| !v.is_empty());
    }
    // Not transactional: the others hear of it at once, whatever this hook does next.
    if changed {
        for other in world.live_units_of(&app) {
            if other != me {
                world.queue(&other, HookEvent::simple("leader-settings-changed"));
            }
        }
    }
    Ok(String::new())
}

const STATUSES: [&str; 4] = ["maintenance", "blocked", "waiting", "active"];

fn status_set(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[(&["application"], false)])?;
    let Some(status) = args.positional.first() else {
        return Err(usage("invalid args, require <status> [message]"));
    };
    if !STATUSES.contains(&status.as_str()) {
        return Err(usage(format!(
            "invalid status {status:?}, expected one of [maintenance blocked waiting active]"
        )));
    }
    args.at_most(2)?;
    let message = args.positional.get(1).cloned().unwrap_or_default();
    let me = unit(world);
    let record = crate::state::StatusRecord {
        status: status.clone(),
        message,
    };
    if args.on("application") {
        if !world.is_leader(&me) {
            return Err(runtime("this unit is not the leader"));
        }
        world.apps.get_mut(World::app_of(&me)).expect("app").status = record;
    } else {
        world.units.get_mut(&me).expect("unit").status = record;
    }
    Ok(String::new())
}

fn status_get(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(
        args,
        &[
            FORMAT,
            (&["include-data"], false),
            (&["application"], false),
        ],
    )?;
    args.at_most(0)?;
    let me = unit(world);
    let unit_status = &world.units[&me].status;
    if args.on("application") {
        if !world.is_leader(&me) {
            return Err(runtime("this unit is not the leader"));
        }
        let app = &world.apps[World::app_of(&me)];
        let units: Map<String, Value> = world
            .live_units_of(&app.name)
            .into_iter()
            .map(|u| {
                let s = &world.units[&u].status;
                (
                    u,
                    json!({"status": s.status, "message": s.message, "status-data": {}}),
                )
            })
            .collect();
        return Ok(render(
            &json!({"application-status": {"status": app.status.status, "message": app.status.message,
                    "status-data": {}, "units": units}}),
            args.format()?,
        ));
    }
    let format = args.format()?;
    if format == Format::Smart && !args.on("include-data") {
        return Ok(render(&json!(unit_status.status), format));
    }
    Ok(render(
        &json!({"status": unit_status.status, "message": unit_status.message, "status-data": {}}),
        format,
    ))
}

fn application_version_set(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[])?;
    let Some(version) = args.positional.first() else {
        return Err(usage("no version specified"));
    };
    args.at_most(1)?;
    let me = unit(world);
    world.apps.get_mut(World::app_of(&me)).expect("app").version = version.clone();
    Ok(String::new())
}

fn juju_log(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(
        args,
        &[(&["l", "log-level"], true), (&["debug"], false), FORMAT],
    )?;
    if args.positional.is_empty() {
        return Err(usage("no message specified"));
    }
    let level = if args.on("debug") {
        "DEBUG".to_owned()
    } else {
        let given = args.flag("l").unwrap_or("INFO").to_uppercase();
        if ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].contains(&given.as_str()) {
            given
        } else {
            "INFO".to_owned()
        }
    };
    let me = unit(world);
    let mut message = args.positional.join(" ");
    if let Some(id) = ctx(world).event.relation {
        message = format!("{}: {message}", relation_key(world, id, World::app_of(&me)));
    }
    world.logs.push(LogLine {
        unit: me,
        level,
        message,
    });
    Ok(String::new())
}

// ---------------------------------------------------------------------------------------------
// Actions.

fn current_action(world: &World) -> Result<u64, Fail> {
    ctx(world)
        .event
        .action
        .ok_or_else(|| runtime("not running an action"))
}

fn action_get(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[FORMAT])?;
    args.at_most(1)?;
    let id = current_action(world)?;
    let params = Value::Object(world.actions[&id].params.clone());
    let format = args.format()?;
    match args.positional.first() {
        None => Ok(render(&params, format)),
        Some(path) => {
            let mut value = &params;
            for part in path.split('.') {
                value = value.get(part).unwrap_or(&Value::Null);
            }
            Ok(render(value, format))
        }
    }
}

fn valid_action_key(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && edge(bytes[0])
        && edge(bytes[bytes.len() - 1])
        && bytes.iter().all(|&b| edge(b) || b == b'-')
}

fn action_set(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[])?;
    let id = current_action(world)?;
    let mut updates = Vec::new();
    for item in &args.positional {
        let Some((key, value)) = item.split_once('=') else {
            return Err(usage(format!(
                "argument {item:?} must be of the form key...=value"
            )));
        };
        for segment in key.split('.') {
            if !valid_action_key(segment) {
                return Err(usage(format!(
                    "key {key:?} must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods"
                )));
            }
            if ["stdout", "stdout-encoding", "stderr", "stderr-encoding"].contains(&segment) {
                return Err(usage(format!("cannot set reserved action key {segment:?}")));
            }
        }
        updates.push((key.to_owned(), value.to_owned()));
    }
    let task = world.actions.get_mut(&id).expect("task");
    for (key, value) in updates {
        let parts: Vec<&str> = key.split('.').collect();
        let mut map = &mut task.results;
        for part in &parts[..parts.len() - 1] {
            let entry = map
                .entry((*part).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            map = entry.as_object_mut().expect("object");
        }
        map.insert(parts[parts.len() - 1].to_owned(), Value::String(value));
    }
    Ok(String::new())
}

fn action_fail(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[])?;
    args.at_most(1)?;
    let id = current_action(world)?;
    let message = args.positional.first().cloned().unwrap_or_else(|| {
        "action failed without reason given, check action for errors".to_owned()
    });
    let task = world.actions.get_mut(&id).expect("task");
    task.status = "failed".to_owned();
    task.message = Some(message);
    Ok(String::new())
}

fn action_log(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[])?;
    if args.positional.is_empty() {
        return Err(usage("no message specified"));
    }
    let id = current_action(world)?;
    world
        .actions
        .get_mut(&id)
        .expect("task")
        .logs
        .push(args.positional.join(" "));
    Ok(String::new())
}

// ---------------------------------------------------------------------------------------------
// Ports and networks.

fn normalise_port(spec: &str) -> Result<String, Fail> {
    let spec = spec.to_lowercase();
    if spec == "icmp" {
        return Ok(spec);
    }
    let (range, proto) = match spec.split_once('/') {
        Some((r, p)) => (r.to_owned(), p.to_owned()),
        None => (spec.clone(), "tcp".to_owned()),
    };
    if !["tcp", "udp"].contains(&proto.as_str()) {
        return Err(usage(format!(
            "invalid protocol {proto:?}, expected \"tcp\", \"udp\", or \"icmp\""
        )));
    }
    let valid = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
    let ok = match range.split_once('-') {
        Some((a, b)) => valid(a) && valid(b),
        None => valid(&range),
    };
    if !ok {
        return Err(usage(format!("invalid port {range:?}")));
    }
    Ok(format!("{range}/{proto}"))
}

fn port(world: &mut World, args: &[String], open: bool) -> ToolResult {
    let args = parse(args, &[(&["endpoints"], true), FORMAT])?;
    let Some(spec) = args.positional.first() else {
        return Err(usage("no port or range specified"));
    };
    args.at_most(1)?;
    let port = normalise_port(spec)?;
    ctx_mut(world).pending.push(if open {
        Pending::OpenPort(port)
    } else {
        Pending::ClosePort(port)
    });
    Ok(String::new())
}

fn opened_ports(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[FORMAT, (&["endpoints"], false)])?;
    args.at_most(0)?;
    let me = unit(world);
    let ports: Vec<String> = world.units[&me]
        .ports
        .iter()
        .map(|p| {
            if args.on("endpoints") {
                format!("{p} (*)")
            } else {
                p.clone()
            }
        })
        .collect();
    Ok(render(&json!(ports), args.format()?))
}

fn network_get(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(
        args,
        &[
            FORMAT,
            RELATION,
            (&["bind-address"], false),
            (&["ingress-address"], false),
            (&["egress-subnets"], false),
            (&["primary-address"], false),
        ],
    )?;
    let Some(binding) = args.positional.first() else {
        return Err(usage("no arguments specified"));
    };
    args.at_most(1)?;
    let me = unit(world);
    let app = &world.apps[World::app_of(&me)];
    let known = binding == "juju-info"
        || app.meta.endpoint(binding).is_some()
        || app.meta.extra_bindings.iter().any(|b| b == binding);
    if !known {
        return Err(runtime(format!(
            "no network config found for binding {binding:?}"
        )));
    }
    let address = world.units[&me].address.clone();
    let egress = format!("{address}/32");
    // Every unit's network is a /24 (the model's bridge, or the loopback block in-process).
    let subnet = match address.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => {
            let [a, b, c, _] = ip.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Err(_) => format!("{address}/32"),
    };
    let format = args.format()?;
    let selected: Vec<(&str, Value)> = [
        ("bind-address", json!(address)),
        ("ingress-address", json!(address)),
        ("egress-subnets", json!([egress])),
        ("primary-address", json!(address)),
    ]
    .into_iter()
    .filter(|(name, _)| args.on(name))
    .collect();
    match selected.len() {
        0 => Ok(render(
            &json!({
                "bind-addresses": [{"mac-address": "", "interface-name": "eth0",
                    "addresses": [{"hostname": "", "value": address, "cidr": subnet}]}],
                "egress-subnets": [egress],
                "ingress-addresses": [address],
            }),
            format,
        )),
        1 => Ok(render(&selected[0].1, format)),
        _ => Ok(render(
            &Value::Object(
                selected
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            ),
            format,
        )),
    }
}

fn unit_get(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[FORMAT])?;
    let Some(key) = args.positional.first() else {
        return Err(usage("no setting specified"));
    };
    args.at_most(1)?;
    if key != "private-address" && key != "public-address" {
        return Err(usage(format!("unknown setting {key:?}")));
    }
    let me = unit(world);
    Ok(render(&json!(world.units[&me].address), args.format()?))
}

fn goal_state(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[FORMAT])?;
    args.at_most(0)?;
    let me = unit(world);
    let app = World::app_of(&me).to_owned();
    let units: Map<String, Value> = world
        .live_units_of(&app)
        .into_iter()
        .map(|u| (u, json!({"status": "active"})))
        .collect();
    let mut relations = Map::new();
    for id in world.relations_of(&app) {
        let rel = &world.relations[&id];
        let endpoint = rel
            .end_of(&app)
            .map(|e| e.endpoint.clone())
            .unwrap_or_default();
        let entry = relations
            .entry(endpoint)
            .or_insert_with(|| Value::Object(Map::new()));
        let map = entry.as_object_mut().expect("object");
        if let Some(remote) = rel.remote_app(&app) {
            map.insert(remote.to_owned(), json!({"status": "joined"}));
            for u in world.live_units_of(remote) {
                if u != me {
                    map.insert(u, json!({"status": "joined"}));
                }
            }
        }
    }
    Ok(render(
        &json!({"units": units, "relations": relations}),
        args.format_or(Format::Yaml)?,
    ))
}

// ---------------------------------------------------------------------------------------------
// Secrets.

fn valid_secret_key(key: &str) -> bool {
    // ^[a-z](-?[a-z0-9]){2,}$
    let bytes = key.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_lowercase() {
        return false;
    }
    let mut groups = 0;
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'-' {
            i += 1;
        }
        match bytes.get(i) {
            Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit() => {
                groups += 1;
                i += 1;
            }
            _ => return false,
        }
    }
    groups >= 2
}

/// Secret content from `key=value`, `key#base64=...`, `key#file=path` and `--file`.
fn secret_content(
    items: &[String],
    file: Option<&str>,
    stdin: &[u8],
) -> Result<BTreeMap<String, String>, Fail> {
    let mut content = BTreeMap::new();
    if let Some(file) = file {
        let text = if file == "-" {
            String::from_utf8_lossy(stdin).into_owned()
        } else {
            std::fs::read_to_string(file)
                .map_err(|e| runtime(format!("cannot read {file}: {e}")))?
        };
        let map: BTreeMap<String, String> = serde_norway::from_str(&text)
            .map_err(|e| runtime(format!("cannot parse secret file: {e}")))?;
        content.extend(map);
    }
    for item in items {
        let Some((key, value)) = item.split_once('=') else {
            return Err(usage(format!("expected \"key=value\", got {item:?}")));
        };
        let (key, value) = if let Some(k) = key.strip_suffix("#base64") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|_| usage(format!("invalid base64 value for key {k:?}")))?;
            (k, String::from_utf8_lossy(&decoded).into_owned())
        } else if let Some(k) = key.strip_suffix("#file") {
            let text = std::fs::read_to_string(value)
                .map_err(|e| runtime(format!("cannot read secret file {value}: {e}")))?;
            (k, text)
        } else {
            (key, value.to_owned())
        };
        if !valid_secret_key(key) {
            return Err(usage(format!("key {key:?} not valid")));
        }
        content.insert(key.to_owned(), value);
    }
    if content.values().any(|v| v.len() > 8 * 1024) {
        return Err(usage("secret content value too large (max 8 KiB)"));
    }
    Ok(content)
}

/// Finds a secret by URI (`secret:<id>` or `secret://<model>/<id>`) or by label. A URI that
/// names a model finds only that model's secret (a copy of it, for another model's secret
/// granted across a cross-model relation).
fn find_secret(world: &World, uri: Option<&str>, label: Option<&str>) -> Option<String> {
    if let Some(uri) = uri {
        let id = uri.rsplit(['/', ':']).next().unwrap_or(uri);
        let model = uri
            .strip_prefix("secret://")
            .and_then(|rest| rest.split_once('/'))
            .map(|(model, _)| model);
        let secret = world.secrets.get(id)?;
        let lives_in = secret.source_model.as_deref().unwrap_or(&world.model_uuid);
        return model.is_none_or(|m| m == lives_in).then(|| id.to_owned());
    }
    let me = unit(world);
    let label = label?;
    world
        .secrets
        .values()
        .find(|s| {
            (is_owner_view(world, s, &me) && s.label.as_deref() == Some(label))
                || s.consumer_labels.get(&me).map(String::as_str) == Some(label)
        })
        .map(|s| s.id.clone())
}

/// Whether `unit` belongs to the secret's owner (any unit of an owning application).
fn is_owner_view(_world: &World, secret: &Secret, unit: &str) -> bool {
    secret.owner == format!("unit:{unit}")
        || secret.owner == format!("application:{}", World::app_of(unit))
}

/// Whether `unit` may manage the secret (the owning unit, or the leader of the owning app).
fn can_manage(world: &World, secret: &Secret, unit: &str) -> Result<(), Fail> {
    if secret.owner == format!("unit:{unit}") {
        return Ok(());
    }
    if secret.owner == format!("application:{}", World::app_of(unit)) {
        return if world.is_leader(unit) {
            Ok(())
        } else {
            Err(runtime("this unit is not the leader"))
        };
    }
    Err(runtime("permission denied"))
}

fn secret_add(world: &mut World, args: &[String], stdin: &[u8]) -> ToolResult {
    let args = parse(args, &SECRET_FLAGS)?;
    if args.positional.is_empty() && args.flag("file").is_none() {
        return Err(usage("missing secret value or filename"));
    }
    let content = secret_content(&args.positional, args.flag("file"), stdin)?;
    let me = unit(world);
    let owner = match args.flag("owner").unwrap_or("application") {
        "application" => {
            if !world.is_leader(&me) {
                return Err(runtime("this unit is not the leader"));
            }
            format!("application:{}", World::app_of(&me))
        }
        "unit" => format!("unit:{me}"),
        other => return Err(usage(format!("invalid value {other:?} for option --owner"))),
    };
    let id = format!("d{:019}", world.next_secret);
    world.next_secret += 1;
    let source_model = world
        .secret_uris_name_model
        .then(|| world.model_uuid.clone());
    let secret = Secret {
        id: id.clone(),
        owner,
        label: args.flag("label").map(str::to_owned),
        description: args.flag("description").map(str::to_owned),
        rotate: args.flag("rotate").map(str::to_owned),
        revisions: vec![content],
        grants: BTreeMap::new(),
        tracked: BTreeMap::new(),
        consumer_labels: BTreeMap::new(),
        source_model,
    };
    let uri = secret.uri();
    world.secrets.insert(id.clone(), secret);
    // Usable at once within the hook; removed again if the hook fails.
    ctx_mut(world).pending.push(Pending::SecretAdd(id));
    Ok(format!("{uri}\n"))
}

fn secret_get(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(
        args,
        &[
            FORMAT,
            (&["label"], true),
            (&["peek"], false),
            (&["refresh"], false),
        ],
    )?;
    args.at_most(2)?;
    let uri = args.positional.first().cloned();
    let label = args.flag("label").map(str::to_owned);
    if uri.is_none() && label.is_none() {
        return Err(usage("require either a secret URI or label"));
    }
    if args.on("peek") && args.on("refresh") {
        return Err(usage("specify one of --peek or --refresh but not both"));
    }
    let me = unit(world);
    let Some(id) = find_secret(world, uri.as_deref(), label.as_deref()) else {
        let name = uri.or(label).unwrap_or_default();
        return Err(runtime(format!("secret {name:?} not found")));
    };
    let secret = &world.secrets[&id];
    let owner_view = is_owner_view(world, secret, &me);
    let granted = secret.grants.contains_key(World::app_of(&me)) || secret.grants.contains_key(&me);
    if !owner_view && !granted {
        return Err(runtime("permission denied"));
    }
    let latest = secret.latest();
    let revision = if owner_view || args.on("peek") || args.on("refresh") {
        latest
    } else {
        secret.tracked.get(&me).copied().unwrap_or(latest)
    };
    let content = secret.revisions[(revision - 1) as usize].clone();
    let secret = world.secrets.get_mut(&id).expect("secret");
    if !owner_view && !args.on("peek") {
        secret.tracked.insert(me.clone(), revision);
    }
    if uri_and_label(&args) {
        secret
            .consumer_labels
            .insert(me, args.flag("label").unwrap_or_default().to_owned());
    }
    let format = args.format_or(Format::Yaml)?;
    match args.positional.get(1) {
        Some(key) => {
            let (key, b64) = match key.strip_suffix("#base64") {
                Some(k) => (k, true),
                None => (key.as_str(), false),
            };
            let value = content.get(key).map(|v| {
                if b64 {
                    json!(base64::engine::general_purpose::STANDARD.encode(v))
                } else {
                    json!(v)
                }
            });
            Ok(render(&value.unwrap_or(Value::Null), format))
        }
        None => Ok(render(&json!(content), format)),
    }
}

fn uri_and_label(args: &Args) -> bool {
    !args.positional.is_empty() && args.flag("label").is_some()
}

fn secret_set(world: &mut World, args: &[String], stdin: &[u8]) -> ToolResult {
    let args = parse(args, &SECRET_FLAGS)?;
    let Some(uri) = args.positional.first() else {
        return Err(usage("missing secret URI"));
    };
    let me = unit(world);
    let Some(id) = find_secret(world, Some(uri), None) else {
        return Err(runtime(format!("secret {uri:?} not found")));
    };
    can_manage(world, &world.secrets[&id], &me)?;
    let items = &args.positional[1..];
    if !items.is_empty() || args.flag("file").is_some() {
        let content = secret_content(items, args.flag("file"), stdin)?;
        ctx_mut(world).pending.push(Pending::SecretSet {
            id: id.clone(),
            content,
        });
    }
    if args.flag("label").is_some() || args.flag("description").is_some() {
        ctx_mut(world).pending.push(Pending::SecretMeta {
            id,
            label: args.flag("label").map(str::to_owned),
            description: args.flag("description").map(str::to_owned),
        });
    }
    Ok(String::new())
}

fn secret_grant(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[RELATION, (&["unit"], true)])?;
    let Some(uri) = args.positional.first() else {
        return Err(usage("missing secret URI"));
    };
    args.at_most(1)?;
    let id_rel = relation_id(world, args.flag("r"))?;
    let me = unit(world);
    let Some(id) = find_secret(world, Some(uri), None) else {
        return Err(runtime(format!("secret {uri:?} not found")));
    };
    can_manage(world, &world.secrets[&id], &me)?;
    let remote_app = world.relations[&id_rel]
        .remote_app(World::app_of(&me))
        .unwrap_or_default()
        .to_owned();
    let target = match args.flag("unit") {
        Some(u) if World::app_of(u) != remote_app => {
            return Err(usage(format!(
                "cannot specify unit {u:?} in relation to application {remote_app:?}"
            )));
        }
        Some(u) => u.to_owned(),
        None => remote_app,
    };
    ctx_mut(world).pending.push(Pending::SecretGrant {
        id,
        target,
        relation: id_rel,
    });
    Ok(String::new())
}

fn secret_revoke(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[RELATION, (&["unit"], true), (&["app"], true)])?;
    let Some(uri) = args.positional.first() else {
        return Err(usage("missing secret URI"));
    };
    let me = unit(world);
    let Some(id) = find_secret(world, Some(uri), None) else {
        return Err(runtime(format!("secret {uri:?} not found")));
    };
    can_manage(world, &world.secrets[&id], &me)?;
    let target = match (args.flag("unit"), args.flag("app")) {
        (Some(u), _) => u.to_owned(),
        (None, Some(a)) => a.to_owned(),
        (None, None) => {
            let rel = relation_id(world, args.flag("r"))?;
            world.relations[&rel]
                .remote_app(World::app_of(&me))
                .unwrap_or_default()
                .to_owned()
        }
    };
    ctx_mut(world)
        .pending
        .push(Pending::SecretRevoke { id, target });
    Ok(String::new())
}

fn secret_remove(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[(&["revision"], true)])?;
    let Some(uri) = args.positional.first() else {
        return Err(usage("missing secret URI"));
    };
    let me = unit(world);
    let Some(id) = find_secret(world, Some(uri), None) else {
        return Err(runtime(format!("secret {uri:?} not found")));
    };
    can_manage(world, &world.secrets[&id], &me)?;
    ctx_mut(world).pending.push(Pending::SecretRemove(id));
    Ok(String::new())
}

fn secret_ids(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[FORMAT])?;
    args.at_most(0)?;
    let me = unit(world);
    let owned: Vec<String> = world
        .secrets
        .values()
        .filter(|s| {
            s.owner == format!("unit:{me}")
                || (s.owner == format!("application:{}", World::app_of(&me))
                    && world.is_leader(&me))
        })
        .map(Secret::uri)
        .collect();
    // A nil slice in Go: JSON prints null when there are none.
    let value = if owned.is_empty() {
        Value::Null
    } else {
        json!(owned)
    };
    Ok(render(&value, args.format()?))
}

fn secret_info_get(world: &mut World, args: &[String]) -> ToolResult {
    let args = parse(args, &[FORMAT, (&["label"], true)])?;
    args.at_most(1)?;
    let uri = args.positional.first().cloned();
    let label = args.flag("label").map(str::to_owned);
    if uri.is_some() && label.is_some() {
        return Err(usage("specify either a secret URI or label but not both"));
    }
    let me = unit(world);
    let name = uri.clone().or(label.clone()).unwrap_or_default();
    let Some(id) = find_secret(world, uri.as_deref(), label.as_deref()) else {
        return Err(runtime(format!("secret {name:?} not found")));
    };
    let secret = &world.secrets[&id];
    if !is_owner_view(world, secret, &me) {
        return Err(runtime(format!("secret {name:?} not found")));
    }
    let owner = if secret.owner.starts_with("unit:") {
        "unit"
    } else {
        "application"
    };
    let mut info = json!({"revision": secret.latest(), "owner": owner});
    if let Some(l) = &secret.label {
        info["label"] = json!(l);
    }
    if let Some(d) = &secret.description {
        info["description"] = json!(d);
    }
    if let Some(r) = &secret.rotate {
        info["rotation"] = json!(r);
    }
    Ok(render(&json!({ id: info }), args.format_or(Format::Yaml)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_follow_jujus_pattern() {
        for good in ["abc", "fernet-0", "a-b-c", "key1"] {
            assert!(valid_secret_key(good), "{good}");
        }
        for bad in ["1", "ab", "A-bc", "abc-", "a--bc", "-abc", "fernet_0"] {
            assert!(!valid_secret_key(bad), "{bad}");
        }
    }

    #[test]
    fn flags_go_anywhere_and_double_dash_ends_them() {
        let args: Vec<String> = ["x", "--format=json", "-r", "db:1", "--", "-y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let parsed = parse(&args, &[FORMAT, RELATION]).ok().expect("parses");
        assert_eq!(parsed.positional, ["x", "-y"]);
        assert_eq!(parsed.flag("r"), Some("db:1"));
        assert_eq!(parsed.flag("format"), Some("json"));
        assert!(
            matches!(parse(&["-x".to_owned()], &[]), Err(Fail(2, m)) if m == "flag provided but not defined: -x")
        );
    }
}
