//! The `identity-credentials` relation (interface `keystone-credentials`): a user and a project
//! for a consumer that needs no catalog entry (ceilometer, nova-compute, the service checks).
//!
//! The consumer sends `username`, and optionally `project` (default `service-tenant`), `domain`
//! (default `service_domain`), `requested_roles` and `requested_grants` (default `admin-role`).
//! The leader makes the domain, project and user, grants the roles on the project and records
//! the reply; every unit publishes it, every key in one relation-set (the reactive interface
//! calls the relation available before it reads the password).

use anyhow::Result;

use crate::event::Endpoint;
use crate::identity::{IdentityObject, SERVICE_DOMAIN};
use crate::juju::{Databag, RelationId};
use crate::relations::consumers::{self, API_VERSION, Location, Passwords, Record, Reply};
use crate::step::{Condition, Hook};

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
        IdentityObject::User {
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

/// The reply, as the Python charm sends it (the password left out: every unit adds it).
pub fn reply(request: &Request, ensured: &crate::identity::Ensured, at: &Location) -> Reply {
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

/// Peer application bag keys of the leader's records.
const RECORDS: &str = "identity-credentials:";

/// The endpoint, for [`consumers::run`].
pub struct IdentityCredentials;

/// Step: see the module documentation.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    consumers::run::<IdentityCredentials>(hook)
}

impl consumers::IdentityEndpoint for IdentityCredentials {
    const ENDPOINT: Endpoint = ENDPOINT;
    const RECORDS: &'static str = RECORDS;

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
        let mut request = None;
        for (_, bag) in consumers::remote_bags(hook, relation)? {
            match parse_request(&bag, &hook.config) {
                Ok(Some(found)) => {
                    request = Some(found);
                    break;
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::error!("{relation}: request refused: {err}");
                    return Ok(());
                }
            }
        }
        let Some(request) = request else {
            return Ok(());
        };
        let password = passwords.ensure(hook, &request.username)?;
        let digest =
            consumers::digest(&[&request, location, &consumers::digest(&[password.expose()])]);
        if Record::is_current(RECORDS, relation, peer_bag, &digest) {
            return Ok(());
        }
        if !consumers::every_unit_ready(hook)? {
            tracing::info!(
                "{relation}: waiting for every unit to hold the current keys before serving it"
            );
            return Ok(());
        }
        let ensured = consumers::ensure(hook, relation, peer_bag, &objects(&request, &password))?;
        Record {
            digest,
            user: Some((request.username.clone(), "credentials_password".to_owned())),
            reply: reply(&request, &ensured, location),
        }
        .store(hook, RECORDS, relation)
    }

    fn reply(
        _hook: &Hook<'_>,
        relation: &RelationId,
        peer_bag: &Databag,
        _location: &Location,
        passwords: &Passwords,
    ) -> Result<Option<Reply>> {
        Record::read(RECORDS, relation, peer_bag)?
            .map(|record| record.reply_with_password(passwords))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystone_api::{DomainRef, KeystoneApi as _, PasswordCredentials, Scope};
    use crate::testing::Sim;
    use juju_sim::scripted::{IdentityConsumer, IdentityInterface};

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
