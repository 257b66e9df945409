//! The `identity-credentials` relation (interface `keystone-credentials`): a user and a project
//! for a consumer that needs no catalog entry (ceilometer, nova-compute, the service checks).
//!
//! The consumer sends `username`, and optionally `project` (default `service-tenant`), `domain`
//! (default `service_domain`), `requested_roles` and `requested_grants` (default `admin-role`).
//! The leader makes the domain, project and user, grants the roles on the project and records
//! the reply; every unit publishes it, every key in one relation-set (the reactive interface
//! calls the relation available before it reads the password).
//!
//! A Sunbeam-style consumer sends `username` in its application bag: the same objects are made,
//! the credentials go in an application secret granted to the relation, and the reply keys
//! (`credentials` with the secret's id, hyphenated names) in the keystone application bag, all in
//! one hook.

use anyhow::{Context as _, Result};

use crate::event::Endpoint;
use crate::identity::{IdentityObject, SERVICE_DOMAIN};
use crate::juju::{Databag, RelationId};
use crate::peer_keys;
use crate::relations::consumers::{self, API_VERSION, AppRecord, Location, Record, Reply};
use crate::relations::service_passwords::Passwords;
use crate::step::{Condition, Hook, Step};

pub const ENDPOINT: Endpoint = Endpoint::IdentityCredentials;

/// What a consumer asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub username: String,
    pub project: String,
    pub domain: String,
    pub roles: Vec<String>,
    pub grants: Vec<String>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} is not usable: a name must be one line of at most 255 characters")]
pub struct RequestError {
    pub key: &'static str,
}

/// The request in one remote unit's bag: None until it names a user.
pub fn parse_request(
    bag: &Databag,
    config: &crate::config::Config,
) -> Result<Option<Request>, RequestError> {
    let name = |key: &'static str, default: &str| -> Result<String, RequestError> {
        match bag.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(default.to_owned()),
            Some(value) if plain(value) => Ok(value.to_owned()),
            Some(_) => Err(RequestError { key }),
        }
    };
    let list = |key: &'static str, default: &[String]| -> Result<Vec<String>, RequestError> {
        let Some(value) = bag
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty() && *v != "None")
        else {
            return Ok(default.to_vec());
        };
        value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| match plain(v) {
                true => Ok(v.to_owned()),
                false => Err(RequestError { key }),
            })
            .collect()
    };
    let username = name("username", "")?;
    if username.is_empty() {
        return Ok(None);
    }
    Ok(Some(Request {
        username,
        project: name("project", &config.service_tenant)?,
        domain: name("domain", SERVICE_DOMAIN)?,
        roles: list("requested_roles", &[])?,
        grants: list("requested_grants", std::slice::from_ref(&config.admin_role))?,
    }))
}

fn plain(value: &str) -> bool {
    value.len() <= 255 && !value.chars().any(char::is_control)
}

/// What Keystone must hold: the domain, the project, the user with its password, the roles, and
/// the grants on the project.
pub fn objects(
    request: &Request,
    password: &crate::secret::Sensitive<String>,
) -> Vec<IdentityObject> {
    let mut objects = vec![
        IdentityObject::Domain {
            name: request.domain.clone(),
        },
        IdentityObject::Project {
            domain: request.domain.clone(),
            name: request.project.clone(),
        },
        IdentityObject::ServiceUser {
            domain: request.domain.clone(),
            name: request.username.clone(),
            password: password.clone(),
        },
    ];
    let mut roles: Vec<&String> = request.grants.iter().chain(&request.roles).collect();
    roles.dedup();
    for role in roles {
        objects.push(IdentityObject::Role { name: role.clone() });
        objects.push(IdentityObject::ProjectGrant {
            user_domain: request.domain.clone(),
            user: request.username.clone(),
            project_domain: request.domain.clone(),
            project: request.project.clone(),
            role: role.clone(),
        });
    }
    objects
}

/// Everything a reply of either form is built from but the ids Keystone returns. The
/// relation's record keeps its digest, so a change to any of it serves the relation again; the
/// replies read nothing else.
#[derive(Debug)]
pub struct ReplyInputs<'a> {
    pub request: &'a Request,
    pub at: &'a Location,
    /// The password's digest: a new password is a new reply.
    pub password: String,
    /// Named in the Sunbeam reply.
    pub admin_role: String,
}

impl<'a> ReplyInputs<'a> {
    pub fn new(
        request: &'a Request,
        at: &'a Location,
        password: &crate::secret::Sensitive<String>,
        config: &crate::config::Config,
    ) -> ReplyInputs<'a> {
        ReplyInputs {
            request,
            at,
            password: consumers::digest(&[password.expose()]),
            admin_role: config.admin_role.clone(),
        }
    }

    pub fn digest(&self) -> String {
        consumers::digest(&[self])
    }
}

/// The reply, as the Python charm sends it (the password left out: every unit adds it).
pub fn reply(inputs: &ReplyInputs<'_>, ensured: &crate::identity::Ensured) -> Reply {
    let (request, at) = (inputs.request, inputs.at);
    let ids = &ensured.ids;
    let domain_id = ids.domain(&request.domain).map(str::to_owned);
    let mut reply = Reply::new();
    let mut set = |key: &str, value: Option<String>| {
        reply.insert(key.to_owned(), value);
    };
    set("auth_host", Some(at.admin_host.clone()));
    set("auth_port", Some(at.admin_port.to_string()));
    set("auth_protocol", Some(at.protocol.to_owned()));
    set("credentials_host", Some(at.public_host.clone()));
    set("credentials_port", Some(at.service_port.to_string()));
    set("credentials_protocol", Some(at.protocol.to_owned()));
    set("credentials_username", Some(request.username.clone()));
    set("credentials_project", Some(request.project.clone()));
    set(
        "credentials_project_id",
        ids.project(&request.domain, &request.project)
            .map(str::to_owned),
    );
    set("api_version", Some(API_VERSION.to_owned()));
    set("region", Some(at.region.clone()));
    set("domain", Some(request.domain.clone()));
    set("credentials_user_domain_name", Some(request.domain.clone()));
    set("credentials_user_domain_id", domain_id.clone());
    set(
        "credentials_project_domain_name",
        Some(request.domain.clone()),
    );
    set("credentials_project_domain_id", domain_id);
    for (key, value) in at.tls_keys() {
        set(key, value);
    }
    reply
}

/// A Sunbeam-style request (`username` in the remote application bag), if any: served in
/// Keystone, in a secret and in the keystone application bag.
fn serve_app(
    hook: &mut Hook<'_>,
    relation: &RelationId,
    peer_bag: &Databag,
    location: &Location,
    passwords: &mut Passwords,
) -> Result<()> {
    let Some(remote) = hook
        .juju
        .relation_remote_app(relation)
        .with_context(|| format!("cannot tell which application {relation} relates to"))?
    else {
        return Ok(());
    };
    let bag = hook
        .juju
        .relation_data(relation, &crate::juju::Bag::App(remote.clone()))
        .with_context(|| format!("cannot read {remote}'s data on {relation}"))?;
    let request = match parse_request(&bag, &hook.config) {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(()),
        Err(err) => {
            tracing::error!("{relation}: request refused: {err}");
            return Ok(());
        }
    };
    if !hook.juju.supports_secrets() {
        tracing::warn!(
            "{relation}: {remote} asks for its credentials in a Juju secret, which needs Juju 3.1 or later"
        );
        return Ok(());
    }
    let password = passwords.ensure(hook, &request.username)?;
    let previous = AppRecord::read(
        peer_keys::IDENTITY_CREDENTIALS_APP_RECORDS,
        relation,
        peer_bag,
    );
    let inputs = ReplyInputs::new(&request, location, &password, &hook.config);
    let digest = inputs.digest();
    if previous.as_ref().is_some_and(|r| r.digest == digest) {
        return Ok(());
    }
    let ensured = consumers::ensure(hook, relation, peer_bag, &objects(&request, &password))?;
    let secret = consumers::credentials_secret(
        hook,
        relation,
        &remote,
        previous.and_then(|r| r.secret),
        &request.username,
        &password,
    )?;
    let reply = app_reply(&inputs, &ensured, secret.as_str());
    hook.juju
        .relation_set(relation, true, &reply)
        .with_context(|| format!("cannot send the reply on {relation}"))?;
    AppRecord {
        digest,
        secret: Some(secret.to_string()),
        user: request.username.clone(),
    }
    .store(hook, peer_keys::IDENTITY_CREDENTIALS_APP_RECORDS, relation)
}

/// The Sunbeam-style reply, in the keystone application bag.
pub fn app_reply(
    inputs: &ReplyInputs<'_>,
    ensured: &crate::identity::Ensured,
    secret: &str,
) -> Reply {
    let (request, at) = (inputs.request, inputs.at);
    let ids = &ensured.ids;
    let domain_id = ids.domain(&request.domain).map(str::to_owned);
    let mut pairs = at.sunbeam_keys();
    pairs.extend([
        ("credentials", Some(secret.to_owned())),
        ("project-name", Some(request.project.clone())),
        (
            "project-id",
            ids.project(&request.domain, &request.project)
                .map(str::to_owned),
        ),
        ("user-domain-name", Some(request.domain.clone())),
        ("user-domain-id", domain_id.clone()),
        ("project-domain-name", Some(request.domain.clone())),
        ("project-domain-id", domain_id),
        ("region", Some(at.region.clone())),
        (
            "internal-endpoint",
            Some(at.url(&at.internal_host, at.service_port)),
        ),
        (
            "public-endpoint",
            Some(at.url(&at.public_host, at.service_port)),
        ),
        ("admin-role", Some(inputs.admin_role.clone())),
    ]);
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The endpoint, for [`consumers::run`].
pub struct IdentityCredentials;

/// The identity-credentials step: [`run`].
pub const STEP: Step =
    Step::new("identity-credentials", run).reads(crate::relations::consumers::READS);

/// Step: see the module documentation.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    consumers::run::<IdentityCredentials>(hook)
}

impl consumers::IdentityEndpoint for IdentityCredentials {
    const ENDPOINT: Endpoint = ENDPOINT;
    const RECORDS: &'static str = peer_keys::IDENTITY_CREDENTIALS_RECORDS;

    const MORE_RECORDS: &'static [&'static str] = &[peer_keys::IDENTITY_CREDENTIALS_APP_RECORDS];
    const SUNBEAM_RECORDS: Option<&'static str> = Some(peer_keys::IDENTITY_CREDENTIALS_APP_RECORDS);

    fn settings(config: &crate::config::Config) -> String {
        consumers::digest(&[&config.service_tenant, &config.admin_role, &config.regions])
    }

    fn serve(
        hook: &mut Hook<'_>,
        relation: &RelationId,
        peer_bag: &Databag,
        location: &Location,
        passwords: &mut Passwords,
    ) -> Result<()> {
        let Ok(request) =
            consumers::first_request(hook, relation, |bag| parse_request(bag, &hook.config))?
        else {
            return Ok(());
        };
        serve_app(hook, relation, peer_bag, location, passwords)?;
        let Some(request) = request else {
            return Ok(());
        };
        let password = passwords.ensure(hook, &request.username)?;
        let inputs = ReplyInputs::new(&request, location, &password, &hook.config);
        let digest = inputs.digest();
        if Record::is_current(
            peer_keys::IDENTITY_CREDENTIALS_RECORDS,
            relation,
            peer_bag,
            &digest,
        ) {
            return Ok(());
        }
        let ensured = consumers::ensure(hook, relation, peer_bag, &objects(&request, &password))?;
        Record {
            digest,
            user: Some((request.username.clone(), "credentials_password".to_owned())),
            reply: reply(&inputs, &ensured),
        }
        .store(hook, peer_keys::IDENTITY_CREDENTIALS_RECORDS, relation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystone_api::{DomainRef, KeystoneApi as _, PasswordCredentials, Scope};
    use crate::testing::Sim;
    use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};

    fn config() -> crate::config::Config {
        crate::config::Config::from_options(&serde_json::Map::new()).unwrap()
    }

    fn bag(pairs: &[(&str, &str)]) -> Databag {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn requests_take_the_defaults_and_refuse_hostile_names() {
        assert_eq!(parse_request(&bag(&[]), &config()).unwrap(), None);
        let request = parse_request(&bag(&[("username", "nagios")]), &config())
            .unwrap()
            .unwrap();
        assert_eq!(request.project, "services");
        assert_eq!(request.domain, "service_domain");
        assert_eq!(request.grants, ["Admin"]);
        let request = parse_request(
            &bag(&[
                ("username", "ceilometer"),
                ("project", "telemetry"),
                ("domain", "ops"),
                ("requested_roles", "ResellerAdmin"),
                ("requested_grants", "member,reader"),
            ]),
            &config(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (request.project.as_str(), request.domain.as_str()),
            ("telemetry", "ops")
        );
        assert_eq!(request.roles, ["ResellerAdmin"]);
        assert_eq!(request.grants, ["member", "reader"]);
        assert_eq!(
            parse_request(&bag(&[("username", "a\nb")]), &config()).unwrap_err(),
            RequestError { key: "username" }
        );
    }

    /// A Sunbeam-style consumer: its leader sends `username` in its application bag.
    struct SunbeamExporter(Seen);

    impl juju_sim::scripted::ScriptedCharm for SunbeamExporter {
        fn metadata(&self) -> &str {
            "name: exporter\nrequires:\n  identity-credentials:\n    interface: keystone-credentials\n"
        }

        fn handle(
            &mut self,
            hook: &mut juju_sim::scripted::ScriptedHook<'_>,
        ) -> anyhow::Result<()> {
            let Some(relation) = hook.relation() else {
                return Ok(());
            };
            if hook.hook_name() == "identity-credentials-relation-joined" && hook.is_leader()? {
                hook.relation_set(&relation, true, &[("username", "exporter")])?;
            }
            if hook.hook_name() == "identity-credentials-relation-changed" {
                let reply: Databag = hook
                    .relation_get(&relation, "keystone", true)?
                    .into_iter()
                    .collect();
                if let Some(id) = reply.get("credentials") {
                    let out = hook.tool("secret-get", &["--format=json", id])?;
                    let content: Databag = serde_json::from_str(&out)?;
                    *self.0.lock().unwrap() = Some((reply, content));
                }
            }
            Ok(())
        }
    }

    /// What the exporter last saw: keystone's application bag and the credentials secret.
    type Seen = std::sync::Arc<std::sync::Mutex<Option<(Databag, Databag)>>>;

    /// One keystone unit related to a Sunbeam-style exporter, settled.
    fn with_exporter() -> (Sim, Seen) {
        let mut sim = Sim::ready(1);
        let seen = Seen::default();
        sim.model
            .deploy_scripted(
                "exporter",
                Box::new(SunbeamExporter(std::sync::Arc::clone(&seen))),
                1,
            )
            .unwrap();
        sim.model.relate("keystone", "exporter").unwrap();
        sim.settle();
        (sim, seen)
    }

    #[test]
    fn a_sunbeam_consumer_gets_its_credentials_in_a_secret_and_the_reply_in_the_app_bag() {
        let (sim, seen) = with_exporter();
        let (reply, secret) = seen.lock().unwrap().clone().expect("a reply");
        assert_eq!(reply["api-version"], "3");
        assert_eq!(secret["username"], "exporter");
        assert_eq!(reply["project-name"], "services");
        assert!(reply["internal-endpoint"].ends_with("/v3"));
        let credentials = PasswordCredentials {
            user_name: secret["username"].clone(),
            user_domain: DomainRef::Id(reply["user-domain-id"].clone()),
            password: crate::secret::Sensitive::new(secret["password"].clone()),
        };
        let scope = Scope::Project {
            domain: DomainRef::Id(reply["project-domain-id"].clone()),
            name: reply["project-name"].clone(),
        };
        sim.keystone
            .lock()
            .unwrap()
            .authenticate(&credentials, &scope)
            .unwrap();
    }

    /// The Sunbeam reply carries `admin-role`: a new one reaches the consumer.
    #[test]
    fn a_sunbeam_consumer_is_told_a_new_admin_role() {
        let (mut sim, seen) = with_exporter();
        let admin_role =
            |seen: &Seen| seen.lock().unwrap().clone().expect("a reply").0["admin-role"].clone();
        assert_eq!(admin_role(&seen), "Admin");
        let config = serde_json::json!({"admin-role": "cloud-admin"});
        sim.model
            .set_config("keystone", config.as_object().cloned().unwrap())
            .unwrap();
        sim.settle();
        assert_eq!(admin_role(&seen), "cloud-admin");
    }

    #[test]
    fn a_consumer_gets_every_key_in_one_reply_and_a_working_project_token() {
        let mut sim = Sim::ready(2);
        let tempest = IdentityConsumer::new("tempest", IdentityInterface::Credentials);
        let seen = tempest.replies.clone();
        sim.model
            .deploy_scripted("tempest", Box::new(tempest), 1)
            .unwrap();
        sim.model.relate("keystone", "tempest").unwrap();
        sim.settle();
        let replies = seen.lock().unwrap().get("tempest/0").cloned().unwrap();
        let reply = &replies["keystone/0"];
        for key in [
            "auth_host",
            "auth_port",
            "auth_protocol",
            "credentials_host",
            "credentials_port",
            "credentials_protocol",
            "credentials_username",
            "credentials_password",
            "credentials_project",
            "credentials_project_id",
            "api_version",
            "region",
            "domain",
            "credentials_user_domain_name",
            "credentials_user_domain_id",
            "credentials_project_domain_name",
            "credentials_project_domain_id",
        ] {
            assert!(reply.contains_key(key), "{key}: {reply:?}");
        }
        assert_eq!(
            reply.get("credentials_password"),
            replies["keystone/1"].get("credentials_password")
        );
        // All of it arrived in one relation-set.
        let id = sim
            .model
            .relation_id("tempest", "identity-credentials")
            .unwrap();
        let sets = sim
            .model
            .hook_log()
            .iter()
            .filter(|run| run.unit == "keystone/0")
            .flat_map(|run| run.tool_calls.clone())
            .filter(|call| call.starts_with(&format!("relation-set -r identity-credentials:{id}")))
            .count();
        assert_eq!(sets, 1);
        let credentials = PasswordCredentials {
            user_name: "tempest".into(),
            user_domain: DomainRef::Id(reply["credentials_user_domain_id"].clone()),
            password: crate::secret::Sensitive::new(reply["credentials_password"].clone()),
        };
        let scope = Scope::Project {
            domain: DomainRef::Name("service_domain".into()),
            name: reply["credentials_project"].clone(),
        };
        sim.keystone
            .lock()
            .unwrap()
            .authenticate(&credentials, &scope)
            .unwrap();
    }
}
