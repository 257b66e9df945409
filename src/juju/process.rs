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
    AppName, Bag, LogLevel, NetworkInfo, Port, Protocol, RelationId, SecretOwner, SecretRead,
    SecretUri, Status, StatusScope, UnitName,
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

fn parse_port(text: &str) -> Option<Port> {
    let (number, protocol) = text.split_once('/')?;
    let protocol = match protocol {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some(Port {
        number: number.parse().ok()?,
        protocol,
    })
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

    fn leader_set(&self, changes: &DatabagChanges) -> ToolResult<()> {
        // leader-set has no --file, so values go in argv as key=value (empty deletes) and are
        // briefly visible in the process list: keep secrets in Juju secrets, not here. It also
        // refuses to run without arguments.
        if changes.is_empty() {
            return Ok(());
        }
        let argv = key_values(
            "leader-set",
            changes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())),
        )?;
        self.run("leader-set", &argv, None).map(drop)
    }

    fn status_set(&self, scope: StatusScope, status: &Status) -> ToolResult<()> {
        let mut argv = Vec::new();
        if scope == StatusScope::Application {
            argv.push(OsString::from("--application"));
        }
        argv.extend(args([status.kind.as_str(), "--", &status.message]));
        self.run("status-set", &argv, None).map(drop)
    }

    fn application_version_set(&self, version: &str) -> ToolResult<()> {
        self.run("application-version-set", &args(["--", version]), None)
            .map(drop)
    }

    fn juju_log(&self, level: LogLevel, message: &str) -> ToolResult<()> {
        self.run(
            "juju-log",
            &args(["--log-level", level_name(level), "--", message]),
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
        self.run("action-fail", &args(["--", message]), None)
            .map(drop)
    }

    fn action_log(&self, message: &str) -> ToolResult<()> {
        self.run("action-log", &args(["--", message]), None)
            .map(drop)
    }

    fn open_port(&self, port: Port) -> ToolResult<()> {
        self.run("open-port", &args([&port.to_string()]), None)
            .map(drop)
    }

    fn close_port(&self, port: Port) -> ToolResult<()> {
        self.run("close-port", &args([&port.to_string()]), None)
            .map(drop)
    }

    fn opened_ports(&self) -> ToolResult<Vec<Port>> {
        let ports: Option<Vec<String>> = self.run_json("opened-ports", &args(["--format=json"]))?;
        // Ranges and icmp are never opened by this charm; they are left out rather than refused.
        Ok(or_default(ports)
            .iter()
            .filter_map(|p| parse_port(p))
            .collect())
    }

    fn network_get(&self, binding: &str) -> ToolResult<NetworkInfo> {
        self.run_json("network-get", &args(["--format=json", binding]))
    }

    fn unit_get(&self, key: &str) -> ToolResult<String> {
        let value: Option<String> = self.run_json("unit-get", &args(["--format=json", key]))?;
        value.ok_or_else(|| HookToolError::Parse {
            tool: "unit-get",
            detail: format!("no value for {key}"),
        })
    }

    fn goal_state(&self) -> ToolResult<Value> {
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

    fn secret_set(&self, uri: &SecretUri, content: &SecretContent) -> ToolResult<()> {
        let tool = "secret-set";
        let (_files, content_args) = SecretFiles::write(tool, content)?;
        let mut argv = args([uri.as_str()]);
        argv.extend(content_args);
        self.run(tool, &argv, None).map(drop)
    }

    fn secret_grant(
        &self,
        uri: &SecretUri,
        relation: &RelationId,
        unit: Option<&UnitName>,
    ) -> ToolResult<()> {
        let mut argv = args([uri.as_str(), "-r", relation.as_str()]);
        if let Some(unit) = unit {
            argv.extend(args(["--unit", unit.as_str()]));
        }
        self.run("secret-grant", &argv, None).map(drop)
    }

    fn secret_ids(&self) -> ToolResult<Vec<SecretUri>> {
        let tool = "secret-ids";
        // A unit owning no secrets gets `null` (Go's nil slice), not `[]`.
        let ids: Option<Vec<String>> = self.run_json(tool, &args(["--format=json"]))?;
        parse_list(tool, or_default(ids), SecretUri::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// A directory of fake tools, each printing a fixed output and recording its argv and stdin.
    struct FakeTools {
        dir: PathBuf,
    }

    impl FakeTools {
        fn new(name: &str) -> FakeTools {
            let dir =
                std::env::temp_dir().join(format!("kc-process-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            FakeTools { dir }
        }

        /// A tool that records its argv (one per line) and stdin, then prints `out` and exits `code`.
        fn tool(&self, name: &str, out: &str, err: &str, code: i32) -> &Self {
            let log = self.dir.join("argv");
            let stdin = self.dir.join(format!("{name}.stdin"));
            let script = format!(
                "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '{log}'; done\n\
                 for a in \"$@\"; do case \"$a\" in *'#file='*) cat \"${{a#*#file=}}\" >> '{log}'; \
                 printf '\\n' >> '{log}'; ls -l \"${{a#*#file=}}\" | cut -c1-10 >> '{log}';; esac; done\n\
                 [ -t 0 ] || cat > '{stdin}'\nprintf '%s' '{out}'\nprintf '%s' '{err}' >&2\nexit {code}\n",
                log = log.display(),
                stdin = stdin.display(),
            );
            let path = self.dir.join(name);
            fs::write(&path, script).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
            self
        }

        fn tools(&self) -> ProcessHookTools {
            ProcessHookTools::in_dir(&self.dir)
        }

        fn argv(&self) -> Vec<String> {
            fs::read_to_string(self.dir.join("argv"))
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect()
        }

        fn stdin(&self, name: &str) -> String {
            fs::read_to_string(self.dir.join(format!("{name}.stdin"))).unwrap_or_default()
        }
    }

    impl Drop for FakeTools {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn rel(id: &str) -> RelationId {
        RelationId::parse(id).unwrap()
    }

    #[test]
    fn config_get_uses_json_and_keeps_types() {
        let fake = FakeTools::new("config");
        fake.tool(
            "config-get",
            r#"{"debug":true,"region":"RegionOne","token-expiration":3600}"#,
            "",
            0,
        );
        let config = fake.tools().config_get().unwrap();
        assert_eq!(fake.argv(), ["--format=json"]);
        assert_eq!(config["debug"], Value::Bool(true));
        assert_eq!(config["token-expiration"], Value::from(3600));
    }

    #[test]
    fn relation_reads_use_the_ops_argv_and_accept_juju_quirks() {
        let fake = FakeTools::new("relreads");
        fake.tool(
            "relation-ids",
            "[\"shared-db:10\",\"shared-db:2\"]\n",
            "",
            0,
        );
        let ids = fake.tools().relation_ids("shared-db").unwrap();
        assert_eq!(ids, [rel("shared-db:10"), rel("shared-db:2")]);
        assert_eq!(fake.argv(), ["--format=json", "shared-db"]);

        let fake = FakeTools::new("relapp");
        fake.tool("relation-list", "\"mysql\"\n", "", 0);
        let app = fake
            .tools()
            .relation_remote_app(&rel("shared-db:2"))
            .unwrap();
        assert_eq!(app.unwrap().as_str(), "mysql");
        assert_eq!(fake.argv(), ["--format=json", "-r", "shared-db:2", "--app"]);

        let fake = FakeTools::new("relget");
        fake.tool(
            "relation-get",
            "{\"db_host\":\"10.0.0.5\",\"password\":\"12345\"}\n",
            "",
            0,
        );
        let bag = Bag::App(AppName::parse("mysql").unwrap());
        let data = fake
            .tools()
            .relation_get(&rel("shared-db:2"), &bag)
            .unwrap();
        assert_eq!(data["password"], "12345");
        assert_eq!(
            fake.argv(),
            ["--format=json", "-r", "shared-db:2", "--app", "-", "mysql"]
        );

        let fake = FakeTools::new("relnull");
        fake.tool("relation-get", "null\n", "", 0)
            .tool("relation-list", "[]\n", "", 0);
        let unit = Bag::Unit(UnitName::parse("mysql/0").unwrap());
        assert!(
            fake.tools()
                .relation_get(&rel("shared-db:2"), &unit)
                .unwrap()
                .is_empty()
        );
        assert!(
            fake.tools()
                .relation_list(&rel("shared-db:2"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn relation_set_sends_json_on_stdin_with_empty_deleting() {
        let fake = FakeTools::new("relset");
        fake.tool("relation-set", "", "", 0);
        let changes: DatabagChanges = [
            ("admin_token".to_owned(), None),
            ("service_port".to_owned(), Some("5000".to_owned())),
        ]
        .into();
        fake.tools()
            .relation_set(&rel("identity-service:4"), true, &changes)
            .unwrap();
        assert_eq!(
            fake.argv(),
            ["-r", "identity-service:4", "--app", "--file", "-"]
        );
        assert_eq!(
            fake.stdin("relation-set"),
            r#"{"admin_token":"","service_port":"5000"}"#
        );
    }

    #[test]
    fn failures_carry_tool_exit_code_and_stderr() {
        let fake = FakeTools::new("fail");
        fake.tool(
            "relation-set",
            "",
            "ERROR cannot write relation settings\n",
            1,
        );
        let err = fake
            .tools()
            .relation_set(&rel("cluster:1"), true, &DatabagChanges::new())
            .unwrap_err();
        match &err {
            HookToolError::Failed { tool, code, stderr } => {
                assert_eq!(
                    (*tool, *code, stderr.as_str()),
                    ("relation-set", 1, "ERROR cannot write relation settings")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.is_permission_denied());

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
    }

    #[test]
    fn free_text_follows_a_double_dash() {
        let fake = FakeTools::new("text");
        fake.tool("juju-log", "", "", 0)
            .tool("status-set", "", "", 0)
            .tool("application-version-set", "", "", 0)
            .tool("action-fail", "", "", 0)
            .tool("action-log", "", "", 0);
        let tools = fake.tools();
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
        tools.action_fail("no").unwrap();
        tools.action_log("working").unwrap();
        assert_eq!(
            fake.argv(),
            [
                "--log-level",
                "WARNING",
                "--",
                "-starts with a dash",
                "--application",
                "blocked",
                "--",
                "Missing relations: database",
                "active",
                "--",
                "Unit is ready",
                "--",
                "-1.0",
                "--",
                "no",
                "--",
                "working",
            ]
        );
    }

    #[test]
    fn leader_and_action_tools() {
        let fake = FakeTools::new("leader");
        fake.tool("is-leader", "true\n", "", 0)
            .tool("leader-get", "{\"db-initialised\":\"True\"}\n", "", 0)
            .tool("leader-set", "", "", 0)
            .tool("action-get", "{}\n", "", 0)
            .tool("action-set", "", "", 0);
        let tools = fake.tools();
        assert!(tools.is_leader().unwrap());
        assert_eq!(tools.leader_get().unwrap()["db-initialised"], "True");
        tools
            .leader_set(
                &[
                    ("a".to_owned(), Some("1".to_owned())),
                    ("b".to_owned(), None),
                ]
                .into(),
            )
            .unwrap();
        assert!(tools.action_get().unwrap().is_empty());
        tools
            .action_set(&[("admin-password".to_owned(), "x y".to_owned())].into())
            .unwrap();
        assert_eq!(
            fake.argv(),
            [
                "--format=json",
                "--format=json",
                "-",
                "a=1",
                "b=",
                "--format=json",
                "admin-password=x y"
            ]
        );
    }

    #[test]
    fn ports_network_and_goal_state() {
        let fake = FakeTools::new("ports");
        fake.tool("opened-ports", "[\"5000/tcp\",\"8000-8080/tcp\",\"icmp\"]\n", "", 0)
            .tool("open-port", "", "", 0)
            .tool(
                "network-get",
                r#"{"bind-addresses":[{"mac-address":"","interface-name":"eth0","addresses":[{"hostname":"","value":"10.0.0.7","cidr":"10.0.0.0/24"}]}],"egress-subnets":["10.0.0.7/32"],"ingress-addresses":["10.0.0.7"]}"#,
                "",
                0,
            )
            .tool("unit-get", "\"10.0.0.7\"\n", "", 0)
            .tool("goal-state", r#"{"units":{"keystone/0":{"status":"active"}},"relations":{}}"#, "", 0);
        let tools = fake.tools();
        assert_eq!(tools.opened_ports().unwrap(), [Port::tcp(5000)]);
        tools.open_port(Port::tcp(35357)).unwrap();
        assert_eq!(
            tools.network_get("public").unwrap().ingress_address(),
            Some("10.0.0.7")
        );
        assert_eq!(tools.unit_get("private-address").unwrap(), "10.0.0.7");
        assert_eq!(
            tools.goal_state().unwrap()["units"]["keystone/0"]["status"],
            "active"
        );
        assert_eq!(
            fake.argv(),
            [
                "--format=json",
                "35357/tcp",
                "--format=json",
                "public",
                "--format=json",
                "private-address",
                "--format=json"
            ]
        );
    }

    #[test]
    fn secret_values_go_through_private_files_never_argv() {
        let fake = FakeTools::new("secrets");
        fake.tool("secret-add", "secret:cs0b1p7mp25c77b1mq1g\n", "", 0)
            .tool("secret-ids", "null\n", "", 0)
            .tool("secret-get", "{\"fernet-0\":\"a2V5\"}\n", "", 0);
        let tools = fake.tools();
        let content: SecretContent =
            [("fernet-0".to_owned(), Sensitive::new("hunter2".to_owned()))].into();
        let options = NewSecret {
            owner: SecretOwner::Application,
            label: Some("fernet-keys".to_owned()),
            description: None,
        };
        let uri = tools.secret_add(&content, &options).unwrap();
        assert_eq!(uri.as_str(), "secret:cs0b1p7mp25c77b1mq1g");
        let argv = fake.argv();
        assert_eq!(
            &argv[..4],
            ["--owner", "application", "--label", "fernet-keys"]
        );
        assert!(argv[4].starts_with("fernet-0#file="), "{argv:?}");
        // The script copied the file's content and mode into the log: the value reached the tool
        // through a 0600 file only.
        assert_eq!(argv[5], "hunter2");
        assert_eq!(argv[6], "-rw-------");
        let file = argv[4].trim_start_matches("fernet-0#file=");
        assert!(
            !Path::new(file).exists(),
            "temporary secret file {file} was not removed"
        );

        assert!(tools.secret_ids().unwrap().is_empty());
        let read = tools.secret_get(&uri, SecretRead::Peek).unwrap();
        assert_eq!(read["fernet-0"].expose(), "a2V5");
        assert_eq!(
            &fake.argv()[7..],
            [
                "--format=json",
                "--format=json",
                "secret:cs0b1p7mp25c77b1mq1g",
                "--peek"
            ]
        );
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
    fn secret_files_are_removed_on_drop() {
        let content: SecretContent =
            [("password".to_owned(), Sensitive::new("x".to_owned()))].into();
        let (files, _) = SecretFiles::write("secret-set", &content).unwrap();
        let dir = files.path().to_owned();
        assert!(dir.join("password").exists());
        drop(files);
        assert!(!dir.exists());
    }
}
