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

use crate::event::Endpoint;
use crate::identity::{
    ADMIN_DOMAIN, ADMIN_PROJECT, Ensured, IdentityObject, SERVICE_DOMAIN, SERVICE_ROLE,
};
use crate::juju::{Bag, Databag, RelationId};
use crate::keystone_api::{DEFAULT_DOMAIN_ID, Interface};
use crate::peer_keys;
use crate::relations::consumers::{self, API_VERSION, AppRecord, Location, Record, Reply};
use crate::relations::service_passwords::Passwords;
use crate::secret::Sensitive;
use crate::step::{Condition, Hook, Step};

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
    /// Services whose endpoint changes the consumer wants to hear of (`subscribe_ep_change`).
    pub subscribe: Vec<String>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(
        "unknown service {service:?} in {key} (not in the list of services Keystone registers)"
    )]
    UnknownService { key: String, service: String },
    #[error("{key} is not usable: {reason}")]
    Invalid { key: String, reason: &'static str },
}

impl RequestError {
    /// The same refusal, its key named inside `outer` (a Sunbeam request's JSON entry).
    fn inside(self, outer: &str) -> RequestError {
        match self {
            RequestError::UnknownService { key, service } => RequestError::UnknownService {
                key: format!("{outer}.{key}"),
                service,
            },
            RequestError::Invalid { key, reason } => RequestError::Invalid {
                key: format!("{outer}.{key}"),
                reason,
            },
        }
    }
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
    let subscribe: Vec<String> = bag
        .get("subscribe_ep_change")
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if subscribe.iter().any(|s| !plain(s, 255)) {
        return Err(RequestError::Invalid {
            key: "subscribe_ep_change".to_owned(),
            reason: "service names must be printable",
        });
    }
    let modifiers = |endpoints, service_type_of| Request {
        endpoints,
        service_type_of,
        requested_roles: requested_roles.clone(),
        add_role_to_admin: add_role_to_admin.clone(),
        subscribe: subscribe.clone(),
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
        return Err(RequestError::UnknownService {
            key: format!("{prefix}service"),
            service: service.to_owned(),
        });
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

/// A Sunbeam-style request, in the remote application's bag: `service-endpoints` (JSON list of
/// `service_name`, `type`, `description`, `public_url`, `admin_url`, `internal_url`), `region`
/// (where its endpoints go) and optionally `extra-roles` (JSON list of role names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRequest {
    pub endpoints: Vec<EndpointRequest>,
    pub region: String,
    pub extra_roles: Vec<String>,
}

#[derive(Deserialize)]
struct SunbeamEndpoint {
    service_name: String,
    public_url: String,
    admin_url: String,
    internal_url: String,
}

/// The request in the remote application's bag: None until `service-endpoints` and `region`
/// are both there (as the Sunbeam library reports it).
pub fn parse_app_request(bag: &Databag) -> Result<Option<AppRequest>, RequestError> {
    let (Some(endpoints), Some(region)) = (
        bag.get("service-endpoints")
            .filter(|v| !v.trim().is_empty()),
        bag.get("region")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty()),
    ) else {
        return Ok(None);
    };
    let invalid = |key: &str, reason| RequestError::Invalid {
        key: key.to_owned(),
        reason,
    };
    let listed: Vec<SunbeamEndpoint> = serde_json::from_str(endpoints).map_err(|_| {
        invalid(
            "service-endpoints",
            "must be a JSON list of objects with service_name and the three URLs",
        )
    })?;
    if !plain(region, 255) {
        return Err(invalid("region", "a region must be one line"));
    }
    let mut checked = Vec::new();
    for (i, endpoint) in listed.into_iter().enumerate() {
        // The same checks as a classic request's.
        let as_classic: Databag = [
            ("service", endpoint.service_name),
            ("public_url", endpoint.public_url),
            ("admin_url", endpoint.admin_url),
            ("internal_url", endpoint.internal_url),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        checked.push(
            endpoint_request("", &as_classic)
                .map_err(|e| e.inside(&format!("service-endpoints[{i}]")))?,
        );
    }
    if checked.is_empty() {
        return Ok(None);
    }
    let extra_roles = match bag.get("extra-roles").filter(|v| !v.trim().is_empty()) {
        None => Vec::new(),
        Some(text) => {
            let roles: Vec<String> = serde_json::from_str(text)
                .map_err(|_| invalid("extra-roles", "must be a JSON list of role names"))?;
            if roles.iter().any(|r| !plain(r, 255)) {
                return Err(invalid(
                    "extra-roles",
                    "a role name must be one line of at most 255 characters",
                ));
            }
            roles
        }
    };
    Ok(Some(AppRequest {
        endpoints: checked,
        region: region.to_owned(),
        extra_roles,
    }))
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
        objects.push(IdentityObject::ServiceUser {
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

/// Everything a classic reply is built from but the ids Keystone returns. The relation's
/// record keeps its digest, so a change to any of it serves the relation again; [`reply`]
/// reads nothing else.
#[derive(Debug)]
pub struct ReplyInputs<'a> {
    pub request: &'a Request,
    pub settings: &'a Settings,
    /// The service user; None for the "None" form and for keystone-service.
    pub user: Option<&'a str>,
    /// The service password's digest: a new password is a new reply.
    pub password: Option<String>,
    pub at: &'a Location,
    /// Endpoint changes the consumer subscribed to, sent with the reply.
    pub changes: Option<Reply>,
}

impl ReplyInputs<'_> {
    pub fn digest(&self) -> String {
        consumers::digest(&[self])
    }
}

/// The reply, as the Python charm sends it (the password left out: every unit adds it from the
/// shared secret), with the endpoint changes. Keys mapped to None are deleted.
pub fn reply(inputs: &ReplyInputs<'_>, ensured: &Ensured) -> Reply {
    let (request, settings, user, at) = (inputs.request, inputs.settings, inputs.user, inputs.at);
    let ids = &ensured.ids;
    let id = |value: Option<&str>| value.map(str::to_owned);
    let mut reply = Reply::new();
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
        reply.extend(inputs.changes.clone().unwrap_or_default());
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
    reply.extend(inputs.changes.clone().unwrap_or_default());
    reply
}

/// Records the catalog entries a relation registered: service → [public, admin, internal].
fn record_endpoints(
    hook: &Hook<'_>,
    relation: &RelationId,
    endpoints: &[EndpointRequest],
) -> Result<()> {
    let map: BTreeMap<&str, [&str; 3]> = endpoints
        .iter()
        .map(|e| {
            (
                e.service.as_str(),
                [
                    e.public_url.as_str(),
                    e.admin_url.as_str(),
                    e.internal_url.as_str(),
                ],
            )
        })
        .collect();
    let text = serde_json::to_string(&map).context("cannot encode a relation's endpoints")?;
    let key = format!(
        "{}{}",
        peer_keys::IDENTITY_SERVICE_ENDPOINTS,
        relation.as_str()
    );
    hook.peers()?.set_shared(&[(key.as_str(), Some(text))])
}

/// The classic request of a relation: ensured in Keystone and recorded for every unit.
fn serve_classic(
    hook: &mut Hook<'_>,
    relation: &RelationId,
    peer_bag: &Databag,
    location: &Location,
    passwords: &mut Passwords,
    request: &Request,
) -> Result<()> {
    let settings = Settings::of(&hook.config);
    let user = service_user(request, &settings);
    let password = match &user {
        Some(user) => Some(passwords.ensure(hook, user)?),
        None => None,
    };
    let inputs = ReplyInputs {
        request,
        settings: &settings,
        user: user.as_deref(),
        password: password.as_ref().map(|p| consumers::digest(&[p.expose()])),
        at: location,
        changes: endpoint_changes(request, peer_bag, hook.config.catalog_cache_expiration),
    };
    let digest = inputs.digest();
    if Record::is_current(
        peer_keys::IDENTITY_SERVICE_RECORDS,
        relation,
        peer_bag,
        &digest,
    ) {
        return Ok(());
    }
    let objects = objects(request, &settings, user.as_deref().zip(password.as_ref()));
    let ensured = consumers::ensure(hook, relation, peer_bag, &objects)?;
    if !request.endpoints.is_empty() {
        record_endpoints(hook, relation, &request.endpoints)?;
    }
    if let Some(changes) = &inputs.changes {
        // Also in the application bag, as the Python charm sends them.
        hook.juju
            .relation_set(relation, true, changes)
            .with_context(|| format!("cannot send the endpoint changes on {relation}"))?;
    }
    let reply = reply(&inputs, &ensured);
    Record {
        digest,
        user: user
            .clone()
            .map(|user| (user, "service_password".to_owned())),
        reply,
    }
    .store(hook, peer_keys::IDENTITY_SERVICE_RECORDS, relation)
}

/// For a consumer that subscribed to endpoint changes: `ep_changed` (JSON, sorted keys: each
/// subscribed service registered here → its public, admin and internal URLs) and `catalog_ttl`.
pub fn endpoint_changes(request: &Request, peer_bag: &Databag, catalog_ttl: u64) -> Option<Reply> {
    if request.subscribe.is_empty() {
        return None;
    }
    let mut registered: BTreeMap<String, [String; 3]> = BTreeMap::new();
    for text in consumers::records(peer_bag, peer_keys::IDENTITY_SERVICE_ENDPOINTS).values() {
        if let Ok(map) = serde_json::from_str::<BTreeMap<String, [String; 3]>>(text) {
            registered.extend(map);
        }
    }
    let changed: BTreeMap<&String, serde_json::Value> = request
        .subscribe
        .iter()
        .filter_map(|service| {
            let [public, admin, internal] = registered.get(service)?;
            Some((
                service,
                serde_json::json!({"public": public, "admin": admin, "internal": internal}),
            ))
        })
        .collect();
    let text = serde_json::to_string(&changed).ok()?;
    Some(Reply::from([
        ("ep_changed".to_owned(), Some(text)),
        ("catalog_ttl".to_owned(), Some(catalog_ttl.to_string())),
    ]))
}

/// The Sunbeam-style request of a relation, if any: the objects in Keystone, the credentials in
/// a secret granted to the relation, and every reply key in the keystone application's bag in
/// the same hook. The user is the classic request's when there is one (a reactive consumer may
/// ask both ways, and reads both bags).
fn serve_app(
    hook: &mut Hook<'_>,
    relation: &RelationId,
    peer_bag: &Databag,
    location: &Location,
    passwords: &mut Passwords,
    classic_user: Option<String>,
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
        .relation_data(relation, &Bag::App(remote.clone()))
        .with_context(|| format!("cannot read {remote}'s data on {relation}"))?;
    let request = match parse_app_request(&bag) {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(()),
        Err(err) => {
            tracing::error!("{relation}: request refused: {err}");
            return Ok(());
        }
    };
    let settings = Settings {
        regions: vec![request.region.clone()],
        ..Settings::of(&hook.config)
    };
    let as_classic = Request {
        endpoints: request.endpoints.clone(),
        service_type_of: None,
        requested_roles: request.extra_roles.clone(),
        add_role_to_admin: Vec::new(),
        subscribe: Vec::new(),
    };
    let Some(user) = classic_user.or_else(|| service_user(&as_classic, &settings)) else {
        return Ok(());
    };
    let password = passwords.ensure(hook, &user)?;
    let previous = AppRecord::read(peer_keys::IDENTITY_SERVICE_APP_RECORDS, relation, peer_bag);
    let inputs = AppReplyInputs {
        request: &request,
        settings: &settings,
        user: &user,
        password: consumers::digest(&[password.expose()]),
        at: location,
        secrets: hook.juju.supports_secrets(),
    };
    let digest = inputs.digest();
    if previous.as_ref().is_some_and(|r| r.digest == digest) {
        return Ok(());
    }
    if !hook.juju.supports_secrets() {
        tracing::warn!(
            "{relation}: {remote} asks for its credentials in a Juju secret, which needs Juju 3.1 or later"
        );
        let record = AppRecord {
            digest,
            secret: None,
            user,
        };
        return record.store(hook, peer_keys::IDENTITY_SERVICE_APP_RECORDS, relation);
    }
    let objects = objects(&as_classic, &settings, Some((user.as_str(), &password)));
    let ensured = consumers::ensure(hook, relation, peer_bag, &objects)?;
    record_endpoints(hook, relation, &request.endpoints)?;
    let secret = consumers::credentials_secret(
        hook,
        relation,
        &remote,
        previous.and_then(|r| r.secret),
        &user,
        &password,
    )?;
    let reply = app_reply(&inputs, &ensured, secret.as_str());
    hook.juju
        .relation_set(relation, true, &reply)
        .with_context(|| format!("cannot send the reply on {relation}"))?;
    AppRecord {
        digest,
        secret: Some(secret.to_string()),
        user,
    }
    .store(hook, peer_keys::IDENTITY_SERVICE_APP_RECORDS, relation)
}

/// Everything a Sunbeam-style reply is built from but the ids Keystone returns and the secret
/// it creates; its digest decides, as [`ReplyInputs`]' does.
#[derive(Debug)]
pub struct AppReplyInputs<'a> {
    pub request: &'a AppRequest,
    pub settings: &'a Settings,
    pub user: &'a str,
    /// The service password's digest.
    pub password: String,
    pub at: &'a Location,
    /// Whether Juju has secrets: without them the consumer gets nothing but a warning.
    pub secrets: bool,
}

impl AppReplyInputs<'_> {
    pub fn digest(&self) -> String {
        consumers::digest(&[self])
    }
}

/// The Sunbeam-style reply, in the keystone application's bag: hyphenated keys, the
/// credentials secret's id, and the same user, project and domain as the classic reply.
pub fn app_reply(inputs: &AppReplyInputs<'_>, ensured: &Ensured, secret: &str) -> Reply {
    let (user, at) = (inputs.user, inputs.at);
    let ids = &ensured.ids;
    let tenant = &inputs.settings.service_tenant;
    let mut pairs = at.sunbeam_keys();
    pairs.extend([
        ("service-host", Some(at.public_host.clone())),
        ("service-port", Some(at.service_port.to_string())),
        ("service-protocol", Some(at.protocol.to_owned())),
        (
            "internal-auth-url",
            Some(at.url(&at.internal_host, at.service_port)),
        ),
        (
            "admin-auth-url",
            Some(at.url(&at.admin_host, at.admin_port)),
        ),
        (
            "public-auth-url",
            Some(at.url(&at.public_host, at.service_port)),
        ),
        ("admin-domain-name", Some(ADMIN_DOMAIN.to_owned())),
        (
            "admin-domain-id",
            ids.domain(ADMIN_DOMAIN).map(str::to_owned),
        ),
        ("admin-project-name", Some(ADMIN_PROJECT.to_owned())),
        (
            "admin-project-id",
            ids.project(ADMIN_DOMAIN, ADMIN_PROJECT).map(str::to_owned),
        ),
        ("admin-user-name", Some(inputs.settings.admin_user.clone())),
        (
            "admin-user-id",
            ids.user(ADMIN_DOMAIN, &inputs.settings.admin_user)
                .map(str::to_owned),
        ),
        ("service-domain-name", Some(SERVICE_DOMAIN.to_owned())),
        (
            "service-domain-id",
            ids.domain(SERVICE_DOMAIN).map(str::to_owned),
        ),
        ("service-project-name", Some(tenant.clone())),
        (
            "service-project-id",
            ids.project(SERVICE_DOMAIN, tenant).map(str::to_owned),
        ),
        ("service-user-name", Some(user.to_owned())),
        (
            "service-user-id",
            ids.user(SERVICE_DOMAIN, user).map(str::to_owned),
        ),
        ("service-credentials", Some(secret.to_owned())),
        ("admin-role", Some(inputs.settings.admin_role.clone())),
        ("region", Some(at.region.clone())),
    ]);
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The endpoint, for [`consumers::run`].
pub struct IdentityService;

/// The identity-service step: [`run`].
pub const STEP: Step = Step::new("identity-service", run).reads(crate::relations::consumers::READS);

/// Step: the leader serves the requests (in Keystone, then in its records); every unit publishes
/// the recorded replies in its own bags.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    consumers::run::<IdentityService>(hook)
}

impl consumers::IdentityEndpoint for IdentityService {
    const ENDPOINT: Endpoint = ENDPOINT;
    const RECORDS: &'static str = peer_keys::IDENTITY_SERVICE_RECORDS;
    /// A changed endpoint reaches the consumers that subscribed to it in the same hook.
    const RESERVE_ON: &'static str = peer_keys::IDENTITY_SERVICE_ENDPOINTS;

    const MORE_RECORDS: &'static [&'static str] = &[
        peer_keys::IDENTITY_SERVICE_APP_RECORDS,
        peer_keys::IDENTITY_SERVICE_ENDPOINTS,
    ];
    const SUNBEAM_RECORDS: Option<&'static str> = Some(peer_keys::IDENTITY_SERVICE_APP_RECORDS);

    fn settings(config: &crate::config::Config) -> String {
        consumers::digest(&[&Settings::of(config), &config.catalog_cache_expiration])
    }

    fn serve(
        hook: &mut Hook<'_>,
        relation: &RelationId,
        peer_bag: &Databag,
        location: &Location,
        passwords: &mut Passwords,
    ) -> Result<()> {
        let settings = Settings::of(&hook.config);
        let classic = match request_of(&consumers::remote_bags(hook, relation)?) {
            Ok(request) => request,
            Err(err) => {
                tracing::error!("{relation}: request refused: {err}");
                None
            }
        };
        let user = classic.as_ref().and_then(|r| service_user(r, &settings));
        if let Some(request) = &classic {
            serve_classic(hook, relation, peer_bag, location, passwords, request)?;
        }
        serve_app(hook, relation, peer_bag, location, passwords, user)
    }

    /// Before Juju 3.1, a Sunbeam-style consumer cannot be given its credentials: say which.
    fn notes(peer_bag: &Databag) -> Vec<Condition> {
        let unserved: Vec<&str> = peer_bag
            .iter()
            .filter_map(|(key, text)| {
                let relation = key.strip_prefix(peer_keys::IDENTITY_SERVICE_APP_RECORDS)?;
                let record: AppRecord = serde_json::from_str(text).ok()?;
                record.secret.is_none().then_some(relation)
            })
            .collect();
        match unserved.is_empty() {
            true => Vec::new(),
            false => vec![Condition::Note(format!(
                "{} need Juju secrets (Juju 3.1 or later)",
                unserved.join(", ")
            ))],
        }
    }
}

#[cfg(test)]
mod tests;
