//! The `identity-service` relation (interface `keystone`): an OpenStack service registers its
//! catalog entry and gets a service user, as the classic charms ask for it in their unit bags.
//!
//! Requests ([`parse_request`]), from the remote units' bags:
//! - single: `service`, `region`, `public_url`, `admin_url`, `internal_url`;
//! - multi-endpoint: the same fields prefixed by an endpoint name (`nova_service`, `nova_public_url`,
//!   `ec2_service`, ...), one service user for all, named by the sorted service names joined by `_`;
//! - "None" (Horizon): the single keys with the value `None`: no user and no catalog entry, a
//!   reduced reply;
//! - with `requested_roles` (created, and granted to the service user on the service project) and
//!   `add_role_to_admin` (granted to the admin user on the admin project).
//!
//! The leader ensures the objects in Keystone ([`objects`]), then records the reply for the
//! relation in the peer application bag (the password in the shared service-passwords secret);
//! every unit, the leader included, publishes that same reply in its own bag ([`reply`] has the
//! keys the Python charm sends). A request naming an unknown service, or holding a value that
//! could not be used safely, is refused with an ERROR naming the relation; the rest is served.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::event::{Endpoint, Event};
use crate::identity::{
    self, ADMIN_DOMAIN, ADMIN_PROJECT, Ensured, IdentityObject, SERVICE_DOMAIN, SERVICE_ROLE,
};
use crate::juju::{Bag, Databag, RelationId};
use crate::keystone_api::{DEFAULT_DOMAIN_ID, DomainRef, Interface, PasswordCredentials};
use crate::relations::cluster;
use crate::relations::consumers::{self, API_VERSION, Location, Passwords};
use crate::secret::Sensitive;
use crate::step::{Condition, Hook};

pub const ENDPOINT: Endpoint = Endpoint::IdentityService;

/// The services a consumer may register: name, catalog type and description (the Python charm's
/// list, so every charm that registered with it registers here).
pub const SERVICES: [(&str, &str, &str); 43] = [
    ("aodh", "alarming", "Alarming service"),
    ("astara", "astara", "Astara network orchestration"),
    ("barbican", "key-manager", "Key manager"),
    ("ceilometer", "metering", "Telemetry metering"),
    ("cinder", "volume", "Block storage"),
    ("cinderv2", "volumev2", "Block storage, API v2"),
    ("cinderv3", "volumev3", "Block storage, API v3"),
    ("cloudkitty", "rating", "Rating service"),
    ("congress", "policy", "Policy service"),
    ("contrail-analytics", "OpServer", "Contrail analytics"),
    ("contrail-api", "ApiServer", "Contrail API"),
    ("designate", "dns", "DNS service"),
    ("dmapi", "datamover", "Data mover API"),
    ("ec2", "ec2", "EC2 compatibility"),
    ("glance", "image", "Image service"),
    ("gnocchi", "metric", "Metric service"),
    ("heat", "orchestration", "Orchestration"),
    ("heat-cfn", "cloudformation", "CloudFormation compatibility"),
    ("image-stream", "product-streams", "Image product streams"),
    ("ironic", "baremetal", "Bare metal provisioning"),
    ("keystone", "identity", "Keystone Identity Service"),
    ("magnum", "container-infra", "Container infrastructure"),
    ("manila", "share", "Shared file systems"),
    ("manilav2", "sharev2", "Shared file systems, API v2"),
    ("masakari", "instance-ha", "Instance high availability"),
    ("midonet", "network-overlay", "MidoNet overlay"),
    ("mistral", "workflowv2", "Workflow service"),
    ("murano", "application-catalog", "Application catalog"),
    ("nbosdmapi", "datamoverapi", "Data mover API (NBOS)"),
    ("neutron", "network", "Networking"),
    ("nova", "compute", "Nova Compute Service"),
    ("nova-volume", "volume", "Nova volumes"),
    ("octavia", "load-balancer", "Load balancing"),
    ("oxygen", "oxygen", "Oxygen service"),
    ("panko", "event", "Event service"),
    ("placement", "placement", "Placement service"),
    ("quantum", "network", "Networking (quantum)"),
    ("s3", "s3", "S3 compatibility"),
    ("swift", "object-store", "Object storage"),
    ("trove", "database", "Database service"),
    ("watcher", "infra-optim", "Infrastructure optimisation"),
    ("workloadmgr", "workloads", "Workload manager"),
    ("zaqar", "messaging", "Messaging service"),
];

/// The catalog type and description of a known service.
pub fn service_info(name: &str) -> Option<(&'static str, &'static str)> {
    SERVICES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, d)| (*t, *d))
}

/// One catalog entry a consumer asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    pub service: String,
    pub public_url: String,
    pub admin_url: String,
    pub internal_url: String,
}

/// What a consumer asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Empty for the "None" form.
    pub endpoints: Vec<EndpointRequest>,
    /// The service whose type the reply names (`service`, or the first `<x>_service` key).
    pub service_type_of: Option<String>,
    pub requested_roles: Vec<String>,
    pub add_role_to_admin: Vec<String>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("unknown service {0:?} (not in the list of services Keystone registers)")]
    UnknownService(String),
    #[error("{key} is not usable: {reason}")]
    Invalid { key: String, reason: &'static str },
}

const FIELDS: [&str; 5] = [
    "service",
    "region",
    "public_url",
    "admin_url",
    "internal_url",
];

/// The request in one remote unit's bag: None while it is incomplete.
pub fn parse_request(bag: &Databag) -> Result<Option<Request>, RequestError> {
    let list = |key: &str| -> Result<Vec<String>, RequestError> {
        let Some(value) = bag.get(key).map(|v| v.trim()) else {
            return Ok(Vec::new());
        };
        if value.is_empty() || value == "None" {
            return Ok(Vec::new());
        }
        value
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|role| match plain(role, 255) {
                true => Ok(role.to_owned()),
                false => Err(RequestError::Invalid {
                    key: key.to_owned(),
                    reason: "a role name must be one line of at most 255 characters",
                }),
            })
            .collect()
    };
    let requested_roles = list("requested_roles")?;
    let add_role_to_admin = list("add_role_to_admin")?;
    let modifiers = |endpoints, service_type_of| Request {
        endpoints,
        service_type_of,
        requested_roles: requested_roles.clone(),
        add_role_to_admin: add_role_to_admin.clone(),
    };

    // The single form (or the "None" form, when any of its values is the string None).
    let single: Vec<Option<&String>> = FIELDS.iter().map(|f| bag.get(*f)).collect();
    if single.iter().all(Option::is_some) {
        let values: Vec<&str> = single.iter().flatten().map(|v| v.trim()).collect();
        if values.contains(&"None") {
            let service = values[0];
            let known = (service != "None")
                .then(|| service.split('_').next().unwrap_or(service))
                .filter(|name| service_info(name).is_some())
                .map(str::to_owned);
            return Ok(Some(modifiers(Vec::new(), known)));
        }
        let endpoint = endpoint_request("", bag)?;
        let service = endpoint.service.clone();
        return Ok(Some(modifiers(vec![endpoint], Some(service))));
    }

    // The multi-endpoint form: every complete group of prefixed fields.
    let mut prefixes = BTreeSet::new();
    for key in bag.keys() {
        if let Some((prefix, field)) = key.split_once('_')
            && FIELDS.contains(&field)
        {
            prefixes.insert(prefix.to_owned());
        }
    }
    let mut endpoints = Vec::new();
    let mut type_of = None;
    for prefix in prefixes {
        let complete = FIELDS
            .iter()
            .all(|f| bag.contains_key(&format!("{prefix}_{f}")));
        if !complete {
            continue;
        }
        let endpoint = endpoint_request(&format!("{prefix}_"), bag)?;
        type_of.get_or_insert_with(|| endpoint.service.clone());
        endpoints.push(endpoint);
    }
    if endpoints.is_empty() {
        return Ok(None);
    }
    Ok(Some(modifiers(endpoints, type_of)))
}

/// One line, printable, not too long.
fn plain(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max && !value.chars().any(char::is_control)
}

fn endpoint_request(prefix: &str, bag: &Databag) -> Result<EndpointRequest, RequestError> {
    let get = |field: &str| bag.get(&format!("{prefix}{field}")).map(|v| v.trim());
    let service = get("service").unwrap_or_default();
    if service_info(service).is_none() {
        return Err(RequestError::UnknownService(service.to_owned()));
    }
    let url = |field: &str| -> Result<String, RequestError> {
        let value = get(field).unwrap_or_default();
        let scheme_ok = value.starts_with("http://") || value.starts_with("https://");
        if scheme_ok && plain(value, 1024) && !value.contains(char::is_whitespace) {
            Ok(value.to_owned())
        } else {
            Err(RequestError::Invalid {
                key: format!("{prefix}{field}"),
                reason: "an endpoint URL must be one http:// or https:// URL without spaces",
            })
        }
    };
    Ok(EndpointRequest {
        service: service.to_owned(),
        public_url: url("public_url")?,
        admin_url: url("admin_url")?,
        internal_url: url("internal_url")?,
    })
}

/// The first complete request among the remote units' bags (they normally all send the same).
pub fn request_of(bags: &[(String, Databag)]) -> Result<Option<Request>, RequestError> {
    for (_, bag) in bags {
        if let Some(request) = parse_request(bag)? {
            return Ok(Some(request));
        }
    }
    Ok(None)
}

/// What the leader's objects need from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Settings {
    pub service_tenant: String,
    pub admin_role: String,
    pub admin_user: String,
    pub regions: Vec<String>,
    pub user_prefix: Option<String>,
}

impl Settings {
    pub fn of(config: &crate::config::Config) -> Settings {
        Settings {
            service_tenant: config.service_tenant.clone(),
            admin_role: config.admin_role.clone(),
            admin_user: config.admin_user.clone(),
            regions: config.regions.clone(),
            user_prefix: config.service_admin_prefix.clone(),
        }
    }
}

/// The service user of a request (None for the "None" form): the service, or the sorted
/// service names joined by `_` (stable whatever order the keys come in: bug 1739409), after
/// `service-admin-prefix`.
pub fn service_user(request: &Request, settings: &Settings) -> Option<String> {
    if request.endpoints.is_empty() {
        return None;
    }
    let mut names: Vec<&str> = request
        .endpoints
        .iter()
        .map(|e| e.service.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    Some(format!(
        "{}{}",
        settings.user_prefix.as_deref().unwrap_or_default(),
        names.join("_")
    ))
}

/// The objects Keystone must hold for `request`, in an order where each only uses objects
/// before it: the domains and projects the reply names, the roles, each service and its
/// endpoints in every region, the service user (in `default` and `service_domain`, as the
/// Python charm makes it) with its grants, and the admin user's extra roles.
pub fn objects(
    request: &Request,
    settings: &Settings,
    user: Option<(&str, &Sensitive<String>)>,
) -> Vec<IdentityObject> {
    let tenant = settings.service_tenant.as_str();
    let mut objects = vec![
        IdentityObject::Domain {
            name: DEFAULT_DOMAIN_ID.to_owned(),
        },
        IdentityObject::Domain {
            name: ADMIN_DOMAIN.to_owned(),
        },
        IdentityObject::Domain {
            name: SERVICE_DOMAIN.to_owned(),
        },
        IdentityObject::Project {
            domain: ADMIN_DOMAIN.to_owned(),
            name: ADMIN_PROJECT.to_owned(),
        },
        IdentityObject::ExistingUser {
            domain: ADMIN_DOMAIN.to_owned(),
            name: settings.admin_user.clone(),
        },
        IdentityObject::Role {
            name: settings.admin_role.clone(),
        },
    ];
    for role in request
        .requested_roles
        .iter()
        .chain(&request.add_role_to_admin)
    {
        objects.push(IdentityObject::Role { name: role.clone() });
    }
    for role in &request.add_role_to_admin {
        objects.push(IdentityObject::ProjectGrant {
            user_domain: ADMIN_DOMAIN.to_owned(),
            user: settings.admin_user.clone(),
            project_domain: ADMIN_DOMAIN.to_owned(),
            project: ADMIN_PROJECT.to_owned(),
            role: role.clone(),
        });
    }
    for endpoint in &request.endpoints {
        let (service_type, description) = service_info(&endpoint.service).unwrap_or(("", "")); // parse_request checked it
        objects.push(IdentityObject::Service {
            name: endpoint.service.clone(),
            service_type: service_type.to_owned(),
            description: description.to_owned(),
        });
        for region in &settings.regions {
            objects.push(IdentityObject::Region { id: region.clone() });
            objects.push(IdentityObject::Endpoints {
                service: endpoint.service.clone(),
                service_type: service_type.to_owned(),
                region: region.clone(),
                urls: vec![
                    (Interface::Public, endpoint.public_url.clone()),
                    (Interface::Admin, endpoint.admin_url.clone()),
                    (Interface::Internal, endpoint.internal_url.clone()),
                ],
            });
        }
    }
    let Some((user, password)) = user else {
        return objects;
    };
    objects.push(IdentityObject::Role {
        name: SERVICE_ROLE.to_owned(),
    });
    for domain in [DEFAULT_DOMAIN_ID, SERVICE_DOMAIN] {
        objects.push(IdentityObject::Project {
            domain: domain.to_owned(),
            name: tenant.to_owned(),
        });
        objects.push(IdentityObject::User {
            domain: domain.to_owned(),
            name: user.to_owned(),
            password: password.clone(),
        });
        objects.push(IdentityObject::ProjectGrant {
            user_domain: domain.to_owned(),
            user: user.to_owned(),
            project_domain: domain.to_owned(),
            project: tenant.to_owned(),
            role: settings.admin_role.clone(),
        });
    }
    let service_grant = |role: &str| IdentityObject::ProjectGrant {
        user_domain: SERVICE_DOMAIN.to_owned(),
        user: user.to_owned(),
        project_domain: SERVICE_DOMAIN.to_owned(),
        project: tenant.to_owned(),
        role: role.to_owned(),
    };
    objects.push(service_grant(SERVICE_ROLE));
    for role in &request.requested_roles {
        objects.push(service_grant(role));
    }
    objects
}

/// The reply, as the Python charm sends it (the password left out: every unit adds it from the
/// shared secret). Keys mapped to None are deleted.
pub fn reply(
    request: &Request,
    settings: &Settings,
    user: Option<&str>,
    ensured: &Ensured,
    at: &Location,
) -> BTreeMap<String, Option<String>> {
    let ids = &ensured.ids;
    let id = |value: Option<&str>| value.map(str::to_owned);
    let mut reply: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut set = |key: &str, value: Option<String>| {
        reply.insert(key.to_owned(), value);
    };
    set("auth_host", Some(at.admin_host.clone()));
    set("service_host", Some(at.public_host.clone()));
    set("internal_host", Some(at.internal_host.clone()));
    set("auth_port", Some(at.admin_port.to_string()));
    set("service_port", Some(at.service_port.to_string()));
    set("internal_port", Some(at.service_port.to_string()));
    for key in ["auth_protocol", "service_protocol", "internal_protocol"] {
        set(key, Some(at.protocol.to_owned()));
    }
    set("api_version", Some(API_VERSION.to_owned()));
    set("admin_domain_id", id(ids.domain(ADMIN_DOMAIN)));
    let created: Vec<String> = request
        .requested_roles
        .iter()
        .filter_map(|role| ids.role_name(role).map(str::to_owned))
        .collect();
    set("created_roles", Some(created.join(",")));
    set(
        "service_type",
        request
            .service_type_of
            .as_deref()
            .and_then(service_info)
            .map(|(t, _)| t.to_owned()),
    );
    for (key, value) in at.tls_keys() {
        set(key, value);
    }
    let Some(user) = user else {
        set("region", Some(at.region.clone()));
        return reply;
    };
    let tenant = &settings.service_tenant;
    set("service_username", Some(user.to_owned()));
    set("service_user_id", id(ids.user(SERVICE_DOMAIN, user)));
    set("service_domain", Some(SERVICE_DOMAIN.to_owned()));
    set("service_domain_id", id(ids.domain(SERVICE_DOMAIN)));
    set("service_tenant", Some(tenant.clone()));
    set("service_tenant_id", id(ids.project(SERVICE_DOMAIN, tenant)));
    set(
        "admin_project_id",
        id(ids.project(ADMIN_DOMAIN, ADMIN_PROJECT)),
    );
    set(
        "admin_user_id",
        id(ids.user(ADMIN_DOMAIN, &settings.admin_user)),
    );
    set("admin_role", Some(settings.admin_role.clone()));
    reply
}

/// What the leader records for a relation, for every unit to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    /// Of the request and every input of the reply: the same digest, nothing to do.
    digest: String,
    /// The service user, whose password every unit adds to the reply.
    user: Option<String>,
    reply: BTreeMap<String, Option<String>>,
}

fn record_key(relation: &RelationId) -> String {
    format!("{RECORD_PREFIX}{}", relation.as_str())
}

/// Peer application bag keys: `identity-service:<relation id>`.
const RECORD_PREFIX: &str = "identity-service:";

/// Step: the leader serves the requests (in Keystone, then in its records); every unit publishes
/// the recorded replies in its own bags.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let Some((peer, peer_bag)) = cluster::app_data(hook.juju)? else {
        return Ok(Vec::new());
    };
    if hook.leader && consumers::is_broken(hook, ENDPOINT) {
        forget(hook, &peer)?;
    }
    let gate = consumers::may_serve(hook)?;
    let settings = Settings::of(&hook.config);
    let inputs = |bag: &Databag, address: Option<String>| consumers::Inputs {
        digest: consumers::digest(&[&gate, &settings, &consumers::records(bag, RECORD_PREFIX)]),
        address,
    };
    // The address is read only where it can have changed, and only once serving is possible.
    let address = match gate && *hook.event != Event::UpdateStatus {
        true => Location::unit_address(hook)?,
        false => None,
    };
    let Some(relations) =
        consumers::relations_to_serve(hook, ENDPOINT, &inputs(&peer_bag, address.clone()))?
    else {
        return Ok(Vec::new());
    };
    let address = match (gate, address) {
        (true, None) => Location::unit_address(hook)?,
        (_, address) => address,
    };
    if gate {
        let location = Location::of(hook, address.as_deref());
        let mut passwords = Passwords::read(hook, &peer_bag)?;
        if hook.leader {
            for relation in &relations {
                serve(
                    hook,
                    relation,
                    &peer_bag,
                    &settings,
                    &location,
                    &mut passwords,
                )?;
            }
            passwords.store(hook, &peer, &peer_bag)?;
        }
        // What is recorded now (the leader may have just recorded it).
        let recorded = cluster::app_data(hook.juju)?
            .map(|(_, bag)| bag)
            .unwrap_or_default();
        for relation in &relations {
            publish(hook, relation, &recorded, &passwords)?;
        }
    }
    let recorded = cluster::app_data(hook.juju)?
        .map(|(_, bag)| bag)
        .unwrap_or_default();
    consumers::remember(hook, ENDPOINT, &inputs(&recorded, address))?;
    Ok(Vec::new())
}

/// Publishes the leader's record of `relation` in this unit's bag, with the service user's
/// password.
fn publish(
    hook: &Hook<'_>,
    relation: &RelationId,
    peer_bag: &Databag,
    passwords: &Passwords,
) -> Result<()> {
    let Some(text) = peer_bag.get(&record_key(relation)) else {
        return Ok(());
    };
    let record: Record = serde_json::from_str(text).with_context(|| {
        format!("the record of {relation} in the cluster relation is not valid JSON")
    })?;
    let mut reply = record.reply;
    if let Some(user) = &record.user {
        let password = passwords
            .get(user)
            .with_context(|| format!("the password of {user} is missing from the shared secret"))?;
        reply.insert(
            "service_password".to_owned(),
            Some(password.expose().clone()),
        );
    }
    consumers::publish(hook, relation, &reply)
}

/// The leader serves one relation: reads the request, ensures its objects when anything it
/// depends on changed, and records the reply.
fn serve(
    hook: &mut Hook<'_>,
    relation: &RelationId,
    peer_bag: &Databag,
    settings: &Settings,
    location: &Location,
    passwords: &mut Passwords,
) -> Result<()> {
    let mut bags = Vec::new();
    for unit in hook
        .juju
        .relation_units(relation)
        .with_context(|| format!("cannot list the units of {relation}"))?
    {
        let bag = hook
            .juju
            .relation_data(relation, &Bag::Unit(unit.clone()))
            .with_context(|| format!("cannot read {unit}'s data on {relation}"))?;
        bags.push((unit.to_string(), bag));
    }
    let request = match request_of(&bags) {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(()),
        Err(err) => {
            tracing::error!("{relation}: request refused: {err}");
            return Ok(());
        }
    };
    let user = service_user(&request, settings);
    let password = match &user {
        Some(user) => Some(passwords.ensure(hook, user)?),
        None => None,
    };
    let digest = consumers::digest(&[
        &request,
        settings,
        location,
        &user,
        &password.as_ref().map(|p| consumers::digest(&[p.expose()])),
    ]);
    let key = record_key(relation);
    let previous: Option<Record> = peer_bag
        .get(&key)
        .and_then(|text| serde_json::from_str(text).ok());
    if previous.as_ref().is_some_and(|r| r.digest == digest) {
        return Ok(());
    }
    if !consumers::every_unit_ready(hook)? {
        tracing::info!(
            "{relation}: waiting for every unit to hold the current keys before serving it"
        );
        return Ok(());
    }
    let credentials = charm_admin(hook, peer_bag)?;
    let objects = objects(&request, settings, user.as_deref().zip(password.as_ref()));
    let api = hook.keystone_as(&credentials)?;
    let ensured = identity::ensure_objects(api, &objects)
        .with_context(|| format!("cannot set up what {relation} asked for in Keystone"))?;
    for outcome in &ensured.outcomes {
        if outcome.change != crate::keystone_api::Change::Unchanged {
            tracing::info!(
                "{relation}: Keystone: {} {:?}",
                outcome.object,
                outcome.change
            );
        }
    }
    let record = Record {
        digest,
        user: user.clone(),
        reply: reply(&request, settings, user.as_deref(), &ensured, location),
    };
    let text = serde_json::to_string(&record).context("cannot encode a reply record")?;
    let peer = cluster::relation(hook.juju)?.context("the cluster relation vanished")?;
    cluster::set_shared(hook.juju, &peer, &[(key.as_str(), Some(text))])
}

/// The charm's own admin user, as it logs in to Keystone.
fn charm_admin(hook: &Hook<'_>, peer_bag: &Databag) -> Result<PasswordCredentials> {
    let stored = cluster::admin_credentials(hook.juju, peer_bag)?
        .context("the admin credentials are missing from the cluster relation")?;
    Ok(PasswordCredentials {
        user_name: identity::CHARM_ADMIN_USER.to_owned(),
        user_domain: DomainRef::Id(DEFAULT_DOMAIN_ID.to_owned()),
        password: stored.charm_password,
    })
}

/// The relation is gone: its record goes too (its user stays, as the Python charm leaves it,
/// so a consumer related again gets the same password).
fn forget(hook: &Hook<'_>, peer: &RelationId) -> Result<()> {
    let Some(relation) = hook.juju.relation_id() else {
        return Ok(());
    };
    cluster::set_shared(hook.juju, peer, &[(record_key(&relation).as_str(), None)])
}

#[cfg(test)]
mod tests;
