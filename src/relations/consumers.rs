//! What the identity relations (identity-service, identity-credentials, identity-admin,
//! keystone-service, identity-notifications) share: when consumers may be served, where Keystone
//! is for them, the replies the leader records for every unit to publish, and when a hook must
//! look at the relations at all. (The service users' passwords are in
//! [`crate::relations::service_passwords`].)
//!
//! Cost: a relation's own hooks serve that relation. Every relation of an endpoint is served
//! only when what its replies depend on changed since this unit last served it (a digest kept in
//! the cluster relation, in a bag every hook reads anyway), so a hook in which nothing changed
//! reads no relation, calls no Keystone API and sets no relation data, however many relations
//! there are.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::addresses::{Addresses, Role};
use crate::event::{Endpoint, Event, RelationHook};
use crate::facts::{Answering, Clustered, DatabaseFlags, FactName, HeldKeys};
use crate::juju::{Bag, Databag, DatabagChanges, RelationId};
use crate::peer_keys;
use crate::peers::Peers;
use crate::relations::cluster;
use crate::relations::service_passwords::Passwords;
use crate::secret::Sensitive;
use crate::step::Hook;

/// A reply: keys to set, or to delete (None).
pub type Reply = BTreeMap<String, Option<String>>;

/// One identity endpoint's behaviour; [`run`] drives it the same way for every endpoint.
pub trait IdentityEndpoint {
    const ENDPOINT: Endpoint;
    /// The peer application bag keys the leader records this endpoint's replies under,
    /// `<prefix><relation id>` (empty when every unit computes its replies itself).
    const RECORDS: &'static str;
    /// The peer application bag keys the replies depend on: a change to any is served at once.
    const WATCHES: &'static str = Self::RECORDS;
    /// Peer application bag keys whose change while the leader serves one relation makes it
    /// serve every relation in the same hook (none by default).
    const RESERVE_ON: &'static str = "";

    /// What in the configuration the replies depend on (besides [`Location`]).
    fn settings(config: &crate::config::Config) -> String;

    /// The leader: reads the relation's request, ensures what it needs in Keystone and records
    /// the reply (nothing for endpoints that need nothing from Keystone).
    fn serve(
        _hook: &mut Hook<'_>,
        _relation: &RelationId,
        _peer_bag: &Databag,
        _location: &Location,
        _passwords: &mut Passwords,
    ) -> Result<()> {
        Ok(())
    }

    /// More peer application bag prefixes of this endpoint's records, besides [`Self::RECORDS`]
    /// (all are forgotten with the relation, see [`forget_records`]).
    const MORE_RECORDS: &'static [&'static str] = &[];
    /// The prefix of its Sunbeam-style records ([`AppRecord`]), whose credentials secret goes
    /// with the relation.
    const SUNBEAM_RECORDS: Option<&'static str> = None;

    /// What the unit's status says of this endpoint's relations, from the leader's records.
    fn notes(_peer_bag: &Databag) -> Vec<crate::status::Condition> {
        Vec::new()
    }

    /// Every unit: the reply to publish on the relation (None: nothing yet); by default the
    /// leader's record of it, with the user's password.
    fn reply(
        _hook: &Hook<'_>,
        relation: &RelationId,
        peer_bag: &Databag,
        _location: &Location,
        passwords: &Passwords,
    ) -> Result<Option<Reply>> {
        Record::read(Self::RECORDS, relation, peer_bag)?
            .map(|record| record.reply_with_password(passwords))
            .transpose()
    }
}

/// What an identity endpoint's step reads ([`may_serve`]).
pub const READS: &[FactName] = &[
    FactName::DatabaseFlags,
    FactName::HeldKeys,
    FactName::Answering,
    FactName::Clustered,
];

/// The step of an identity endpoint: once consumers may be served, the leader serves the
/// relations that need it and every unit publishes the replies; a broken relation's record goes.
pub fn run<E: IdentityEndpoint>(hook: &mut Hook<'_>) -> Result<Vec<crate::status::Condition>> {
    let Some(peer_bag) = hook.peers.as_ref().map(Peers::app) else {
        return Ok(Vec::new());
    };
    if hook.leader
        && is_broken(hook, E::ENDPOINT)
        && let Some(relation) = hook.juju.relation_id()
    {
        let mut prefixes = vec![E::RECORDS];
        prefixes.extend(E::MORE_RECORDS);
        prefixes.retain(|p| !p.is_empty());
        if !prefixes.is_empty() {
            forget_records(hook, &peer_bag, &relation, &prefixes, E::SUNBEAM_RECORDS)?;
        }
    }
    let notes = E::notes(&peer_bag);
    let gate = may_serve(hook)?;
    let settings = E::settings(&hook.config);
    // Where Keystone is, as far as the configuration says (hostnames, VIP, ports, TLS, prefix);
    // this unit's address comes separately, read only when it can matter.
    let configured_location = Location::of(&hook.config, None);
    let inputs = |bag: &Databag, address: Option<Addresses>| Inputs {
        digest: digest(&[
            &gate,
            &settings,
            &configured_location,
            &records(bag, E::WATCHES),
            &bag.get(crate::peer_keys::SERVICE_PASSWORDS_GENERATION),
        ]),
        address,
    };
    // The addresses are read only where they can have changed, and only once serving is
    // possible.
    let address = match gate && *hook.event != Event::UpdateStatus {
        true => Some(hook.addresses()?),
        false => None,
    };
    let Some(relations) =
        relations_to_serve(hook, E::ENDPOINT, &inputs(&peer_bag, address.clone()))?
    else {
        return Ok(notes);
    };
    let address = match (gate, address) {
        (true, None) => Some(hook.addresses()?),
        (_, address) => address,
    };
    let mut relations = relations;
    if gate {
        let location = Location::of(&hook.config, address.as_ref());
        let mut passwords = Passwords::read(hook, &peer_bag)?;
        if hook.leader {
            for relation in &relations {
                E::serve(hook, relation, &peer_bag, &location, &mut passwords)?;
            }
            let now = hook.peer_app();
            if records(&now, E::RESERVE_ON) != records(&peer_bag, E::RESERVE_ON) {
                relations = hook
                    .juju
                    .relation_ids(E::ENDPOINT.name())
                    .with_context(|| format!("cannot list the {} relations", E::ENDPOINT))?;
                for relation in &relations {
                    E::serve(hook, relation, &now, &location, &mut passwords)?;
                }
            }
            passwords.store(hook)?;
        }
        // What is recorded now (the leader may have just recorded it).
        let recorded = hook.peer_app();
        for relation in &relations {
            if let Some(reply) = E::reply(hook, relation, &recorded, &location, &passwords)? {
                publish(hook, relation, &reply)?;
            }
        }
    }
    let recorded = hook.peer_app();
    remember(hook, E::ENDPOINT, &inputs(&recorded, address))?;
    Ok(E::notes(&recorded))
}

/// The request of a relation: every remote unit's bag, by unit name.
pub fn remote_bags(hook: &Hook<'_>, relation: &RelationId) -> Result<Vec<(String, Databag)>> {
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
    Ok(bags)
}

/// A request a remote unit sent that the charm refuses (logged with the reason): the relation
/// waits for a corrected one.
pub struct Refused;

/// The request in the first remote unit's bag (by unit name) that holds one; `parse` gives None
/// for a bag that holds none yet.
pub fn first_request<R, E: std::fmt::Display>(
    hook: &Hook<'_>,
    relation: &RelationId,
    parse: impl Fn(&Databag) -> std::result::Result<Option<R>, E>,
) -> Result<std::result::Result<Option<R>, Refused>> {
    for (_, bag) in remote_bags(hook, relation)? {
        match parse(&bag) {
            Ok(Some(request)) => return Ok(Ok(Some(request))),
            Ok(None) => {}
            Err(err) => {
                tracing::error!("{relation}: request refused: {err}");
                return Ok(Err(Refused));
            }
        }
    }
    Ok(Ok(None))
}

/// Records what the leader serves a relation under `<prefix><relation id>` in the peer
/// application bag (leader only).
fn store_record(
    hook: &Hook<'_>,
    prefix: &str,
    relation: &RelationId,
    record: &impl serde::Serialize,
) -> Result<()> {
    let text = serde_json::to_string(record).context("cannot encode a reply record")?;
    let key = Record::key(prefix, relation);
    hook.peers()?.set_shared(&[(key.as_str(), Some(text))])
}

/// What the leader records for a relation, for every unit to publish.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Of the request and every input of the reply: the same digest, nothing to do.
    pub digest: String,
    /// The user whose password every unit adds to the reply, and under which key.
    pub user: Option<(String, String)>,
    pub reply: Reply,
}

impl Record {
    pub fn key(prefix: &str, relation: &RelationId) -> String {
        format!("{prefix}{}", relation.as_str())
    }

    /// The record of `relation`, if the leader made one.
    pub fn read(prefix: &str, relation: &RelationId, peer_bag: &Databag) -> Result<Option<Record>> {
        peer_bag
            .get(&Record::key(prefix, relation))
            .map(|text| {
                serde_json::from_str(text).with_context(|| {
                    format!("the record of {relation} in the cluster relation is not valid JSON")
                })
            })
            .transpose()
    }

    /// Whether the leader recorded this digest already (nothing to do).
    pub fn is_current(
        prefix: &str,
        relation: &RelationId,
        peer_bag: &Databag,
        digest: &str,
    ) -> bool {
        Record::read(prefix, relation, peer_bag)
            .ok()
            .flatten()
            .is_some_and(|record| record.digest == digest)
    }

    /// Records it (leader only).
    pub fn store(&self, hook: &Hook<'_>, prefix: &str, relation: &RelationId) -> Result<()> {
        store_record(hook, prefix, relation, self)
    }

    /// The reply with the user's password added.
    pub fn reply_with_password(self, passwords: &Passwords) -> Result<Reply> {
        let mut reply = self.reply;
        if let Some((user, key)) = &self.user {
            let password = passwords.get(user).with_context(|| {
                format!("the password of {user} is missing from the shared secret")
            })?;
            reply.insert(key.clone(), Some(password.expose().clone()));
        }
        Ok(reply)
    }
}

/// The charm's own admin user, as it logs in to Keystone.
pub fn charm_admin(
    hook: &Hook<'_>,
    peer_bag: &Databag,
) -> Result<crate::keystone_api::PasswordCredentials> {
    let stored = cluster::admin::credentials(hook.juju, peer_bag)?
        .context("the admin credentials are missing from the cluster relation")?;
    Ok(crate::keystone_api::PasswordCredentials {
        user_name: crate::identity::CHARM_ADMIN_USER.to_owned(),
        user_domain: crate::keystone_api::DomainRef::Id(
            crate::keystone_api::DEFAULT_DOMAIN_ID.to_owned(),
        ),
        password: stored.charm_password,
    })
}

/// Ensures `objects` in Keystone as the charm's admin, logging what changed.
pub fn ensure(
    hook: &mut Hook<'_>,
    relation: &RelationId,
    peer_bag: &Databag,
    objects: &[crate::identity::IdentityObject],
) -> Result<crate::identity::Ensured> {
    let credentials = charm_admin(hook, peer_bag)?;
    let api = hook.keystone_as(&credentials)?;
    let ensured = crate::identity::ensure_objects(api, objects)
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
    Ok(ensured)
}

/// The keystone API version every reply names: `"3"`, the value no consumer misreads.
pub const API_VERSION: &str = "3";

/// Where consumers reach Keystone: the three hosts (os-*-hostname, else the first VIP, else this
/// unit's address), the ports and the scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub public_host: String,
    pub internal_host: String,
    pub admin_host: String,
    pub service_port: u16,
    pub admin_port: u16,
    pub protocol: &'static str,
    /// Keystone's regions, space-separated (the `region` option).
    pub region: String,
    /// base64 of the CA consumers should trust, when Keystone serves TLS.
    pub ca_cert: Option<String>,
    /// service-path-prefix: empty, or `/api/idm` and the like.
    pub path_prefix: String,
}

impl Location {
    /// Where Keystone is on this unit's `hosts` ([`Hook::addresses`]); without them, as far as
    /// the configuration alone says (os-*-hostname, else the first VIP, else nothing).
    pub fn of(config: &crate::config::Config, hosts: Option<&Addresses>) -> Location {
        let configured = |role: Role| {
            role.hostname(config)
                .map(str::to_owned)
                .or_else(|| config.vips.first().map(|vip| vip.to_string()))
                .unwrap_or_default()
        };
        let host = |role: Role| match hosts {
            Some(hosts) => hosts.host(role).to_owned(),
            None => configured(role),
        };
        let ca = config.trusted_ca();
        Location {
            public_host: host(Role::Public),
            internal_host: host(Role::Internal),
            admin_host: host(Role::Admin),
            service_port: config.service_port,
            admin_port: config.admin_port,
            protocol: if config.tls.is_some() {
                "https"
            } else {
                "http"
            },
            region: config.regions.join(" "),
            ca_cert: ca.map(|pem| base64::engine::general_purpose::STANDARD.encode(pem)),
            path_prefix: config.service_path_prefix.clone(),
        }
    }

    /// Keystone's v3 URL on `host` and `port`.
    pub fn url(&self, host: &str, port: u16) -> String {
        crate::identity::identity_url(self.protocol == "https", host, port, &self.path_prefix)
    }

    /// The keys every Sunbeam-style reply starts with: the API version, and where the admin
    /// (`auth-*`) and internal endpoints are.
    pub fn sunbeam_keys(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("api-version", Some(API_VERSION.to_owned())),
            ("auth-host", Some(self.admin_host.clone())),
            ("auth-port", Some(self.admin_port.to_string())),
            ("auth-protocol", Some(self.protocol.to_owned())),
            ("internal-host", Some(self.internal_host.clone())),
            ("internal-port", Some(self.service_port.to_string())),
            ("internal-protocol", Some(self.protocol.to_owned())),
        ]
    }

    /// `https_keystone` and `ca_cert`, which Horizon and the reactive interfaces still read: set
    /// with TLS, unset (deleted) without.
    pub fn tls_keys(&self) -> [(&'static str, Option<String>); 2] {
        [
            (
                "https_keystone",
                self.ca_cert.as_ref().map(|_| "True".to_owned()),
            ),
            ("ca_cert", self.ca_cert.clone()),
        ]
    }
}

/// Whether this unit may hand out credentials: the database is initialised and bootstrapped,
/// this unit holds the current fernet keys and its Keystone answers (bug 1818113: consumers got
/// credentials before Keystone could issue tokens), with vip or dns-ha hacluster has brought
/// them up, and, for the leader, which makes them, every other unit is ready too, so none is
/// named to a consumer before it can validate its tokens.
pub fn may_serve(hook: &Hook<'_>) -> Result<bool> {
    let flags = match hook.facts.get::<DatabaseFlags>() {
        Some(flags) => *flags,
        None => DatabaseFlags::read(hook.peers.as_ref()),
    };
    let Some(held) = hook.facts.get::<HeldKeys>() else {
        return Ok(false);
    };
    if !flags.bootstrapped || hook.facts.get::<Answering>().is_none() {
        return Ok(false);
    }
    // Behind a VIP or DNS records, not before Pacemaker brought them up (bug 1508575: the
    // Python charm gave consumers the unit's own address meanwhile).
    if crate::relations::ha::needs_cluster(&hook.config) && hook.facts.get::<Clustered>().is_none()
    {
        return Ok(false);
    }
    if !hook.leader {
        return Ok(true);
    }
    Ok(hook
        .peers
        .as_ref()
        .is_some_and(|peers| cluster::readiness::every_unit_ready(&peers.app(), held.generation)))
}

/// What an endpoint's replies depend on, besides each relation's own request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// Of the configuration, whether consumers may be served, and the leader's records.
    pub digest: String,
    /// This unit's hosts, once something can be served (none before). Not read in
    /// update-status: Juju runs config-changed when a unit's addresses change.
    pub address: Option<Addresses>,
}

impl Inputs {
    fn address_text(&self) -> String {
        match &self.address {
            Some(hosts) => format!("{},{},{}", hosts.public, hosts.internal, hosts.admin),
            None => "-".to_owned(),
        }
    }

    fn remembered_text(&self) -> String {
        format!("{} {}", self.digest, self.address_text())
    }

    fn matches(&self, remembered: &str, check_address: bool) -> bool {
        match remembered.split_once(' ') {
            Some((digest, address)) => {
                digest == self.digest && (!check_address || address == self.address_text())
            }
            None => false,
        }
    }
}

/// The relations of `endpoint` this hook must serve (None: nothing to do): every relation when
/// the inputs changed since this unit last served the endpoint, else the hook's own relation
/// in that relation's hooks (none once it is broken), else none.
pub fn relations_to_serve(
    hook: &Hook<'_>,
    endpoint: Endpoint,
    inputs: &Inputs,
) -> Result<Option<Vec<RelationId>>> {
    let check_address = *hook.event != Event::UpdateStatus;
    let unchanged =
        remembered(hook, endpoint)?.is_some_and(|text| inputs.matches(&text, check_address));
    if unchanged {
        return Ok(match hook.event {
            Event::Relation {
                endpoint: ours,
                hook: kind,
            } if *ours == endpoint && *kind != RelationHook::Broken => {
                hook.juju.relation_id().map(|relation| vec![relation])
            }
            _ => None,
        });
    }
    hook.juju
        .relation_ids(endpoint.name())
        .with_context(|| format!("cannot list the {endpoint} relations"))
        .map(Some)
}

/// Whether this hook is the end of one of `endpoint`'s relations.
pub fn is_broken(hook: &Hook<'_>, endpoint: Endpoint) -> bool {
    matches!(hook.event, Event::Relation { endpoint: ours, hook: RelationHook::Broken } if *ours == endpoint)
}

/// The key under which a unit remembers an endpoint's inputs: in the peer application bag on
/// the leader, in its own cluster bag on the others (both are read by every hook already).
fn inputs_key(endpoint: Endpoint) -> String {
    // Not prefixed by the endpoint's name: that prefix is its records'.
    format!("{}{}", peer_keys::SERVED_PREFIX, endpoint.name())
}

fn remembered(hook: &Hook<'_>, endpoint: Endpoint) -> Result<Option<String>> {
    let Some(peers) = hook.peers.as_ref() else {
        return Ok(None);
    };
    let key = inputs_key(endpoint);
    Ok(match hook.leader {
        true => peers.get(&key),
        false => peers.own_bag()?.get(&key).cloned(),
    })
}

/// Remembers that this unit served `endpoint` with `inputs`: every relation of it, or one
/// relation when nothing else changed.
pub fn remember(hook: &Hook<'_>, endpoint: Endpoint, inputs: &Inputs) -> Result<()> {
    let Some(peers) = hook.peers.as_ref() else {
        return Ok(());
    };
    let key = inputs_key(endpoint);
    let text = inputs.remembered_text();
    match hook.leader {
        true => peers.set_shared(&[(key.as_str(), Some(text))]),
        false => peers.set_own(&DatabagChanges::from([(key, Some(text))])),
    }
    .context("cannot record what this unit served")
}

/// A digest of everything given (Debug never shows a password: callers hash passwords in
/// explicitly when they matter).
pub fn digest(parts: &[&dyn std::fmt::Debug]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(format!("{part:?}").as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The peer application bag's keys with this prefix: what the leader recorded for an endpoint
/// (none for an empty prefix).
pub fn records(peer_bag: &Databag, prefix: &str) -> BTreeMap<String, String> {
    peer_bag
        .iter()
        .filter(|(key, _)| !prefix.is_empty() && key.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Sets `reply` in this unit's bag of `relation`, deleting the `previous` keys it no longer has.
/// Only what differs is sent (the facade drops the rest), all in one relation-set: reactive
/// consumers mark a relation available as soon as some keys are there.
pub fn publish(
    hook: &Hook<'_>,
    relation: &RelationId,
    reply: &BTreeMap<String, Option<String>>,
) -> Result<()> {
    let own = hook
        .juju
        .relation_data(relation, &Bag::Unit(hook.juju.unit().clone()))
        .with_context(|| format!("cannot read this unit's {relation} data"))?;
    let mut changes: DatabagChanges = reply.clone();
    // Keys this charm published before and no longer sends (a form changed) go away.
    for key in own.keys() {
        if !changes.contains_key(key) && !JUJU_KEYS.contains(&key.as_str()) {
            changes.insert(key.clone(), None);
        }
    }
    hook.juju
        .relation_set(relation, false, &changes)
        .with_context(|| format!("cannot send the reply on {relation}"))
}

/// Keys Juju itself keeps in a unit's bag.
const JUJU_KEYS: [&str; 3] = ["private-address", "ingress-address", "egress-subnets"];

/// Every service user the leader's records under these prefixes name: classic records
/// ([`Record`]) and Sunbeam-style ones ([`AppRecord`]).
pub fn recorded_users(peer_bag: &Databag, records: &[&str], app_records: &[&str]) -> Vec<String> {
    let mut users = Vec::new();
    for prefix in records {
        for text in self::records(peer_bag, prefix).values() {
            if let Ok(Record {
                user: Some((user, _)),
                ..
            }) = serde_json::from_str(text)
            {
                users.push(user);
            }
        }
    }
    for prefix in app_records {
        for text in self::records(peer_bag, prefix).values() {
            if let Ok(record) = serde_json::from_str::<AppRecord>(text) {
                users.push(record.user);
            }
        }
    }
    users
}

/// The leader forgets a relation that is gone: its records under `prefixes` go, and so does the
/// Sunbeam-style credentials secret recorded under `app_records` (Juju keeps a secret until its
/// owner removes it). The users stay in Keystone, as the Python charm leaves them, so a consumer
/// related again gets the same password.
pub fn forget_records(
    hook: &Hook<'_>,
    peer_bag: &Databag,
    relation: &RelationId,
    prefixes: &[&str],
    app_records: Option<&str>,
) -> Result<()> {
    let secret = app_records
        .and_then(|prefix| AppRecord::read(prefix, relation, peer_bag))
        .and_then(|record| record.secret)
        .and_then(|id| crate::juju::SecretUri::parse(&id));
    if let Some(uri) = secret
        && let Err(err) = hook.juju.secret_remove(&uri)
    {
        // Gone already (an operator removed it): nothing is left to protect.
        tracing::warn!(
            "{relation}: cannot remove its credentials secret {}: {err}; if it still exists, \
             remove it with juju remove-secret",
            uri.as_str()
        );
    }
    let keys: Vec<String> = prefixes
        .iter()
        .map(|prefix| Record::key(prefix, relation))
        .collect();
    let changes: Vec<(&str, Option<String>)> =
        keys.iter().map(|key| (key.as_str(), None)).collect();
    hook.peers()?.set_shared(&changes)
}

/// What the leader keeps of a Sunbeam-style reply (the reply itself is in the keystone
/// application bag, which only the leader writes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppRecord {
    /// Of the request and every input of the reply: the same digest, nothing to do.
    pub digest: String,
    /// The credentials secret granted to the relation (None: Juju has no secrets).
    pub secret: Option<String>,
    pub user: String,
}

impl AppRecord {
    pub fn read(prefix: &str, relation: &RelationId, peer_bag: &Databag) -> Option<AppRecord> {
        peer_bag
            .get(&Record::key(prefix, relation))
            .and_then(|text| serde_json::from_str(text).ok())
    }

    /// Records it (leader only).
    pub fn store(&self, hook: &Hook<'_>, prefix: &str, relation: &RelationId) -> Result<()> {
        store_record(hook, prefix, relation, self)
    }
}

/// The credentials secret of a Sunbeam-style relation: `username` and `password` in an
/// application secret granted to the relation (created, or given the new content under the same
/// id, so the consumer's reference stays valid).
pub fn credentials_secret(
    hook: &Hook<'_>,
    relation: &RelationId,
    remote: &crate::juju::AppName,
    existing: Option<String>,
    user: &str,
    password: &Sensitive<String>,
) -> Result<crate::juju::SecretUri> {
    let content = crate::juju::SecretContent::from([
        ("username".to_owned(), Sensitive::new(user.to_owned())),
        ("password".to_owned(), password.clone()),
    ]);
    if let Some(uri) = existing.and_then(|id| crate::juju::SecretUri::parse(&id)) {
        hook.juju
            .secret_set(&uri, &content)
            .with_context(|| format!("cannot update the credentials secret of {relation}"))?;
        return Ok(uri);
    }
    let uri = hook
        .juju
        .secret_add(
            &content,
            &crate::juju::NewSecret {
                owner: crate::juju::SecretOwner::Application,
                label: Some(format!(
                    "credentials-{}",
                    relation.as_str().replace(':', "-")
                )),
                description: Some(format!("{remote}'s Keystone credentials")),
            },
        )
        .with_context(|| format!("cannot create the credentials secret of {relation}"))?;
    hook.juju
        .secret_grant(&uri, relation)
        .with_context(|| format!("cannot grant {remote} its credentials secret"))?;
    Ok(uri)
}

#[cfg(test)]
mod tests;
