//! The real hook-tool client: runs Juju's hook tools as subprocesses (or over another
//! [`ToolTransport`]).
//!
//! The argv of each call is the one the Python ops library uses (`--format=json` wherever the
//! tool has it, `--` before free text, `relation-set --file -` with JSON on stdin, secret content
//! through `key#file=<path>` so values never appear in argv), and the output is parsed as Juju
//! prints it, quirks included (a missing value is `null`, `secret-ids` may print `null`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{HookToolError, ToolResult};
use super::tools::{Databag, DatabagChanges, HookTools, NewSecret, SecretContent};
use super::types::{
    AppName, Bag, GoalState, LogLevel, NetworkInfo, RelationId, SecretOwner, SecretRead, SecretUri,
    Status, StatusScope, UnitName,
};
use crate::secret::Sensitive;

/// What one tool call printed and returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolReply {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// How a tool call reaches the unit agent: a process per call, as Juju runs its tools
/// ([`ToolProcesses`]), or another transport (the simulator's, in-process, in tests).
pub trait ToolTransport: Send + Sync {
    fn call(
        &self,
        tool: &'static str,
        args: &[OsString],
        stdin: Option<&[u8]>,
    ) -> ToolResult<ToolReply>;
}

/// Runs the hook tools as processes: from PATH (Juju puts its tools directory first), or from
/// a given directory.
#[derive(Debug, Clone, Default)]
pub struct ToolProcesses {
    tools_dir: Option<PathBuf>,
}

impl ToolTransport for ToolProcesses {
    fn call(
        &self,
        tool: &'static str,
        args: &[OsString],
        stdin: Option<&[u8]>,
    ) -> ToolResult<ToolReply> {
        let program = match &self.tools_dir {
            Some(dir) => dir.join(tool),
            None => PathBuf::from(tool),
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|source| HookToolError::Spawn { tool, source })?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A tool that exits early closes the pipe; its exit status then tells what went wrong.
            let _ = pipe.write_all(input);
        }
        let output = child
            .wait_with_output()
            .map_err(|source| HookToolError::Spawn { tool, source })?;
        Ok(ToolReply {
            // A tool killed by a signal has no exit code; report it as -1.
            code: output.status.code().unwrap_or(-1),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// The hook tools, called with the argv ops uses and their output parsed as Juju prints it,
/// over a [`ToolTransport`] (processes unless told otherwise).
pub struct ProcessHookTools {
    transport: Box<dyn ToolTransport>,
}

impl Default for ProcessHookTools {
    fn default() -> Self {
        ProcessHookTools::new()
    }
}

impl ProcessHookTools {
    /// The tools on PATH.
    pub fn new() -> ProcessHookTools {
        ProcessHookTools::over(ToolProcesses::default())
    }

    /// Runs the tools from `dir` rather than PATH.
    pub fn in_dir(dir: impl Into<PathBuf>) -> ProcessHookTools {
        ProcessHookTools::over(ToolProcesses {
            tools_dir: Some(dir.into()),
        })
    }

    /// The tools over another transport.
    pub fn over(transport: impl ToolTransport + 'static) -> ProcessHookTools {
        ProcessHookTools {
            transport: Box::new(transport),
        }
    }

    /// Runs one tool and returns its stdout; a non-zero exit is [`HookToolError::Failed`].
    fn run(
        &self,
        tool: &'static str,
        args: &[OsString],
        stdin: Option<&[u8]>,
    ) -> ToolResult<String> {
        let reply = self.transport.call(tool, args, stdin)?;
        if reply.code != 0 {
            return Err(HookToolError::Failed {
                tool,
                code: reply.code,
                stderr: reply.stderr.trim().to_owned(),
            });
        }
        String::from_utf8(reply.stdout).map_err(|_| HookToolError::Parse {
            tool,
            detail: "output is not UTF-8".to_owned(),
        })
    }

    fn run_json<T: DeserializeOwned>(
        &self,
        tool: &'static str,
        args: &[OsString],
    ) -> ToolResult<T> {
        let out = self.run(tool, args, None)?;
        parse_json(tool, &out)
    }
}

fn args<const N: usize>(items: [&str; N]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

fn parse_json<T: DeserializeOwned>(tool: &'static str, out: &str) -> ToolResult<T> {
    serde_json::from_str(out.trim()).map_err(|e| HookToolError::Parse {
        tool,
        detail: format!("{e} in {:?}", truncate(out)),
    })
}

/// The longest message sent as one argument (status-set, juju-log, action-fail): Linux refuses
/// an argument over 128 KiB (MAX_ARG_STRLEN), which would fail the tool and the hook with it.
pub const MAX_MESSAGE: usize = 16 * 1024;

/// `message`, cut at [`MAX_MESSAGE`] bytes (on a character boundary) with a mark that it was.
pub fn one_argument(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_MESSAGE {
        return message.into();
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [cut at {MAX_MESSAGE} bytes]", &message[..end]).into()
}

fn truncate(text: &str) -> String {
    text.chars().take(200).collect()
}

/// `null` (a missing value, or Go's nil slice) becomes the empty default.
fn or_default<T: Default>(value: Option<T>) -> T {
    value.unwrap_or_default()
}

fn parse_list<T>(
    tool: &'static str,
    items: Vec<String>,
    parse: impl Fn(&str) -> Option<T>,
) -> ToolResult<Vec<T>> {
    items
        .iter()
        .map(|item| {
            parse(item).ok_or_else(|| HookToolError::Parse {
                tool,
                detail: format!("unexpected entry {item:?}"),
            })
        })
        .collect()
}

fn key_values(
    tool: &'static str,
    changes: impl IntoIterator<Item = (String, String)>,
) -> ToolResult<Vec<OsString>> {
    changes
        .into_iter()
        .map(|(key, value)| {
            if key.is_empty() || key.contains('=') {
                Err(HookToolError::Invalid {
                    tool,
                    detail: format!("invalid key {key:?}"),
                })
            } else {
                Ok(OsString::from(format!("{key}={value}")))
            }
        })
        .collect()
}

fn level_name(level: LogLevel) -> &'static str {
    level.as_str()
}

/// Secret content keys Juju accepts: `^[a-z](-?[a-z0-9]){2,}$`.
pub fn is_valid_secret_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    let Some((first, rest)) = bytes.split_first() else {
        return false;
    };
    let mut groups = 0;
    let mut i = 0;
    while i < rest.len() {
        if rest[i] == b'-' {
            i += 1;
        }
        match rest.get(i) {
            Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => groups += 1,
            _ => return false,
        }
        i += 1;
    }
    first.is_ascii_lowercase() && groups >= 2
}

/// A private directory (0700) holding secret values in 0600 files, removed when dropped, so
/// `secret-add`/`secret-set` read values from files instead of argv (visible in `ps`).
#[derive(Debug)]
struct SecretFiles {
    dir: PathBuf,
}

impl SecretFiles {
    fn write(
        tool: &'static str,
        content: &SecretContent,
    ) -> ToolResult<(SecretFiles, Vec<OsString>)> {
        let io_error = |e: std::io::Error| HookToolError::Invalid {
            tool,
            detail: format!("cannot write secret content to a temporary file: {e}"),
        };
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| HookToolError::Invalid {
            tool,
            detail: format!("no randomness for a temporary file name: {e}"),
        })?;
        let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("keystone-charm-secret-{name}"));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io_error)?;
        let files = SecretFiles { dir };
        let mut argv = Vec::new();
        for (key, value) in content {
            if !is_valid_secret_key(key) {
                return Err(HookToolError::Invalid {
                    tool,
                    detail: format!("secret key {key:?} must match ^[a-z](-?[a-z0-9]){{2,}}$"),
                });
            }
            let path = files.dir.join(key);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io_error)?;
            file.write_all(value.expose().as_bytes())
                .map_err(io_error)?;
            let mut arg = OsString::from(format!("{key}#file="));
            arg.push(path.as_os_str());
            argv.push(arg);
        }
        Ok((files, argv))
    }

    #[cfg(test)]
    fn path(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl HookTools for ProcessHookTools {
    fn config_get(&self) -> ToolResult<Map<String, Value>> {
        let map: Option<Map<String, Value>> =
            self.run_json("config-get", &args(["--format=json"]))?;
        Ok(or_default(map))
    }

    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>> {
        let tool = "relation-ids";
        let ids: Option<Vec<String>> = self.run_json(tool, &args(["--format=json", endpoint]))?;
        parse_list(tool, or_default(ids), RelationId::parse)
    }

    fn relation_list(&self, relation: &RelationId) -> ToolResult<Vec<UnitName>> {
        let tool = "relation-list";
        let units: Option<Vec<String>> =
            self.run_json(tool, &args(["--format=json", "-r", relation.as_str()]))?;
        parse_list(tool, or_default(units), UnitName::parse)
    }

    fn relation_remote_app(&self, relation: &RelationId) -> ToolResult<Option<AppName>> {
        let tool = "relation-list";
        // Juju prints the application name as a JSON string, or nothing useful when unknown.
        let app: Option<String> = self.run_json(
            tool,
            &args(["--format=json", "-r", relation.as_str(), "--app"]),
        )?;
        match app.filter(|a| !a.is_empty()) {
            None => Ok(None),
            Some(name) => AppName::parse(&name)
                .map(Some)
                .ok_or_else(|| HookToolError::Parse {
                    tool,
                    detail: format!("unexpected application name {name:?}"),
                }),
        }
    }

    fn relation_get(&self, relation: &RelationId, bag: &Bag) -> ToolResult<Databag> {
        let mut argv = args(["--format=json", "-r", relation.as_str()]);
        let target = match bag {
            Bag::Unit(unit) => unit.as_str(),
            Bag::App(app) => {
                argv.push("--app".into());
                app.as_str()
            }
        };
        argv.extend(args(["-", target]));
        let data: Option<Databag> = self.run_json("relation-get", &argv)?;
        Ok(or_default(data))
    }

    fn relation_set(
        &self,
        relation: &RelationId,
        app: bool,
        changes: &DatabagChanges,
    ) -> ToolResult<()> {
        let mut argv = args(["-r", relation.as_str()]);
        if app {
            argv.push("--app".into());
        }
        argv.extend(args(["--file", "-"]));
        // Juju deletes a key set to the empty string.
        let body: BTreeMap<&str, &str> = changes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or("")))
            .collect();
        let json = serde_json::to_vec(&body).map_err(|e| HookToolError::Invalid {
            tool: "relation-set",
            detail: e.to_string(),
        })?;
        self.run("relation-set", &argv, Some(&json)).map(drop)
    }

    fn is_leader(&self) -> ToolResult<bool> {
        self.run_json("is-leader", &args(["--format=json"]))
    }

    fn leader_get(&self) -> ToolResult<Databag> {
        let data: Option<Databag> = self.run_json("leader-get", &args(["--format=json", "-"]))?;
        Ok(or_default(data))
    }

    fn status_set(&self, scope: StatusScope, status: &Status) -> ToolResult<()> {
        let mut argv = Vec::new();
        if scope == StatusScope::Application {
            argv.push(OsString::from("--application"));
        }
        argv.extend(args([
            status.kind.as_str(),
            "--",
            &one_argument(&status.message),
        ]));
        self.run("status-set", &argv, None).map(drop)
    }

    fn resource_get(&self, name: &str) -> ToolResult<Option<Vec<u8>>> {
        let tool = "resource-get";
        let path = match self.run(tool, &args([name]), None) {
            Ok(path) => path,
            Err(HookToolError::Failed { stderr, .. }) if stderr.contains("not found") => {
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        std::fs::read(path.trim())
            .map(Some)
            .map_err(|e| HookToolError::Parse {
                tool,
                detail: format!("cannot read {}: {e}", path.trim()),
            })
    }

    fn application_version_set(&self, version: &str) -> ToolResult<()> {
        self.run("application-version-set", &args(["--", version]), None)
            .map(drop)
    }

    fn juju_log(&self, level: LogLevel, message: &str) -> ToolResult<()> {
        self.run(
            "juju-log",
            &args([
                "--log-level",
                level_name(level),
                "--",
                &one_argument(message),
            ]),
            None,
        )
        .map(drop)
    }

    fn action_get(&self) -> ToolResult<Map<String, Value>> {
        let params: Option<Map<String, Value>> =
            self.run_json("action-get", &args(["--format=json"]))?;
        Ok(or_default(params))
    }

    fn action_set(&self, results: &BTreeMap<String, String>) -> ToolResult<()> {
        if results.is_empty() {
            return Ok(());
        }
        let argv = key_values(
            "action-set",
            results.iter().map(|(k, v)| (k.clone(), v.clone())),
        )?;
        self.run("action-set", &argv, None).map(drop)
    }

    fn action_fail(&self, message: &str) -> ToolResult<()> {
        self.run("action-fail", &args(["--", &one_argument(message)]), None)
            .map(drop)
    }

    fn network_get(&self, binding: &str) -> ToolResult<NetworkInfo> {
        self.run_json("network-get", &args(["--format=json", binding]))
    }

    fn goal_state(&self) -> ToolResult<GoalState> {
        self.run_json("goal-state", &args(["--format=json"]))
    }

    fn secret_add(&self, content: &SecretContent, options: &NewSecret) -> ToolResult<SecretUri> {
        let tool = "secret-add";
        if content.is_empty() {
            return Err(HookToolError::Invalid {
                tool,
                detail: "a secret needs at least one key".to_owned(),
            });
        }
        let owner = match options.owner {
            SecretOwner::Application => "application",
            SecretOwner::Unit => "unit",
        };
        let mut argv = args(["--owner", owner]);
        if let Some(label) = &options.label {
            argv.extend(args(["--label", label]));
        }
        if let Some(description) = &options.description {
            argv.extend(args(["--description", description]));
        }
        let (_files, content_args) = SecretFiles::write(tool, content)?;
        argv.extend(content_args);
        let out = self.run(tool, &argv, None)?;
        let uri = out.trim();
        SecretUri::parse(uri).ok_or_else(|| HookToolError::Parse {
            tool,
            detail: format!("expected a secret URI, got {:?}", truncate(uri)),
        })
    }

    fn secret_get(&self, uri: &SecretUri, read: SecretRead) -> ToolResult<SecretContent> {
        let mut argv = args(["--format=json", uri.as_str()]);
        match read {
            SecretRead::Tracked => {}
            SecretRead::Peek => argv.push("--peek".into()),
            SecretRead::Refresh => argv.push("--refresh".into()),
        }
        let content: Option<BTreeMap<String, String>> = self.run_json("secret-get", &argv)?;
        Ok(or_default(content)
            .into_iter()
            .map(|(k, v)| (k, Sensitive::new(v)))
            .collect())
    }

    fn secret_grant(&self, uri: &SecretUri, relation: &RelationId) -> ToolResult<()> {
        self.run(
            "secret-grant",
            &args([uri.as_str(), "-r", relation.as_str()]),
            None,
        )
        .map(drop)
    }

    fn secret_remove(&self, uri: &SecretUri) -> ToolResult<()> {
        self.run("secret-remove", &args([uri.as_str()]), None)
            .map(drop)
    }

    fn secret_set(&self, uri: &SecretUri, content: &SecretContent) -> ToolResult<()> {
        let tool = "secret-set";
        let (_files, content_args) = SecretFiles::write(tool, content)?;
        let mut argv = args([uri.as_str()]);
        argv.extend(content_args);
        self.run(tool, &argv, None).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sim;
    use serde_json::json;

    const UNIT: &str = "keystone/0";

    /// The argv of every tool call of `unit`'s last hook.
    fn calls(sim: &Sim, unit: &str) -> Vec<String> {
        sim.model
            .hook_log()
            .iter()
            .rev()
            .find(|run| run.unit == unit)
            .map(|run| run.tool_calls.clone())
            .unwrap_or_default()
    }

    /// A megabyte status or action-fail message failed the tool (Linux refuses an argument over
    /// 128 KiB) and the hook with it: every message is cut to one argument Linux takes.
    #[test]
    fn regression_a_megabyte_message_is_cut_to_one_argument() {
        let mut sim = Sim::keystone(1, json!({}));
        sim.settle();
        let huge = format!("ha: vip_iface {} is not usable", "é".repeat(1 << 19));
        assert!(sim.with_hook(UNIT, "update-status", move |_, _, tools| {
            let status = Status::blocked(huge.clone());
            tools.status_set(StatusScope::Unit, &status).is_ok()
                && tools.juju_log(LogLevel::Error, &huge).is_ok()
        }));
        let set = calls(&sim, UNIT)
            .into_iter()
            .find(|c| c.starts_with("status-set"))
            .unwrap();
        assert!(set.len() <= MAX_MESSAGE + 64, "{} bytes", set.len());
        assert!(set.starts_with("status-set blocked -- ha: vip_iface éé"));
        assert!(
            set.ends_with(&format!("é [cut at {MAX_MESSAGE} bytes]")),
            "{}",
            &set[set.len() - 40..]
        );
    }

    #[test]
    fn config_get_uses_json_and_keeps_types() {
        let mut sim = Sim::keystone(1, json!({"debug": true}));
        sim.settle();
        assert!(sim.with_hook(UNIT, "config-changed", |_, _, tools| {
            let config = tools.config_get().unwrap();
            config["debug"] == Value::Bool(true) && config["token-expiration"] == 3600
        }));
        assert_eq!(calls(&sim, UNIT), ["config-get --format=json"]);
    }

    #[test]
    fn relation_reads_use_the_ops_argv() {
        let (mut sim, rel) = Sim::keystone_and_nova();
        let id = rel.as_str().to_owned();
        assert!(sim.with_hook(UNIT, "config-changed", move |_, _, tools| {
            assert_eq!(
                tools.relation_ids("identity-service").unwrap(),
                std::slice::from_ref(&rel)
            );
            let units = tools.relation_list(&rel).unwrap();
            assert_eq!(units, [UnitName::parse("nova/0").unwrap()]);
            let app = Bag::App(crate::juju::AppName::parse("nova").unwrap());
            tools.relation_get(&rel, &app).unwrap();
            let unit = Bag::Unit(units[0].clone());
            !tools.relation_get(&rel, &unit).unwrap().is_empty()
        }));
        assert_eq!(
            calls(&sim, UNIT),
            [
                "relation-ids --format=json identity-service".to_owned(),
                format!("relation-list --format=json -r {id}"),
                format!("relation-get --format=json -r {id} --app - nova"),
                format!("relation-get --format=json -r {id} - nova/0"),
            ]
        );
    }

    #[test]
    fn relation_set_sends_json_on_stdin_with_empty_deleting() {
        let (mut sim, rel) = Sim::keystone_and_nova();
        let id = rel.as_str().to_owned();
        let number: u32 = id.rsplit(':').next().unwrap().parse().unwrap();
        assert!(sim.with_hook(UNIT, "config-changed", move |_, _, tools| {
            let set = |changes: &[(&str, Option<&str>)]| {
                let changes: DatabagChanges = changes
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                    .collect();
                tools.relation_set(&rel, true, &changes).unwrap();
            };
            set(&[("admin_token", Some("x")), ("service_port", Some("5000"))]);
            set(&[("admin_token", None)]);
            true
        }));
        assert_eq!(
            calls(&sim, UNIT),
            [
                format!("relation-set -r {id} --app --file -"),
                format!("relation-set -r {id} --app --file -"),
            ]
        );
        let bag = sim.model.relation_data(number, "keystone");
        assert_eq!(bag.get("service_port").map(String::as_str), Some("5000"));
        assert!(!bag.contains_key("admin_token"), "{bag:?}");
    }

    #[test]
    fn failures_carry_tool_exit_code_and_stderr() {
        let (mut sim, rel) = Sim::keystone_and_nova();
        assert!(
            sim.with_hook("keystone/1", "config-changed", move |_, _, tools| {
                let err = tools
                    .relation_set(
                        &rel,
                        true,
                        &DatabagChanges::from([("a".into(), Some("1".into()))]),
                    )
                    .unwrap_err();
                assert!(err.is_permission_denied(), "{err}");
                matches!(&err, HookToolError::Failed { tool: "relation-set", code: 1, stderr }
                if stderr.starts_with("ERROR "))
            })
        );

        let missing = ProcessHookTools::in_dir("/nonexistent-tools-dir")
            .is_leader()
            .unwrap_err();
        assert!(matches!(
            missing,
            HookToolError::Spawn {
                tool: "is-leader",
                ..
            }
        ));
        // A process's exit code and stderr come back as they were.
        let reply = ToolProcesses {
            tools_dir: Some(PathBuf::from("/bin")),
        }
        .call("false", &[], None)
        .unwrap();
        assert_eq!((reply.code, reply.stdout.len()), (1, 0));
    }

    #[test]
    fn free_text_follows_a_double_dash() {
        let (mut sim, _) = Sim::keystone_and_nova();
        assert!(sim.with_hook(UNIT, "config-changed", |_, _, tools| {
            tools
                .juju_log(LogLevel::Warning, "-starts with a dash")
                .unwrap();
            tools
                .status_set(
                    StatusScope::Application,
                    &Status::blocked("Missing relations: database"),
                )
                .unwrap();
            tools
                .status_set(StatusScope::Unit, &Status::active("Unit is ready"))
                .unwrap();
            tools.application_version_set("-1.0").unwrap();
            true
        }));
        assert_eq!(
            calls(&sim, UNIT),
            [
                "juju-log --log-level WARNING -- -starts with a dash",
                "status-set --application blocked -- Missing relations: database",
                "status-set active -- Unit is ready",
                "application-version-set -- -1.0",
            ]
        );
        assert_eq!(sim.model.world().apps["keystone"].version, "-1.0");
        assert_eq!(
            sim.logs(UNIT, "WARNING").last().map(String::as_str),
            Some("-starts with a dash")
        );
    }

    #[test]
    fn leadership_network_and_goal_state() {
        let (mut sim, _) = Sim::keystone_and_nova();
        let address = sim.model.unit_address(UNIT).unwrap();
        assert!(sim.with_hook(UNIT, "config-changed", move |_, _, tools| {
            assert!(tools.is_leader().unwrap());
            tools.leader_get().unwrap();
            let network = tools.network_get("shared-db").unwrap();
            let goal = tools.goal_state().unwrap();
            network.ingress_address() == Some(address.as_str())
                && goal.expected_units().contains(&UNIT)
        }));
        assert_eq!(
            calls(&sim, UNIT),
            [
                "is-leader --format=json",
                "leader-get --format=json -",
                "network-get --format=json shared-db",
                "goal-state --format=json",
            ]
        );
    }

    #[test]
    fn secret_values_go_through_private_files_never_argv() {
        let (mut sim, _) = Sim::keystone_and_nova();
        assert!(sim.with_hook(UNIT, "config-changed", |_, _, tools| {
            let content: SecretContent =
                [("fernet-0".to_owned(), Sensitive::new("hunter2".to_owned()))].into();
            let options = NewSecret {
                owner: SecretOwner::Application,
                label: Some("fernet-keys".to_owned()),
                description: None,
            };
            let uri = tools.secret_add(&content, &options).unwrap();
            let read = tools.secret_get(&uri, SecretRead::Peek).unwrap();
            read["fernet-0"].expose() == "hunter2"
        }));
        let calls = calls(&sim, UNIT);
        assert!(
            calls[0]
                .starts_with("secret-add --owner application --label fernet-keys fernet-0#file="),
            "{calls:?}"
        );
        assert!(!format!("{calls:?}").contains("hunter2"));
        // The temporary file the value went through is gone.
        let file = calls[0].rsplit("#file=").next().unwrap();
        assert!(
            !std::path::Path::new(file).exists(),
            "temporary secret file {file} was not removed"
        );
        assert!(
            calls[1].starts_with("secret-get --format=json secret:"),
            "{calls:?}"
        );
        assert!(calls[1].ends_with(" --peek"), "{calls:?}");
    }

    #[test]
    fn bad_secret_keys_are_refused_before_running_anything() {
        let content: SecretContent = [("0".to_owned(), Sensitive::new("x".to_owned()))].into();
        let err = SecretFiles::write("secret-set", &content).unwrap_err();
        assert!(matches!(err, HookToolError::Invalid { .. }), "{err}");
        for good in ["fernet-0", "abc", "a-b-c", "key1"] {
            assert!(is_valid_secret_key(good), "{good}");
        }
        for bad in ["ab", "0ab", "a--b", "abc-", "Abc", "a_bc", ""] {
            assert!(!is_valid_secret_key(bad), "{bad}");
        }
    }

    #[test]
    fn secret_files_are_removed_on_drop_and_private_while_they_live() {
        use std::os::unix::fs::PermissionsExt;
        let content: SecretContent =
            [("password".to_owned(), Sensitive::new("x".to_owned()))].into();
        let (files, _) = SecretFiles::write("secret-set", &content).unwrap();
        let dir = files.path().to_owned();
        let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("password")), 0o600);
        drop(files);
        assert!(!dir.exists());
    }
}
