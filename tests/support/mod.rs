//! Runs the built charm binary as Juju runs it, against fake hook tools.
//!
//! [`FakeJuju`] makes a temporary charm directory (the repository's `dispatch`, `bin/` pointing at
//! the built binary, `hooks/<name>` links for Juju without dispatch) and a tools directory of
//! small shell scripts, one per hook tool. Each script appends its argv to a log and prints the
//! answer registered for its exact arguments, or its tool's default answer: what the reference
//! says Juju prints for an empty model, quirks included (`secret-ids` prints `null`).
//! Shared by the integration tests and the benchmark.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Separates fields in the call log and in response keys (ASCII unit separator).
const SEP: char = '\u{1f}';

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The shell script behind every fake tool. `@STATE@` is replaced by the state directory.
const FAKE_TOOL: &str = r#"#!/bin/sh
# Fake Juju hook tool: logs its argv, then answers from the registered responses.
state='@STATE@'
tool=${0##*/}
key=$tool
for a in "$@"; do key="$key$(printf '\037')$a"; done
stdin_note=
prev=
for a in "$@"; do
  if [ "$prev" = --file ] && [ "$a" = - ]; then stdin_note="$(printf '\037')stdin=$(cat)"; fi
  prev=$a
done
printf '%s%s\n' "$key" "$stdin_note" >> "$state/calls"
base="$state/responses/$tool"
if [ -e "$state/responses/$tool.by-args" ]; then
  hash=$(printf '%s' "$key" | sha256sum | cut -c1-64)
  if [ -e "$state/responses/$hash.code" ]; then base="$state/responses/$hash"; fi
fi
if [ ! -e "$base.code" ]; then
  echo "ERROR fake $tool has no response for: $*" >&2
  exit 1
fi
[ -e "$base.out" ] && cat "$base.out"
[ -e "$base.err" ] && cat "$base.err" >&2
exit "$(cat "$base.code")"
"#;

/// One recorded tool call: the tool, its arguments, and stdin for `--file -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub tool: String,
    pub args: Vec<String>,
    pub stdin: Option<String>,
}

impl Call {
    /// The call as a command line, for readable assertions.
    pub fn line(&self) -> String {
        let mut parts = vec![self.tool.clone()];
        parts.extend(self.args.iter().cloned());
        parts.join(" ")
    }
}

/// What the charm writes on its machine: each fake hook sees its own empty copy.
const MACHINE_PATHS: [&str; 4] = ["/etc/keystone", "/etc/apache2", "/var/lib/keystone", "/run"];

/// A fake Juju unit agent for one unit: the charm directory, the tools and the environment.
pub struct FakeJuju {
    root: TempDir,
    pub charm_dir: PathBuf,
    pub tools_dir: PathBuf,
    state_dir: PathBuf,
    pub unit: String,
}

impl FakeJuju {
    /// A unit `keystone/0` running `binary`, with the tools answering as for an empty model and
    /// config-get answering config.yaml's defaults.
    pub fn new(binary: &Path) -> FakeJuju {
        let root = TempDir::new("keystone-charm-fake-juju");
        let charm_dir = root.path().join("charm");
        let tools_dir = root.path().join("tools");
        let state_dir = root.path().join("state");
        for dir in [&charm_dir, &tools_dir, &state_dir.join("responses")] {
            fs::create_dir_all(dir).expect("create fake Juju directories");
        }
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        fs::copy(repo.join("dispatch"), charm_dir.join("dispatch")).expect("copy dispatch");
        fs::copy(repo.join("metadata.yaml"), charm_dir.join("metadata.yaml"))
            .expect("copy metadata.yaml");
        fs::create_dir_all(charm_dir.join("templates")).expect("create templates/");
        for entry in fs::read_dir(repo.join("templates")).expect("list templates/") {
            let path = entry.expect("templates/ entry").path();
            if path.is_file() {
                fs::copy(
                    &path,
                    charm_dir.join("templates").join(path.file_name().unwrap()),
                )
                .expect("copy a template");
            }
        }
        fs::create_dir_all(charm_dir.join("bin")).expect("create bin/");
        symlink(binary, charm_dir.join("bin/keystone-charm")).expect("link the binary");
        fs::create_dir_all(charm_dir.join("hooks")).expect("create hooks/");

        let script = FAKE_TOOL.replace("@STATE@", &state_dir.display().to_string());
        // Every tool the simulator knows: a superset of what the charm calls.
        for tool in juju_sim::tools::TOOL_NAMES {
            let path = tools_dir.join(tool);
            fs::write(&path, &script).expect("write a fake tool");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .expect("chmod a fake tool");
        }
        fs::write(state_dir.join("calls"), "").expect("create the call log");

        let fake = FakeJuju {
            root,
            charm_dir,
            tools_dir,
            state_dir,
            unit: "keystone/0".to_owned(),
        };
        fake.set_defaults();
        fake
    }

    /// What Juju prints for a fresh unit with no relations, secrets or action.
    fn set_defaults(&self) {
        self.set_config(&Map::new());
        self.set_leader(false);
        for tool in ["relation-ids", "relation-list", "opened-ports"] {
            self.default_response(tool, "[]\n");
        }
        for tool in ["relation-get", "leader-get", "action-get"] {
            self.default_response(tool, "{}\n");
        }
        // Go's nil slice: a unit owning no secrets gets null, not [].
        self.default_response("secret-ids", "null\n");
        self.default_response(
            "goal-state",
            "{\"units\":{\"keystone/0\":{\"status\":\"active\",\"since\":\"2026-01-01T00:00:00Z\"}},\"relations\":{}}\n",
        );
        self.default_response("unit-get", "\"10.0.0.10\"\n");
        self.default_response(
            "network-get",
            "{\"bind-addresses\":[{\"mac-address\":\"00:16:3e:00:00:10\",\"interface-name\":\"eth0\",\"addresses\":[{\"hostname\":\"\",\"value\":\"10.0.0.10\",\"cidr\":\"10.0.0.0/24\"}]}],\"egress-subnets\":[\"10.0.0.10/32\"],\"ingress-addresses\":[\"10.0.0.10\"]}\n",
        );
        for tool in [
            "relation-set",
            "leader-set",
            "status-set",
            "application-version-set",
            "juju-log",
            "action-set",
            "action-fail",
            "action-log",
            "open-port",
            "close-port",
            "secret-set",
            "secret-grant",
        ] {
            self.default_response(tool, "");
        }
    }

    fn write_response(&self, base: &str, stdout: &str, stderr: &str, code: i32) {
        let dir = self.state_dir.join("responses");
        fs::write(dir.join(format!("{base}.out")), stdout).expect("write a response");
        fs::write(dir.join(format!("{base}.err")), stderr).expect("write a response");
        fs::write(dir.join(format!("{base}.code")), code.to_string()).expect("write a response");
    }

    /// What `tool` prints for any arguments without a more specific response.
    pub fn default_response(&self, tool: &str, stdout: &str) {
        self.write_response(tool, stdout, "", 0);
    }

    /// What `tool args...` prints (exact arguments), with exit code 0.
    pub fn respond(&self, tool: &str, args: &[&str], stdout: &str) {
        self.respond_full(tool, args, stdout, "", 0);
    }

    /// `tool args...` fails as Juju's tools do: `ERROR <message>` on stderr and exit `code`.
    pub fn respond_error(&self, tool: &str, args: &[&str], code: i32, stderr: &str) {
        self.respond_full(tool, args, "", stderr, code);
    }

    fn respond_full(&self, tool: &str, args: &[&str], stdout: &str, stderr: &str, code: i32) {
        let mut key = tool.to_owned();
        for arg in args {
            key.push(SEP);
            key.push_str(arg);
        }
        let hash: String = Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.write_response(&hash, stdout, stderr, code);
        fs::write(
            self.state_dir
                .join("responses")
                .join(format!("{tool}.by-args")),
            "",
        )
        .expect("mark by-args");
    }

    /// config-get's answer: config.yaml's defaults (options with a null default are left out,
    /// as Juju does) overlaid with `set`. Without a config.yaml the charm has no options.
    pub fn set_config(&self, set: &Map<String, Value>) {
        let mut config = config_defaults();
        config.extend(set.clone());
        let json = serde_json::to_string(&config).expect("config as JSON");
        self.respond("config-get", &["--format=json"], &format!("{json}\n"));
    }

    pub fn set_leader(&self, leader: bool) {
        self.respond(
            "is-leader",
            &["--format=json"],
            if leader { "true\n" } else { "false\n" },
        );
    }

    /// The environment Juju builds for a hook (reference §1.3), from scratch.
    pub fn hook_env(&self, hook: &str) -> BTreeMap<String, String> {
        let charm_dir = self.charm_dir.display().to_string();
        let unit_tag = self.unit.replace('/', "-");
        let mut env: BTreeMap<String, String> = [
            ("JUJU_DISPATCH_PATH", format!("hooks/{hook}")),
            ("JUJU_HOOK_NAME", hook.to_owned()),
            ("JUJU_UNIT_NAME", self.unit.clone()),
            ("JUJU_MODEL_NAME", "openstack".to_owned()),
            (
                "JUJU_MODEL_UUID",
                "2f4e1d6c-8a3b-4c5d-9e0f-1a2b3c4d5e6f".to_owned(),
            ),
            ("JUJU_VERSION", "3.6.1".to_owned()),
            ("JUJU_CHARM_DIR", charm_dir.clone()),
            ("CHARM_DIR", charm_dir),
            (
                "JUJU_CONTEXT_ID",
                format!("{}-{hook}-4242424242", self.unit),
            ),
            (
                "JUJU_AGENT_SOCKET_ADDRESS",
                format!("@/var/lib/juju/agents/unit-{unit_tag}/agent.socket"),
            ),
            ("JUJU_AGENT_SOCKET_NETWORK", "unix".to_owned()),
            ("JUJU_API_ADDRESSES", "10.0.0.2:17070".to_owned()),
            ("JUJU_MACHINE_ID", "0".to_owned()),
            ("JUJU_PRINCIPAL_UNIT", String::new()),
            ("JUJU_AVAILABILITY_ZONE", String::new()),
            ("CLOUD_API_VERSION", String::new()),
            ("JUJU_CHARM_HTTP_PROXY", String::new()),
            ("JUJU_CHARM_HTTPS_PROXY", String::new()),
            ("JUJU_CHARM_FTP_PROXY", String::new()),
            ("JUJU_CHARM_NO_PROXY", String::new()),
            (
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.tools_dir.display()),
            ),
            ("LANG", "C.UTF-8".to_owned()),
            ("TERM", "tmux-256color".to_owned()),
            ("DEBIAN_FRONTEND", "noninteractive".to_owned()),
            ("APT_LISTCHANGES_FRONTEND", "none".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        // Hook tools create files in the temp dir; keep the test's choice of temp dir.
        if let Ok(tmp) = std::env::var("TMPDIR") {
            env.insert("TMPDIR".to_owned(), tmp);
        }
        env
    }

    /// Runs `dispatch` for `hook` as Juju 3 does: cwd = charm dir, no arguments, a fresh env.
    pub fn run_hook(&self, hook: &str) -> Output {
        self.run_with_env(&self.charm_dir.join("dispatch"), self.hook_env(hook))
    }

    /// Runs `dispatch` with extra variables (relation hooks and the like).
    pub fn run_hook_with(&self, hook: &str, extra: &[(&str, &str)]) -> Output {
        let mut env = self.hook_env(hook);
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.run_with_env(&self.charm_dir.join("dispatch"), env)
    }

    /// Runs `hooks/<hook>` (a link to dispatch) as Juju without dispatch support does: by its
    /// full path, and without JUJU_DISPATCH_PATH.
    pub fn run_legacy_hook(&self, hook: &str) -> Output {
        let link = self.charm_dir.join("hooks").join(hook);
        if !link.exists() {
            symlink("../dispatch", &link).expect("link hooks/<hook> to dispatch");
        }
        let mut env = self.hook_env(hook);
        env.remove("JUJU_DISPATCH_PATH");
        self.run_with_env(&link, env)
    }

    /// Runs the charm as on a machine of its own: in a mount namespace where the paths the charm
    /// writes are empty directories of this fake's, so the test machine's are never touched.
    fn run_with_env(&self, program: &Path, env: BTreeMap<String, String>) -> Output {
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(r#"p=$1; shift; while [ $# -gt 0 ]; do mkdir -p "$1" && mount --bind "$1" "$2" || exit 97; shift 2; done; exec "$p""#)
            .arg("sh")
            .arg(program);
        for path in MACHINE_PATHS {
            let own = self
                .state_dir
                .join("machine")
                .join(path.trim_start_matches('/'));
            command.arg(own).arg(path);
        }
        command
            .current_dir(&self.charm_dir)
            .env_clear()
            .envs(env)
            .output()
            .expect("run the charm (needs root and unshare from util-linux)")
    }

    /// The tool calls made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        let log = fs::read_to_string(self.state_dir.join("calls")).expect("read the call log");
        log.lines()
            .map(|line| {
                let mut fields: Vec<String> = line.split(SEP).map(str::to_owned).collect();
                let stdin = fields
                    .last()
                    .and_then(|f| f.strip_prefix("stdin="))
                    .map(str::to_owned);
                if stdin.is_some() {
                    fields.pop();
                }
                let tool = fields.remove(0);
                Call {
                    tool,
                    args: fields,
                    stdin,
                }
            })
            .collect()
    }

    /// The calls as command lines.
    pub fn call_lines(&self) -> Vec<String> {
        self.calls().iter().map(Call::line).collect()
    }

    pub fn clear_calls(&self) {
        fs::write(self.state_dir.join("calls"), "").expect("clear the call log");
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

/// config.yaml's defaults as config-get prints them: options whose default is null left out.
pub fn config_defaults() -> Map<String, Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.yaml");
    let text = fs::read_to_string(&path).expect("read config.yaml");
    keystone_charm::config::defaults_from_config_yaml(&text).expect("config.yaml is valid")
}

/// Packs the built binary into a charm directory under `out`, as `make charm` does, and returns
/// the unpacked charm (what the simulator deploys).
pub fn pack_charm(out: &TempDir) -> PathBuf {
    let status = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-charm"))
        .arg(env!("CARGO_BIN_EXE_keystone-charm"))
        .arg(out.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run scripts/build-charm");
    assert!(status.success(), "scripts/build-charm failed");
    out.path().join("charm")
}

/// Settles a simulated model, failing with every failed hook's output if any hook failed.
pub fn settle(model: &mut juju_sim::Model) {
    let result = model.settle();
    let failed: Vec<String> = model
        .hook_log()
        .into_iter()
        .filter(|r| r.exit_code != 0)
        .map(|r| format!("{} {}: {}", r.unit, r.hook, r.stderr))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    result.expect("the model settles");
}

/// The application's leader and one other unit.
pub fn leader_and_other(model: &juju_sim::Model, app: &str) -> (String, String) {
    let leader = model.leader(app).expect("a leader");
    let other = model
        .units(app)
        .into_iter()
        .find(|u| *u != leader)
        .expect("a second unit");
    (leader, other)
}
