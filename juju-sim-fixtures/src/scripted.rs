//! The remote charms the Keystone charm relates to, scripted in Rust: mysql (optionally backed
//! by a real MariaDB), hacluster, identity consumers and a certificate authority. Each runs
//! through the simulator's hook tools and rules like any scripted charm
//! ([`juju_sim::scripted::ScriptedCharm`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Result, bail};
use juju_sim::scripted::{ScriptedCharm, ScriptedHook};

/// A request for a database on shared-db, as the scripted mysql saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseRequest {
    pub unit: String,
    pub database: String,
    pub username: String,
    pub hostname: String,
}

/// Creates the database and user for a request (the real-stack mysql plugs in MariaDB here).
pub type Provisioner = Box<dyn FnMut(&DatabaseRequest, &str) -> Result<()> + Send>;

/// Creates the requested database and user in a real MariaDB on this machine (reached with the
/// `mysql` client as root over its socket), granting the user everything on the database from
/// the host it named. Names are checked first: relation data never reaches SQL unchecked.
pub fn mariadb_provisioner() -> Provisioner {
    mariadb_provisioner_at(None)
}

/// [`mariadb_provisioner`] for the MariaDB server listening on `socket` (this host's own when
/// `None`), e.g. a [`crate::mariadb::MariaDbServer`] of a test's own.
pub fn mariadb_provisioner_at(socket: Option<std::path::PathBuf>) -> Provisioner {
    Box::new(move |request: &DatabaseRequest, password: &str| {
        let identifier = |what: &str, value: &str| -> Result<()> {
            let ok = !value.is_empty()
                && value.len() <= 64
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                bail!("refusing {what} {value:?}: only letters, digits, _ and - are accepted");
            }
            Ok(())
        };
        identifier("database name", &request.database)?;
        identifier("user name", &request.username)?;
        let host_ok = request
            .hostname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '%'));
        if request.hostname.is_empty() || !host_ok {
            bail!("refusing host {:?}", request.hostname);
        }
        if password.contains(['\\', '\'']) {
            bail!("the scripted mysql's password must not contain quotes or backslashes");
        }
        let sql = format!(
            "CREATE DATABASE IF NOT EXISTS `{db}`; \
             CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{password}'; \
             GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'{host}'; FLUSH PRIVILEGES;",
            db = request.database,
            user = request.username,
            host = request.hostname,
        );
        let mut mysql = std::process::Command::new("mysql");
        if let Some(socket) = &socket {
            mysql.arg(format!("--socket={}", socket.display()));
        }
        let output = mysql.args(["-uroot", "-e", &sql]).output().map_err(|e| {
            anyhow::anyhow!("cannot run the mysql client (apt-get install mariadb-server): {e}")
        })?;
        if !output.status.success() {
            bail!(
                "MariaDB refused: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    })
}

/// Where the simulator makes MariaDB listen on every address, so units on their own machines
/// (see [`juju_sim::machine`]) reach it over the model's bridge.
const MARIADB_LISTEN_FILE: &str = "/etc/mysql/mariadb.conf.d/99-juju-sim.cnf";

/// Makes this host's MariaDB listen on every address and answer: writes the listen setting
/// (restarting MariaDB only when it changed), starts MariaDB when it is stopped, and waits for
/// `mysql -uroot` to connect. Needs root and mariadb-server.
pub fn ensure_mariadb() -> Result<()> {
    // Tests run side by side, each in its own process: one at a time checks and starts MariaDB,
    // or two would start it at once and one of them fail.
    let lock = std::fs::File::create("/run/juju-sim-mariadb.lock")
        .map_err(|e| anyhow::anyhow!("cannot open /run/juju-sim-mariadb.lock: {e}"))?;
    lock.lock()
        .map_err(|e| anyhow::anyhow!("cannot lock /run/juju-sim-mariadb.lock: {e}"))?;
    let wanted = "# Written by juju-sim: units on their own machines reach MariaDB over a bridge.\n[mysqld]\nbind-address = 0.0.0.0\n";
    let changed = std::fs::read_to_string(MARIADB_LISTEN_FILE).ok().as_deref() != Some(wanted);
    if changed {
        std::fs::write(MARIADB_LISTEN_FILE, wanted).map_err(|e| {
            anyhow::anyhow!(
                "cannot write {MARIADB_LISTEN_FILE} (apt-get install mariadb-server): {e}"
            )
        })?;
    }
    let answers = || {
        std::process::Command::new("mysql")
            .args(["-uroot", "-e", "SELECT 1"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let action = match (answers(), changed) {
        (true, false) => return Ok(()),
        (true, true) => "restart",
        (false, _) => "start",
    };
    let status = std::process::Command::new("service")
        .args(["mariadb", action])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run service mariadb {action}: {e}"))?;
    if !status.success() {
        bail!("service mariadb {action} failed");
    }
    for _ in 0..100 {
        if answers() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bail!("MariaDB does not answer after service mariadb {action}")
}

/// Refuses a database name that is not letters, digits and `_` (names reach SQL).
pub fn check_database_name(name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("refusing database name {name:?}");
    }
    Ok(())
}

/// Drops a database of this host's MariaDB, if it exists, so that a run starts from nothing.
pub fn drop_database(name: &str) -> Result<()> {
    check_database_name(name)?;
    let out = std::process::Command::new("mysql")
        .args(["-uroot", "-e", &format!("DROP DATABASE IF EXISTS `{name}`")])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run the mysql client: {e}"))?;
    if !out.status.success() {
        bail!("MariaDB: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// A `mysql` that answers `mysql-shared` requests: db_host, password, allowed_units.
pub struct MySql {
    pub password: String,
    /// The address it gives as db_host; its own unit address when unset.
    pub db_host: Option<String>,
    /// Sent as db_port when set (MySQL's 3306 is assumed otherwise).
    pub db_port: Option<u16>,
    pub provisioner: Option<Provisioner>,
    pub requests: Arc<Mutex<Vec<DatabaseRequest>>>,
    /// No database server behind it: requests are recorded and never answered (the demo without
    /// real services).
    pub offline: bool,
}

impl MySql {
    pub fn new(password: &str) -> MySql {
        MySql {
            password: password.to_owned(),
            db_host: None,
            db_port: None,
            provisioner: None,
            requests: Arc::default(),
            offline: false,
        }
    }
}

impl ScriptedCharm for MySql {
    fn metadata(&self) -> &str {
        "name: mysql\nprovides:\n  shared-db:\n    interface: mysql-shared\n"
    }

    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> Result<()> {
        if !hook.hook_name().starts_with("shared-db-relation-") || !hook.is_leader()? {
            return Ok(());
        }
        let Some(relation) = hook.relation() else {
            return Ok(());
        };
        if hook.hook_name().ends_with("-broken") || hook.hook_name().ends_with("-created") {
            return Ok(());
        }
        let mut allowed = Vec::new();
        for unit in hook.relation_list(&relation)? {
            let bag = hook.relation_get(&relation, &unit, false)?;
            let (Some(database), Some(username), Some(hostname)) = (
                bag.get("database"),
                bag.get("username"),
                bag.get("hostname"),
            ) else {
                continue;
            };
            let request = DatabaseRequest {
                unit: unit.clone(),
                database: database.clone(),
                username: username.clone(),
                hostname: hostname.clone(),
            };
            let mut seen = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            if !seen.contains(&request) {
                if let Some(provision) = self.provisioner.as_mut() {
                    provision(&request, &self.password)?;
                }
                seen.push(request);
            }
            allowed.push(unit);
        }
        if allowed.is_empty() || self.offline {
            return Ok(());
        }
        let host = self.db_host.clone().unwrap_or_else(|| hook.address());
        let allowed = allowed.join(" ");
        let port = self.db_port.map(|p| p.to_string());
        let mut answer = vec![
            ("db_host", host.as_str()),
            ("password", self.password.as_str()),
            ("allowed_units", allowed.as_str()),
        ];
        if let Some(port) = &port {
            answer.push(("db_port", port));
        }
        hook.relation_set(&relation, false, &answer)
    }
}

/// An `hacluster` subordinate that reports `clustered` once the principal sent its resources.
#[derive(Default)]
pub struct HaCluster {
    /// The json_* settings each principal unit sent, by hacluster unit.
    pub seen: Arc<Mutex<BTreeMap<String, BTreeMap<String, String>>>>,
}

impl ScriptedCharm for HaCluster {
    fn metadata(&self) -> &str {
        "name: hacluster\nsubordinate: true\nprovides:\n  ha:\n    interface: hacluster\n    scope: container\n"
    }

    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> Result<()> {
        if hook.hook_name() != "ha-relation-changed" {
            return Ok(());
        }
        let (Some(relation), Some(principal)) = (hook.relation(), hook.event.remote_unit.clone())
        else {
            return Ok(());
        };
        let bag = hook.relation_get(&relation, &principal, false)?;
        let resources: BTreeMap<String, String> = bag
            .into_iter()
            .filter(|(k, _)| k.starts_with("json_"))
            .collect();
        if resources.contains_key("json_resources") {
            check_crm_payload(&resources)?;
            let vips = ipaddr2_vips(&resources)?;
            let principal = principal.split('/').next().unwrap_or_default().to_owned();
            hook.set_vips(&principal, vips);
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(hook.unit.clone(), resources);
            hook.relation_set(&relation, false, &[("clustered", "yes")])?;
        }
        Ok(())
    }
}

/// A `json_*` map of a principal's settings (empty when unset), as hacluster parses it.
fn crm_map(settings: &BTreeMap<String, String>, key: &str) -> Result<BTreeMap<String, String>> {
    match settings.get(key) {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("hacluster cannot parse {key}: {e}")),
        None => Ok(BTreeMap::new()),
    }
}

/// Refuses what hacluster could not configure, as its hook would fail on it: a `json_*` value
/// that is not JSON of the right shape, an agent that is not `<class>:<name>` or
/// `ocf:<provider>:<type>`, a parameter value holding white space (hacluster splits each `crm`
/// command on white space), or a group, clone or parameters naming an undeclared resource.
pub fn check_crm_payload(settings: &BTreeMap<String, String>) -> Result<()> {
    let json = |key: &str| crm_map(settings, key);
    let resources = json("json_resources")?;
    for (name, agent) in &resources {
        let parts: Vec<&str> = agent.split(':').collect();
        let shaped = match parts.as_slice() {
            ["ocf", provider, kind] => !provider.is_empty() && !kind.is_empty(),
            [class, kind] => !class.is_empty() && !kind.is_empty(),
            _ => false,
        };
        if !shaped || name.contains(char::is_whitespace) {
            bail!("crm refuses resource {name:?} of agent {agent:?}");
        }
    }
    let declared = |name: &str, what: &str| -> Result<()> {
        match resources.contains_key(name) {
            true => Ok(()),
            false => bail!("{what} names {name:?}, which json_resources does not declare"),
        }
    };
    for (name, params) in json("json_resource_params")? {
        declared(&name, "json_resource_params")?;
        // Each word must be `key="value"` or a bare word: a quoted value with a space in it
        // reaches crm cut in two.
        for word in params.split_whitespace() {
            if word.matches('"').count() % 2 == 1 {
                bail!("the parameters of {name} split into a broken word {word:?}: {params:?}");
            }
        }
    }
    for (group, members) in json("json_groups")? {
        for member in members.split_whitespace() {
            declared(member, &format!("group {group}"))?;
        }
    }
    for (clone, target) in json("json_clones")? {
        declared(&target, &format!("clone {clone}"))?;
    }
    Ok(())
}

/// The IPv4 addresses of the `ocf:heartbeat:IPaddr2` resources in a principal's `json_*`
/// settings (their `ip="..."` parameter), as Pacemaker would run them; a payload hacluster
/// could not parse is an error, as it fails hacluster's hook.
pub fn ipaddr2_vips(settings: &BTreeMap<String, String>) -> Result<Vec<std::net::Ipv4Addr>> {
    let json = |key: &str| crm_map(settings, key);
    let resources = json("json_resources")?;
    let params = json("json_resource_params")?;
    let mut vips = Vec::new();
    for (name, agent) in &resources {
        if agent != "ocf:heartbeat:IPaddr2" {
            continue;
        }
        let text = params.get(name).map(String::as_str).unwrap_or_default();
        let ip = text
            .split_whitespace()
            .find_map(|word| word.strip_prefix("ip=\""))
            .and_then(|rest| rest.strip_suffix('"'))
            .ok_or_else(|| anyhow::anyhow!("{name} has no ip parameter: {text:?}"))?;
        vips.push(
            ip.parse()
                .map_err(|e| anyhow::anyhow!("{name}: {ip:?} is not an IPv4 address: {e}"))?,
        );
    }
    Ok(vips)
}

/// Which identity interface a consumer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityInterface {
    /// identity-service: registers a catalog entry.
    Service,
    /// identity-credentials: asks for a user only.
    Credentials,
    /// identity-admin: asks for nothing, receives the admin credentials.
    Admin,
    /// identity-service, as the dashboard asks: every endpoint key `None`, its default role
    /// requested; no user, no catalog entry.
    Dashboard,
    /// identity-service, as a Sunbeam charm asks: in its application bag; the reply is in
    /// Keystone's application bag, the credentials in a secret granted to the relation (the
    /// consumer records the reply with the secret's `username` and `password` added).
    Sunbeam,
}

/// Replies seen by each consumer unit, by the Keystone unit that sent them.
pub type Replies = Arc<Mutex<BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>>>;

/// An OpenStack service charm consuming Keystone: sends its request and records the replies.
pub struct IdentityConsumer {
    pub interface: IdentityInterface,
    pub service: String,
    pub metadata: String,
    /// The last reply seen from each Keystone unit, by consumer unit.
    pub replies: Replies,
}

impl IdentityConsumer {
    pub fn new(service: &str, interface: IdentityInterface) -> IdentityConsumer {
        let endpoint = Self::endpoint_of(interface);
        let iface = match interface {
            IdentityInterface::Credentials => "keystone-credentials",
            IdentityInterface::Admin => "keystone-admin",
            _ => "keystone",
        };
        IdentityConsumer {
            interface,
            service: service.to_owned(),
            metadata: format!(
                "name: {service}\nrequires:\n  {endpoint}:\n    interface: {iface}\n"
            ),
            replies: Arc::default(),
        }
    }

    fn endpoint_of(interface: IdentityInterface) -> &'static str {
        match interface {
            IdentityInterface::Credentials => "identity-credentials",
            IdentityInterface::Admin => "identity-admin",
            _ => "identity-service",
        }
    }

    fn endpoint(&self) -> &str {
        Self::endpoint_of(self.interface)
    }

    /// A Sunbeam-style consumer follows its credentials secret, as the Sunbeam library does
    /// on secret-changed: the new revision's content replaces what it recorded.
    fn credentials_changed(&mut self, hook: &mut ScriptedHook<'_>) -> Result<()> {
        let Some((id, _, _)) = hook.event.secret.clone() else {
            return Ok(());
        };
        let out = hook.tool("secret-get", &["--refresh", "--format=json", &id])?;
        let content: BTreeMap<String, String> = serde_json::from_str(&out)?;
        let mut replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        for reply in replies.entry(hook.unit.clone()).or_default().values_mut() {
            if reply.get("service-credentials") == Some(&id) {
                reply.extend(content.clone());
            }
        }
        Ok(())
    }
}

impl ScriptedCharm for IdentityConsumer {
    fn metadata(&self) -> &str {
        &self.metadata
    }

    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> Result<()> {
        if hook.hook_name() == "secret-changed" && self.interface == IdentityInterface::Sunbeam {
            return self.credentials_changed(hook);
        }
        let prefix = format!("{}-relation-", self.endpoint());
        let Some(kind) = hook.hook_name().strip_prefix(&prefix).map(str::to_owned) else {
            return Ok(());
        };
        let Some(relation) = hook.relation() else {
            return Ok(());
        };
        match kind.as_str() {
            "joined" => {
                let url = format!("http://{}:8774/v2.1", hook.address());
                match self.interface {
                    IdentityInterface::Service => hook.relation_set(
                        &relation,
                        false,
                        &[
                            ("service", &self.service),
                            ("region", "RegionOne"),
                            ("public_url", &url),
                            ("admin_url", &url),
                            ("internal_url", &url),
                        ],
                    ),
                    IdentityInterface::Credentials => {
                        hook.relation_set(&relation, false, &[("username", &self.service)])
                    }
                    IdentityInterface::Admin => Ok(()),
                    IdentityInterface::Dashboard => hook.relation_set(
                        &relation,
                        false,
                        &[
                            ("service", "None"),
                            ("region", "None"),
                            ("public_url", "None"),
                            ("admin_url", "None"),
                            ("internal_url", "None"),
                            ("requested_roles", "member"),
                        ],
                    ),
                    IdentityInterface::Sunbeam if hook.is_leader()? => {
                        let endpoints = serde_json::json!([{
                            "service_name": self.service,
                            "type": "",
                            "description": "",
                            "public_url": url,
                            "admin_url": url,
                            "internal_url": url,
                        }])
                        .to_string();
                        hook.relation_set(
                            &relation,
                            true,
                            &[("service-endpoints", &endpoints), ("region", "RegionOne")],
                        )
                    }
                    IdentityInterface::Sunbeam => Ok(()),
                }
            }
            "changed" if self.interface == IdentityInterface::Sunbeam => {
                let remote = hook.event.remote_app.clone().unwrap_or_default();
                let mut reply = hook.relation_get(&relation, &remote, true)?;
                if let Some(id) = reply.get("service-credentials").cloned() {
                    let out = hook.tool("secret-get", &["--format=json", &id])?;
                    let content: BTreeMap<String, String> = serde_json::from_str(&out)?;
                    reply.extend(content);
                }
                self.replies
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(hook.unit.clone())
                    .or_default()
                    .insert(remote, reply);
                Ok(())
            }
            "changed" => {
                if let Some(remote) = hook.event.remote_unit.clone() {
                    let reply = hook.relation_get(&relation, &remote, false)?;
                    self.replies
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(hook.unit.clone())
                        .or_default()
                        .insert(remote, reply);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hacluster_finds_the_ipaddr2_vips_and_refuses_what_it_cannot_parse() {
        let settings = |resources: &str, params: &str| -> BTreeMap<String, String> {
            BTreeMap::from([
                ("json_resources".to_owned(), resources.to_owned()),
                ("json_resource_params".to_owned(), params.to_owned()),
            ])
        };
        let ok = settings(
            r#"{"res_ks_abc1234_vip":"ocf:heartbeat:IPaddr2","res_ks_haproxy":"lsb:haproxy"}"#,
            r#"{"res_ks_abc1234_vip":"params ip=\"10.5.100.1\" op monitor timeout=\"20s\"","res_ks_haproxy":"meta x"}"#,
        );
        assert_eq!(
            ipaddr2_vips(&ok).unwrap(),
            [std::net::Ipv4Addr::new(10, 5, 100, 1)]
        );
        assert!(ipaddr2_vips(&settings("not json", "{}")).is_err());
        let no_ip = settings(r#"{"r":"ocf:heartbeat:IPaddr2"}"#, r#"{"r":"params x=1"}"#);
        assert!(ipaddr2_vips(&no_ip).is_err());
    }
}

/// Which generation of the `tls-certificates` interface a scripted authority speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateProtocol {
    /// Vault's: `cert_requests` in, a key and certificate per common name out, in the unit bag
    /// (`<unit_name>.processed_requests`, `ca`, `chain`).
    Classic,
    /// tls-certificates v1 (self-signed-certificates, lego, vault-k8s): the requirer's CSRs in
    /// its unit bag (`certificate_signing_requests`), the signed certificates in the provider's
    /// application bag (`certificates`).
    Current,
}

/// A certificate authority charm: issues what each requirer unit asks for, signed by its own CA.
/// Bumping [`CertificateAuthority::renewals`] and running any hook of it issues every certificate
/// again (a renewal: new certificates for the same requests).
pub struct CertificateAuthority {
    pub protocol: CertificateProtocol,
    pub renewals: Arc<Mutex<u32>>,
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// What was issued, by request and renewal, so that a hook in which nothing changed sends
    /// the same certificate again.
    issued: BTreeMap<(String, u32), (String, Option<String>)>,
    metadata: String,
}

impl CertificateAuthority {
    pub fn new(name: &str, protocol: CertificateProtocol) -> Result<CertificateAuthority> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} CA"));
        let key = rcgen::KeyPair::generate()?;
        let ca_pem = params.self_signed(&key)?.pem();
        Ok(CertificateAuthority {
            protocol,
            renewals: Arc::default(),
            ca_pem,
            issuer: rcgen::Issuer::new(params, key),
            issued: BTreeMap::new(),
            metadata: format!(
                "name: {name}\nprovides:\n  certificates:\n    interface: tls-certificates\n"
            ),
        })
    }

    /// The CA certificate (PEM) every certificate it issues chains to.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    fn renewal(&self) -> u32 {
        *self.renewals.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A key and certificate for `common_name` and `sans` (classic: the authority makes the key).
    fn issue_classic(&mut self, common_name: &str, sans: &[String]) -> Result<(String, String)> {
        let request = format!("{common_name} {sans:?}");
        let renewal = self.renewal();
        if let Some((cert, Some(key))) = self.issued.get(&(request.clone(), renewal)) {
            return Ok((cert.clone(), key.clone()));
        }
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(sans.to_vec())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.issuer)?.pem();
        let key = key.serialize_pem();
        self.issued
            .insert((request, renewal), (cert.clone(), Some(key.clone())));
        Ok((cert, key))
    }

    /// A certificate for a signing request (current: the key stays with the requirer).
    fn sign(&mut self, csr_pem: &str) -> Result<String> {
        let renewal = self.renewal();
        if let Some((cert, _)) = self.issued.get(&(csr_pem.to_owned(), renewal)) {
            return Ok(cert.clone());
        }
        let request = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)?;
        let cert = request.signed_by(&self.issuer)?.pem();
        self.issued
            .insert((csr_pem.to_owned(), renewal), (cert.clone(), None));
        Ok(cert)
    }

    fn answer_classic(&mut self, hook: &mut ScriptedHook<'_>, relation: &str) -> Result<()> {
        for unit in hook.relation_list(relation)? {
            let bag = hook.relation_get(relation, &unit, false)?;
            let (Some(requests), Some(unit_name)) =
                (bag.get("cert_requests"), bag.get("unit_name"))
            else {
                continue;
            };
            let requests: BTreeMap<String, BTreeMap<String, Vec<String>>> =
                serde_json::from_str(requests)?;
            let mut processed = BTreeMap::new();
            for (common_name, request) in requests {
                let sans = request.get("sans").cloned().unwrap_or_default();
                let (cert, key) = self.issue_classic(&common_name, &sans)?;
                processed.insert(common_name, serde_json::json!({"cert": cert, "key": key}));
            }
            let processed = serde_json::to_string(&processed)?;
            let key = format!("{unit_name}.processed_requests");
            let ca = self.ca_pem.clone();
            hook.relation_set(
                relation,
                false,
                &[(&key, &processed), ("ca", &ca), ("chain", "")],
            )?;
        }
        Ok(())
    }

    fn answer_current(&mut self, hook: &mut ScriptedHook<'_>, relation: &str) -> Result<()> {
        if !hook.is_leader()? {
            return Ok(());
        }
        let mut certificates = Vec::new();
        for unit in hook.relation_list(relation)? {
            let bag = hook.relation_get(relation, &unit, false)?;
            let Some(requests) = bag.get("certificate_signing_requests") else {
                continue;
            };
            let requests: Vec<serde_json::Value> = serde_json::from_str(requests)?;
            for request in requests {
                let Some(csr) = request["certificate_signing_request"].as_str() else {
                    bail!("{unit} sent a request without certificate_signing_request");
                };
                let cert = self.sign(csr)?;
                certificates.push(serde_json::json!({
                    "certificate": cert,
                    "certificate_signing_request": csr,
                    "ca": self.ca_pem,
                    "chain": [cert, self.ca_pem],
                }));
            }
        }
        let certificates = serde_json::to_string(&certificates)?;
        hook.relation_set(relation, true, &[("certificates", &certificates)])
    }
}

impl ScriptedCharm for CertificateAuthority {
    fn metadata(&self) -> &str {
        &self.metadata
    }

    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> Result<()> {
        for relation in hook.relation_ids("certificates")? {
            match self.protocol {
                CertificateProtocol::Classic => self.answer_classic(hook, &relation)?,
                CertificateProtocol::Current => self.answer_current(hook, &relation)?,
            }
        }
        Ok(())
    }
}

/// A `keystone-ldap` subordinate: in every hook it tells each domain-backend relation its
/// domain and restart nonce; when given where, it first writes the domain's configuration on
/// its principal's machine (as the real charm renders it, which then changes the nonce), and
/// removes it when the relation is broken.
pub struct KeystoneLdap {
    pub domain: String,
    /// Sent as `restart-nonce`; a test changes it to ask for a restart.
    pub nonce: Arc<Mutex<String>>,
    /// The configuration to write, and where on each principal's machine, by this
    /// application's unit (none: nothing is written).
    pub config: Option<(String, BTreeMap<String, std::path::PathBuf>)>,
}

impl KeystoneLdap {
    pub fn new(domain: &str) -> KeystoneLdap {
        KeystoneLdap {
            domain: domain.to_owned(),
            nonce: Arc::new(Mutex::new("1".to_owned())),
            config: None,
        }
    }
}

impl ScriptedCharm for KeystoneLdap {
    fn metadata(&self) -> &str {
        "name: keystone-ldap\nsubordinate: true\nprovides:\n  domain-backend:\n    \
         interface: keystone-domain-backend\n    scope: container\n"
    }

    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> Result<()> {
        let file = self
            .config
            .as_ref()
            .and_then(|(text, files)| Some((text, files.get(&hook.unit)?)));
        if hook.hook_name() == "domain-backend-relation-broken" {
            if let Some((_, path)) = file {
                let _ = std::fs::remove_file(path);
            }
            return Ok(());
        }
        if let Some((text, path)) = file {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            if std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(path, text)?;
            }
        }
        let nonce = self.nonce.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for relation in hook.relation_ids("domain-backend")? {
            hook.relation_set(
                &relation,
                false,
                &[("domain-name", &self.domain), ("restart-nonce", &nonce)],
            )?;
        }
        Ok(())
    }
}

/// Where a [`KeystoneOpenidc`] finds its OpenID Connect provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenidcProvider {
    /// The provider's discovery document.
    pub metadata_url: String,
    /// The keys bearer tokens are verified against.
    pub jwks_url: String,
    /// The CA the provider's HTTPS certificate chains to, when the system's store does not
    /// hold it (`OIDCCABundlePath`: a test's provider, which the host's store must not trust).
    pub ca_file: Option<std::path::PathBuf>,
}

/// A `keystone-openidc` subordinate. On each keystone-fid-service-provider relation it reads
/// where its principal says Keystone is (`hostname`, `port`, `tls-enabled`, JSON-encoded) and
/// sends `protocol-name`, `remote-id-attribute` and `restart-nonce`, JSON-encoded, as the real
/// charm does. Given its principal's `/etc/apache2`, it first writes its Apache file there as
/// the real charm's template renders it for bearer tokens (`AuthType auth-openidc`, keys from
/// the provider's JWKS; and, beyond the template, the provider's CA when given), enables
/// `auth_openidc`, and asks for a restart with a new nonce
/// whenever the file changed; when the relation is broken it removes both.
pub struct KeystoneOpenidc {
    pub protocol: String,
    pub remote_id_attribute: String,
    /// The identity provider's id in Keystone.
    pub idp: String,
    pub provider: Option<OpenidcProvider>,
    /// Each of this application's units' principal's `/etc/apache2` (none: nothing is written).
    pub apache_dirs: BTreeMap<String, std::path::PathBuf>,
    /// The restart nonce's counter (0: no nonce sent); a test raises it to ask for a restart.
    pub nonce: Arc<Mutex<u32>>,
    /// What each unit's principal told it, by this application's unit.
    pub told: Arc<Mutex<BTreeMap<String, BTreeMap<String, String>>>>,
}

impl KeystoneOpenidc {
    pub fn new(idp: &str) -> KeystoneOpenidc {
        KeystoneOpenidc {
            protocol: "openid".to_owned(),
            remote_id_attribute: "HTTP_OIDC_ISS".to_owned(),
            idp: idp.to_owned(),
            provider: None,
            apache_dirs: BTreeMap::new(),
            nonce: Arc::new(Mutex::new(0)),
            told: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// The Apache file, for a principal at `scheme://hostname:port`.
    fn apache_file(&self, provider: &OpenidcProvider, base: &str) -> String {
        let (idp, protocol) = (&self.idp, &self.protocol);
        format!(
            "OIDCClaimPrefix \"OIDC-\"\nOIDCClaimDelimiter \";\"\nOIDCResponseType id_token\n\
             OIDCScope \"openid email profile\"\n\n\
             OIDCProviderMetadataURL {metadata}\n\n\
             OIDCClientID keystone\nOIDCClientSecret keystone-secret\n\
             OIDCCryptoPassphrase openidc-test-passphrase\n\
             OIDCRedirectURI {base}/v3/redirect_uri\n\n\
             OIDCOAuthVerifyJwksUri {jwks}\n{ca}\n\
             <LocationMatch /v3/redirect_uri>\n  Require valid-user\n  AuthType auth-openidc\n\
             </LocationMatch>\n\n\
             <LocationMatch /v3/OS-FEDERATION/identity_providers/{idp}/protocols/{protocol}/auth>\n\
             \x20 AuthType auth-openidc\n  Require valid-user\n</LocationMatch>\n\n\
             <Location /v3/auth/OS-FEDERATION/websso/{protocol}>\n  Require valid-user\n\
             \x20 AuthType openid-connect\n</Location>\n\
             <Location /v3/auth/OS-FEDERATION/identity_providers/{idp}/protocols/{protocol}/websso>\n\
             \x20 Require valid-user\n  AuthType openid-connect\n</Location>\n",
            metadata = provider.metadata_url,
            jwks = provider.jwks_url,
            ca = provider
                .ca_file
                .as_ref()
                .map(|path| format!("OIDCCABundlePath {}\n", path.display()))
                .unwrap_or_default(),
        )
    }

    /// Writes the Apache file and enables the module under `apache`: whether anything changed.
    fn configure(&self, apache: &std::path::Path, text: &str) -> Result<bool> {
        let file = apache.join(format!("openidc/openidc-location.{}.conf", self.idp));
        let mut changed = false;
        if std::fs::read_to_string(&file).ok().as_deref() != Some(text) {
            std::fs::create_dir_all(apache.join("openidc"))?;
            std::fs::write(&file, text)?;
            changed = true;
        }
        for part in ["load", "conf"] {
            let name = format!("auth_openidc.{part}");
            // As a2enmod links it, so it resolves on the principal's machine.
            let available = std::path::Path::new("../mods-available").join(&name);
            let enabled = apache.join("mods-enabled").join(&name);
            if apache.join("mods-available").join(&name).exists()
                && std::fs::symlink_metadata(&enabled).is_err()
            {
                std::os::unix::fs::symlink(&available, &enabled)?;
                changed = true;
            }
        }
        Ok(changed)
    }

    fn unconfigure(&self, apache: &std::path::Path) {
        let _ = std::fs::remove_file(
            apache.join(format!("openidc/openidc-location.{}.conf", self.idp)),
        );
        for part in ["load", "conf"] {
            let _ = std::fs::remove_file(apache.join(format!("mods-enabled/auth_openidc.{part}")));
        }
    }
}

impl ScriptedCharm for KeystoneOpenidc {
    fn metadata(&self) -> &str {
        "name: keystone-openidc\nsubordinate: true\nprovides:\n  keystone-fid-service-provider:\n    \
         interface: keystone-fid-service-provider\n    scope: container\n"
    }

    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> Result<()> {
        let apache = self.apache_dirs.get(&hook.unit).cloned();
        if hook.hook_name() == "keystone-fid-service-provider-relation-broken" {
            if let Some(apache) = &apache {
                self.unconfigure(apache);
            }
            return Ok(());
        }
        for relation in hook.relation_ids("keystone-fid-service-provider")? {
            let Some(principal) = hook.relation_list(&relation)?.into_iter().next() else {
                continue;
            };
            let bag = hook.relation_get(&relation, &principal, false)?;
            self.told
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(hook.unit.clone(), bag.clone());
            let decoded = |key: &str| -> Option<serde_json::Value> {
                serde_json::from_str(bag.get(key)?).ok()
            };
            if let (Some(apache), Some(provider), Some(host), Some(port), Some(tls)) = (
                &apache,
                &self.provider,
                decoded("hostname"),
                decoded("port"),
                decoded("tls-enabled"),
            ) {
                let scheme = if tls == serde_json::Value::Bool(true) {
                    "https"
                } else {
                    "http"
                };
                let host = host.as_str().unwrap_or_default();
                let text = self.apache_file(provider, &format!("{scheme}://{host}:{port}"));
                if self.configure(apache, &text)? {
                    *self.nonce.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                }
            }
            let json = |value: &str| serde_json::Value::from(value).to_string();
            let mut settings = vec![
                ("protocol-name", json(&self.protocol)),
                ("remote-id-attribute", json(&self.remote_id_attribute)),
            ];
            let nonce = *self.nonce.lock().unwrap_or_else(|p| p.into_inner());
            if nonce > 0 {
                settings.push(("restart-nonce", json(&nonce.to_string())));
            }
            let settings: Vec<(&str, &str)> =
                settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
            hook.relation_set(&relation, false, &settings)?;
        }
        Ok(())
    }
}
