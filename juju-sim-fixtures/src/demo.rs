//! The simulated deployment demo: a bundle deployed into a [`Model`], settled, and reported the
//! way `juju status` would show it, with the relation data that matters and hook counts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::scripted::{HaCluster, IdentityConsumer, IdentityInterface, MySql};
use juju_sim::Model;

/// A Keystone unit's machine: the host's /etc (with /etc/keystone over it, without the host's
/// key repositories), Keystone's, the charm's and Apache's state directories, the system CA
/// store, and empty log and run directories.
pub fn keystone_machine() -> juju_sim::machine::MachineLayout {
    let strings = |paths: &[&str]| paths.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
    juju_sim::machine::MachineLayout {
        // /etc whole (a file such as /etc/memcached.conf cannot be a mount point of its own: a
        // charm replaces it by renaming over it), then /etc/keystone over it.
        seeded: strings(&[
            "/etc",
            "/etc/keystone",
            "/var/lib/keystone-charm",
            "/var/lib/keystone",
            // a2ensite's and a2enmod's markers: shared, two machines' would race.
            "/var/lib/apache2",
            "/usr/local/share/ca-certificates",
        ]),
        not_seeded: strings(&[
            "fernet-keys",
            "credential-keys",
            "fernet-keys.sets",
            "credential-keys.sets",
        ]),
        skeletons: vec![
            ("/var/log".to_owned(), strings(&["apache2", "keystone"])),
            (
                "/run".to_owned(),
                strings(&["lock", "apache2", "memcached", "haproxy"]),
            ),
        ],
        overlaid: Vec::new(),
    }
}
/// The bundle the demo deploys when none is given: 3 Keystone units with hacluster, mysql, and
/// three identity consumers.
pub const DEFAULT_BUNDLE: &str = include_str!("../demo/ha-bundle.yaml");

#[derive(Debug, Deserialize)]
pub struct Bundle {
    pub applications: BTreeMap<String, BundleApp>,
    #[serde(default)]
    pub relations: Vec<[String; 2]>,
}

#[derive(Debug, Deserialize)]
pub struct BundleApp {
    pub charm: String,
    #[serde(default)]
    pub num_units: Option<usize>,
    #[serde(default)]
    pub options: Map<String, Value>,
}

impl Bundle {
    pub fn parse(text: &str) -> Result<Bundle> {
        serde_norway::from_str(text).context("the bundle is not valid YAML of the expected shape")
    }
}

/// Whether the deployment runs real services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Services {
    /// Units are machines (see [`Model::use_machines`]) and the scripted mysql creates real
    /// databases in this host's MariaDB, reached over the model's bridge.
    Real,
    /// Nothing runs: the scripted mysql has no server behind it and never answers, so the charm
    /// waits for its database.
    None,
}

/// Deploys a bundle: `charm: keystone` (or any name found in `charms`) is a charm directory;
/// `scripted:<kind>` is one of the simulator's scripted charms. Subordinates get one unit per
/// unit of the application they relate to. With real services, call
/// [`crate::scripted::ensure_mariadb`] first.
/// What a deployed bundle runs beside the model, for as long as the caller keeps it: the LDAP
/// directory of a `scripted:keystone-ldap` (real services only).
pub struct Deployed {
    pub directory: Option<crate::slapd::Slapd>,
}

/// The user the demo's LDAP directory holds, and the password.
pub const LDAP_USER: (&str, &str) = ("alice", "Alice-ldap-1");

/// An LDAP directory of the demo's own, on the host where the units reach MariaDB too.
fn start_directory(model: &Model) -> Result<crate::slapd::Slapd> {
    let host = model
        .host_address()
        .context("an LDAP directory needs units that are machines")?;
    let dir = std::env::temp_dir().join(format!("juju-sim-ldap-{}", std::process::id()));
    let slapd = crate::slapd::Slapd::start(&dir, &host, "Demo-ldap-admin-1")?;
    slapd.add_user(LDAP_USER.0, LDAP_USER.1)?;
    Ok(slapd)
}

pub fn deploy_bundle(
    model: &mut Model,
    bundle: &Bundle,
    charms: &BTreeMap<String, PathBuf>,
    services: Services,
) -> Result<Deployed> {
    let mut deployed = Deployed { directory: None };
    if services == Services::Real {
        model.use_machines(keystone_machine())?;
    }
    let subordinate_units = |name: &str| -> usize {
        bundle
            .relations
            .iter()
            .filter_map(|[a, b]| {
                let (a_app, b_app) = (app_of(a), app_of(b));
                if a_app == name {
                    Some(b_app)
                } else if b_app == name {
                    Some(a_app)
                } else {
                    None
                }
            })
            .filter_map(|other| bundle.applications.get(other).and_then(|a| a.num_units))
            .max()
            .unwrap_or(1)
    };
    for (name, app) in &bundle.applications {
        match app.charm.strip_prefix("scripted:") {
            Some(kind) => {
                let units = app.num_units.unwrap_or_else(|| subordinate_units(name));
                let charm: Box<dyn juju_sim::scripted::ScriptedCharm> = match kind {
                    "mysql" => {
                        let mut mysql = MySql::new("demo-db-password");
                        match services {
                            Services::Real => {
                                mysql.db_host = model.host_address();
                                mysql.provisioner = Some(crate::scripted::mariadb_provisioner());
                            }
                            Services::None => mysql.offline = true,
                        }
                        Box::new(mysql)
                    }
                    "hacluster" => Box::new(HaCluster::default()),
                    "identity-service" => {
                        Box::new(IdentityConsumer::new(name, IdentityInterface::Service))
                    }
                    "identity-credentials" => {
                        Box::new(IdentityConsumer::new(name, IdentityInterface::Credentials))
                    }
                    "identity-admin" => {
                        Box::new(IdentityConsumer::new(name, IdentityInterface::Admin))
                    }
                    "identity-dashboard" => {
                        Box::new(IdentityConsumer::new(name, IdentityInterface::Dashboard))
                    }
                    "identity-service-sunbeam" => {
                        Box::new(IdentityConsumer::new(name, IdentityInterface::Sunbeam))
                    }
                    // The domain is named after the application, as keystone-ldap's is; with
                    // real services it writes the domain's file on its principal's machine.
                    "keystone-ldap" => {
                        let mut ldap = crate::scripted::KeystoneLdap::new(name);
                        if services == Services::Real {
                            let directory = start_directory(model)?;
                            let principal = principal_of(bundle, name)?;
                            let file = format!("/etc/keystone/domains/keystone.{name}.conf");
                            let files = (0..units)
                                .map(|n| {
                                    let path = model.unit_path(&format!("{principal}/{n}"), &file);
                                    (format!("{name}/{n}"), path)
                                })
                                .collect();
                            ldap.config = Some((directory.domain_config(), files));
                            deployed.directory = Some(directory);
                        }
                        Box::new(ldap)
                    }
                    other => bail!("{name}: no scripted charm called {other:?}"),
                };
                model.deploy_scripted(name, charm, units)?;
            }
            None => {
                let dir = charms
                    .get(&app.charm)
                    .with_context(|| format!("{name}: no charm directory for {:?}", app.charm))?;
                model.deploy(name, dir, app.num_units.unwrap_or(1), app.options.clone())?;
            }
        }
    }
    for [a, b] in &bundle.relations {
        model.relate(a, b)?;
    }
    Ok(deployed)
}

/// The application a subordinate `name` is related to.
fn principal_of<'a>(bundle: &'a Bundle, name: &str) -> Result<&'a str> {
    bundle
        .relations
        .iter()
        .find_map(|[a, b]| match (app_of(a), app_of(b)) {
            (a, b) if a == name => Some(b),
            (a, b) if b == name => Some(a),
            _ => None,
        })
        .with_context(|| format!("{name} is related to nothing"))
}

fn app_of(endpoint: &str) -> &str {
    endpoint.split(':').next().unwrap_or(endpoint)
}

/// `juju status`-like tables.
pub fn status_report(model: &Model) -> String {
    let world = model.world();
    let mut out = String::new();
    let _ = writeln!(out, "Model  Juju   Version");
    let _ = writeln!(
        out,
        "{:<6} sim    {}\n",
        world.model_name, world.juju_version
    );
    let _ = writeln!(
        out,
        "{:<12} {:<9} {:<8} {:<5} Message",
        "App", "Version", "Status", "Units"
    );
    for app in world.apps.values() {
        let units = world.live_units_of(&app.name).len();
        let _ = writeln!(
            out,
            "{:<12} {:<9} {:<8} {:<5} {}",
            app.name,
            if app.version.is_empty() {
                "-"
            } else {
                &app.version
            },
            if app.status.status.is_empty() {
                "unknown"
            } else {
                &app.status.status
            },
            units,
            app.status.message
        );
    }
    let _ = writeln!(
        out,
        "\n{:<14} {:<10} {:<12} {:<15} Message",
        "Unit", "Workload", "Agent", "Address"
    );
    for unit in world.units.values().filter(|u| u.alive) {
        let leader = if world.is_leader(&unit.name) { "*" } else { "" };
        let agent = if unit.agent_error.is_some() {
            "error"
        } else {
            "idle"
        };
        let message = unit
            .agent_error
            .clone()
            .unwrap_or_else(|| unit.status.message.clone());
        let _ = writeln!(
            out,
            "{:<14} {:<10} {:<12} {:<15} {}",
            format!("{}{leader}", unit.name),
            unit.status.status,
            agent,
            unit.address,
            message
        );
    }
    let vips: Vec<(String, std::net::Ipv4Addr)> = world
        .vips
        .iter()
        .flat_map(|(app, vips)| vips.iter().map(move |vip| (app.clone(), *vip)))
        .collect();
    drop(world);
    if !vips.is_empty() {
        let _ = writeln!(out, "\n{:<14} {:<16} Held by", "App", "VIP");
        for (app, vip) in vips {
            let holder = model
                .vip_holder(vip)
                .unwrap_or_else(|| "nobody (no machines)".to_owned());
            let _ = writeln!(out, "{app:<14} {vip:<16} {holder}");
        }
    }
    out
}

/// The relation data bags, keys sorted; values that look like secrets are masked.
pub fn relation_report(model: &Model) -> String {
    let world = model.world();
    let mut out = String::new();
    for rel in world.relations.values() {
        let ends: Vec<String> = rel
            .ends
            .iter()
            .map(|e| format!("{}:{}", e.app, e.endpoint))
            .collect();
        let _ = writeln!(out, "relation {} ({})", rel.id, ends.join(" <-> "));
        let bags = rel.app_data.iter().chain(rel.unit_data.iter());
        for (bag, data) in bags {
            let interesting: Vec<String> = data
                .iter()
                .filter(|(k, _)| {
                    !["private-address", "ingress-address", "egress-subnets"].contains(&k.as_str())
                })
                .map(|(k, v)| {
                    let shown = if k.contains("password")
                        || k.contains("secret")
                        || k.ends_with("keys")
                        || k.contains("ssl_key")
                    {
                        "***".to_owned()
                    } else if v.len() > 60 {
                        format!("{}…", &v[..60])
                    } else {
                        v.clone()
                    };
                    format!("{k}={shown}")
                })
                .collect();
            if !interesting.is_empty() {
                let _ = writeln!(out, "  {bag}: {}", interesting.join(" "));
            }
        }
    }
    out
}

/// Hooks run and hook-tool calls of the charms under test, per application and hook.
pub fn hook_report(model: &Model) -> String {
    let world = model.world();
    let mut counts: BTreeMap<(String, String), (usize, usize, usize)> = BTreeMap::new();
    for run in &world.hook_log {
        let app = juju_sim::state::World::app_of(&run.unit).to_owned();
        let scripted = world
            .apps
            .get(&app)
            .is_some_and(|a| a.charm == juju_sim::state::CharmKind::Scripted);
        if scripted {
            continue;
        }
        let entry = counts.entry((app, run.hook.clone())).or_default();
        entry.0 += 1;
        entry.1 += run.tool_calls.len();
        entry.2 += usize::from(run.exit_code != 0);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:<40} {:>5} {:>16} {:>7}",
        "App", "Hook", "Runs", "Tool calls/run", "Failed"
    );
    for ((app, hook), (runs, calls, failed)) in counts {
        let per_run = calls as f64 / runs as f64;
        let _ = writeln!(
            out,
            "{app:<10} {hook:<40} {runs:>5} {per_run:>16.1} {failed:>7}"
        );
    }
    let total = world.hook_log.len();
    let failed = world.hook_log.iter().filter(|r| r.exit_code != 0).count();
    let _ = writeln!(
        out,
        "\n{total} hooks run in all (scripted charms included), {failed} failed"
    );
    out
}

/// Whether a path looks like a charm directory.
pub fn is_charm_dir(dir: &Path) -> bool {
    dir.join("metadata.yaml").is_file() && dir.join("dispatch").is_file()
}

/// What an HTTP request to Keystone (made with curl) got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    /// The `X-Subject-Token` header (a token Keystone issued).
    pub subject_token: Option<String>,
    pub body: String,
}

/// Runs curl with `args` (a URL and options such as `--cacert`); fails only when curl cannot
/// reach the server at all.
pub fn http(args: &[&str]) -> Result<HttpReply> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "60", "-D", "-"])
        .args(args)
        .output()
        .context("cannot run curl (scripts/install-deps installs it)")?;
    if !out.status.success() {
        bail!(
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let subject_token = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("x-subject-token")
            .then(|| value.trim().to_owned())
    });
    Ok(HttpReply {
        status,
        subject_token,
        body: body.to_owned(),
    })
}

/// `POST <base>/auth/tokens` for a password user (`user`: name, domain, password as Keystone's
/// API takes them) and `scope`; `extra` are more curl options.
pub fn request_token(base: &str, user: &Value, scope: &Value, extra: &[&str]) -> Result<HttpReply> {
    let body = serde_json::json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": user}},
        "scope": scope
    }})
    .to_string();
    let url = format!("{base}/auth/tokens");
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &body,
        &url,
    ];
    args.extend_from_slice(extra);
    http(&args)
}

/// A token for the admin user (`admin` in `admin_domain`), scoped to the `admin` project, from
/// Keystone at `base` (`…/v3`); `extra` are more curl options.
pub fn issue_admin_token(base: &str, password: &str, extra: &[&str]) -> Result<String> {
    let user = serde_json::json!({"name": "admin", "domain": {"name": "admin_domain"}, "password": password});
    let scope =
        serde_json::json!({"project": {"name": "admin", "domain": {"name": "admin_domain"}}});
    let reply = request_token(base, &user, &scope, extra)?;
    match reply.subject_token {
        Some(token) if reply.status == 201 => Ok(token),
        _ => bail!(
            "POST {base}/auth/tokens answered {}: {}",
            reply.status,
            reply.body
        ),
    }
}

/// What Keystone at `base` says of `token` (`GET /v3/auth/tokens`): 200 when it is valid.
pub fn token_status(base: &str, admin_token: &str, token: &str) -> Result<u16> {
    let url = format!("{base}/auth/tokens");
    let auth = format!("X-Auth-Token: {admin_token}");
    let subject = format!("X-Subject-Token: {token}");
    Ok(http(&["-H", &auth, "-H", &subject, &url])?.status)
}

/// Each unit's haproxy as its admin socket reports it (`show stat`): every backend server and
/// whether its health check finds it up.
pub fn haproxy_report(model: &Model, units: &[String]) -> String {
    use std::io::{Read as _, Write as _};
    let mut out = String::new();
    for unit in units {
        let socket = model.unit_path(unit, "/run/haproxy/admin.sock");
        let stat = std::os::unix::net::UnixStream::connect(&socket).and_then(|mut s| {
            s.write_all(b"show stat\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        });
        let stat = match stat {
            Ok(text) => text,
            Err(err) => {
                let _ = writeln!(out, "    {unit}: haproxy's admin socket: {err}");
                continue;
            }
        };
        // CSV: pxname, svname, ..., status is the 18th field.
        let servers: Vec<String> = stat
            .lines()
            .filter(|l| l.starts_with("keystone-"))
            .filter_map(|l| {
                let fields: Vec<&str> = l.split(',').collect();
                let (backend, server, status) = (fields.first()?, fields.get(1)?, fields.get(17)?);
                (*server != "FRONTEND" && *server != "BACKEND")
                    .then(|| format!("{backend}/{server} {status}"))
            })
            .collect();
        let _ = writeln!(out, "    {unit}: {}", servers.join(", "));
    }
    out
}

/// What one identity consumer got from keystone/0, and (with real services) whether its
/// credentials get a token scoped to their project there. Passwords are never printed.
pub fn consumer_report(model: &Model, keystone_unit: &str, real: bool) -> Result<String> {
    let mut out = String::new();
    let world = model.world();
    let address = world
        .units
        .get(keystone_unit)
        .map(|u| u.address.clone())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for relation in world.relations.values() {
        let Some(ours) = relation.end_of("keystone") else {
            continue;
        };
        let identity = [
            "identity-service",
            "identity-credentials",
            "identity-admin",
            "keystone-service",
        ];
        if !identity.contains(&ours.endpoint.as_str()) {
            continue;
        }
        let Some(remote) = relation.remote_app("keystone").filter(|r| *r != "keystone") else {
            continue;
        };
        let unit_bag = relation
            .unit_data
            .get(keystone_unit)
            .cloned()
            .unwrap_or_default();
        let app_bag = relation
            .app_data
            .get("keystone")
            .cloned()
            .unwrap_or_default();
        let secret = app_bag
            .get("service-credentials")
            .and_then(|id| world.secrets.get(id.trim_start_matches("secret:")))
            .and_then(|s| s.revisions.last().cloned())
            .unwrap_or_default();
        // (form, user, password, user domain id or name, project id or name)
        let get =
            |bag: &BTreeMap<String, String>, key: &str| bag.get(key).cloned().unwrap_or_default();
        let row = match ours.endpoint.as_str() {
            "identity-service" if !secret.is_empty() => Some((
                "identity-service, Sunbeam (app bag + secret)",
                get(&secret, "username"),
                get(&secret, "password"),
                serde_json::json!({"id": get(&app_bag, "service-domain-id")}),
                serde_json::json!({"id": get(&app_bag, "service-project-id")}),
            )),
            "identity-service" if unit_bag.contains_key("service_username") => Some((
                "identity-service, classic",
                get(&unit_bag, "service_username"),
                get(&unit_bag, "service_password"),
                serde_json::json!({"id": get(&unit_bag, "service_domain_id")}),
                serde_json::json!({"id": get(&unit_bag, "service_tenant_id")}),
            )),
            "identity-credentials" => Some((
                "identity-credentials",
                get(&unit_bag, "credentials_username"),
                get(&unit_bag, "credentials_password"),
                serde_json::json!({"id": get(&unit_bag, "credentials_user_domain_id")}),
                serde_json::json!({"id": get(&unit_bag, "credentials_project_id")}),
            )),
            "identity-admin" => Some((
                "identity-admin",
                get(&unit_bag, "service_username"),
                get(&unit_bag, "service_password"),
                serde_json::json!({"name": get(&unit_bag, "service_user_domain_name")}),
                serde_json::json!({"name": get(&unit_bag, "service_project_name"),
                    "domain": {"name": get(&unit_bag, "service_project_domain_name")}}),
            )),
            _ => None,
        };
        match row {
            Some(row) => rows.push((remote.to_owned(), row)),
            None => out.push_str(&format!(
                "    {remote:<10} {}: {}\n",
                ours.endpoint,
                match unit_bag.get("created_roles") {
                    Some(roles) => format!("None form (no user, no catalog entry); roles {roles}"),
                    None => "no reply yet".to_owned(),
                }
            )),
        }
    }
    drop(world);
    for (remote, (form, user, password, domain, project)) in rows {
        if user.is_empty() {
            out.push_str(&format!("    {remote:<10} {form}: no credentials yet\n"));
            continue;
        }
        let verdict = match real {
            false => "not checked (no services)".to_owned(),
            true => {
                let mut scope = serde_json::json!({"project": project});
                if scope["project"]["domain"].is_null() && project.get("id").is_none() {
                    scope["project"]["domain"] = domain.clone();
                }
                let user =
                    serde_json::json!({"name": user, "domain": domain, "password": password});
                let reply =
                    request_token(&format!("http://{address}:5000/v3"), &user, &scope, &[])?;
                match reply.status {
                    201 => format!("token scoped to its project from {keystone_unit}: 201"),
                    status => format!("token refused by {keystone_unit}: {status}"),
                }
            }
        };
        out.push_str(&format!(
            "    {remote:<10} {form}: user {user}; {verdict}\n"
        ));
    }
    Ok(out)
}
