//! The `cluster` peer relation: one fernet and credential key set on every unit ([`run`], the
//! step), the admin credentials every unit shares, and the leader-owned application bag other
//! concerns keep their flags in ([`set_shared`]).
//!
//! The leader publishes (see [`crate::fernet_keys`] for the protocol):
//! - application bag: `fernet-generation`, `fernet-fingerprint`, `fernet-last-rotation`,
//!   `fernet-primary-since` (when each key held became primary, JSON), and either `fernet-secret-id` (Juju ≥ 3.1: the keys are in an application-owned secret) or
//!   `fernet-keys` (older Juju: the keys themselves, JSON);
//! - every other unit acknowledges in its unit bag: `fernet-generation`, `fernet-fingerprint`
//!   (the leader's own state is what it published and what its disk holds).
//!
//! Decisions come from the pure functions of [`crate::fernet_keys`]; this module reads what they
//! need (as few hook tools as possible), and carries them out.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::facts::{FactName, HeldKeys, KeySync, KnownPeers, Peer, Rotated, TooSoon};
use crate::fernet_keys::sites::{self, Upstream};
use crate::fernet_keys::{
    Ack, KeyMaterial, LeaderDecision, Published, RotationRequest, UnitDecision, leader_decision,
    unit_decision,
};
use crate::host::keys::KeyStore;
use crate::juju::{
    Bag, DatabagChanges, Juju, NewSecret, RelationId, SecretOwner, SecretRead, SecretUri,
};
use crate::machine::Machine;
use crate::peer_keys;
use crate::secret::Sensitive;
use crate::step::{Condition, Hook, Step};

pub const ENDPOINT: &str = "cluster";

/// The cluster step: [`run`].
pub const STEP: Step = Step::new("cluster", run)
    .reads(&[FactName::Upstream, FactName::SiteAcks])
    .writes(&[FactName::HeldKeys, FactName::KeySync]);

/// Step: this unit holds the published keys; the leader creates them, and rotates them when
/// due and every unit holds the current ones.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let upstream = hook.facts.get::<Upstream>().cloned();
    let site_acks = hook
        .facts
        .get::<sites::SiteAcks>()
        .cloned()
        .unwrap_or_default();
    let mut inputs = sync_inputs(hook.machine, &hook.config, hook.rotation);
    inputs.upstream = upstream.as_ref();
    inputs.sites = &site_acks.0;
    // Before cluster-relation-created there is nobody to share keys with yet.
    let Some(sync) = sync(hook.juju, &inputs)? else {
        return Ok(Vec::new());
    };
    let mut conditions = Vec::new();
    match (&sync.waiting, sync.generation) {
        (Some(reason), _) => conditions.push(Condition::Waiting(reason.clone())),
        (None, Some(generation)) => hook.facts.set(HeldKeys { generation }),
        (None, None) => {}
    }
    if let Some(note) = &sync.note {
        conditions.push(Condition::Note(note.clone()));
    }
    keep_for_nagios(hook, sync.generation.filter(|_| sync.waiting.is_none()))?;
    // What rotate-fernet reports.
    hook.facts.set(sync);
    Ok(conditions)
}

/// Keeps on the machine what the leader published of its keys, for the fernet Nagios check
/// ([`crate::nagios::fernet_verdict`]), which runs outside any hook.
fn keep_for_nagios(hook: &Hook<'_>, held: Option<u64>) -> Result<()> {
    let Some(published) = app_data(hook.juju)?.and_then(|(_, bag)| published(&bag)) else {
        return Ok(());
    };
    let kept = crate::nagios::FernetKept {
        generation: published.generation,
        held,
        last_rotation: published.last_rotation,
        period: hook.config.fernet_rotation_period().as_secs(),
    };
    let text = serde_json::to_vec(&kept).context("cannot encode the published keys' summary")?;
    let file = crate::host::fs::DesiredFile::new(
        crate::paths::FERNET_PUBLISHED,
        text,
        crate::host::fs::Owner::root(),
        0o644,
    );
    crate::host::fs::write_files(
        hook.machine.files.as_ref(),
        &[std::path::PathBuf::from(crate::paths::NAGIOS_STATE_DIR)],
        [&file],
    )
    .context("cannot keep the published keys' summary for the Nagios check")?;
    Ok(())
}

/// The key sync's inputs from the machine and a validated config.
fn sync_inputs<'a>(
    machine: &'a Machine,
    config: &Config,
    request: RotationRequest,
) -> SyncInputs<'a> {
    SyncInputs {
        store: machine.keys.as_ref(),
        now: machine.now,
        period: config.fernet_rotation_period(),
        max_active_keys: config.fernet_max_active_keys,
        token_expiration: config.token_expiration,
        request,
        upstream: None,
        sites: &[],
    }
}

const SECRET_LABEL: &str = "fernet-keys";
/// Where the Python keystone charm kept the keys (leader settings).
const PYTHON_CHARM_KEYS: &str = "key_repository";

/// The published state, from the peer application bag.
pub fn published(bag: &crate::juju::Databag) -> Option<Published> {
    Some(Published {
        generation: bag.get(peer_keys::FERNET_GENERATION)?.parse().ok()?,
        fingerprint: bag.get(peer_keys::FERNET_FINGERPRINT)?.clone(),
        last_rotation: bag.get(peer_keys::FERNET_LAST_ROTATION)?.parse().ok()?,
        primary_since: primary_since(bag),
    })
}

/// When each key held became primary; empty when a revision that did not keep it published.
fn primary_since(bag: &crate::juju::Databag) -> BTreeMap<u32, u64> {
    bag.get(peer_keys::FERNET_PRIMARY_SINCE)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

fn ack_of(bag: &crate::juju::Databag) -> Option<Ack> {
    Some(Ack {
        generation: bag.get(peer_keys::FERNET_GENERATION)?.parse().ok()?,
        fingerprint: bag.get(peer_keys::FERNET_FINGERPRINT)?.clone(),
    })
}

/// Inputs that come from outside Juju.
struct SyncInputs<'a> {
    pub store: &'a dyn KeyStore,
    pub now: u64,
    pub period: Duration,
    pub max_active_keys: u32,
    /// Seconds a token stays valid (token-expiration).
    pub token_expiration: u64,
    pub request: RotationRequest,
    /// Set on a site that takes its keys from a source: the leader adopts, never rotates.
    pub upstream: Option<&'a Upstream>,
    /// On a source: each consuming site and the generation it acknowledged.
    pub sites: &'a [(String, Option<u64>)],
}

/// Brings this unit's keys in line with the leader's, and lets the leader create and rotate
/// them. Returns None when the peer relation does not exist yet (before cluster-relation-created).
fn sync(juju: &Juju, inputs: &SyncInputs<'_>) -> Result<Option<KeySync>> {
    let Some((relation, app_bag)) = app_data(juju)? else {
        return Ok(None);
    };
    let published_state = published(&app_bag);
    let leader = juju
        .is_leader()
        .context("cannot tell whether this unit leads")?;
    let mut result = KeySync::default();

    // Every unit, the leader too: hold what was published, and say so.
    let held = inputs
        .store
        .read()
        .context("cannot read the key repositories")?;
    let held_fingerprint = held.as_ref().map(KeyMaterial::fingerprint);
    match unit_decision(published_state.as_ref(), held_fingerprint.as_deref()) {
        UnitDecision::WaitForLeader => {
            if !leader {
                result.waiting = Some("Waiting for the leader to create fernet keys".to_owned());
            }
        }
        UnitDecision::Apply => {
            let published = published_state.clone().context("published state")?;
            match fetch(juju, &app_bag)? {
                Some((material, generation))
                    if generation == published.generation
                        && material.fingerprint() == published.fingerprint =>
                {
                    inputs
                        .store
                        .apply(&material)
                        .context("cannot write the key repositories")?;
                    tracing::info!("fernet keys: applied generation {generation}");
                    if !leader {
                        acknowledge(juju, &relation, generation, &published.fingerprint)?;
                    }
                    result.generation = Some(generation);
                }
                _ => {
                    // The secret and the bag are committed together; until both are visible,
                    // wait for the next event rather than applying a mismatched set.
                    result.waiting = Some(format!(
                        "Waiting for fernet keys generation {} from the leader",
                        published.generation
                    ));
                }
            }
        }
        UnitDecision::InSync => {
            let published = published_state.clone().context("published state")?;
            // The leader's state is what it published (and holds on disk); only the others
            // acknowledge, which spares every unit a peer hook per rotation.
            if !leader {
                acknowledge(
                    juju,
                    &relation,
                    published.generation,
                    &published.fingerprint,
                )?;
            }
            result.generation = Some(published.generation);
        }
    }
    if !leader {
        return Ok(Some(result));
    }
    if let Some(upstream) = inputs.upstream {
        let adopted = adopt(
            juju,
            &relation,
            &app_bag,
            inputs,
            upstream,
            held,
            published_state.as_ref(),
        )?;
        if let Some(generation) = adopted {
            result.generation = Some(generation);
            result.waiting = None;
        } else if published_state.is_none() {
            result.waiting = Some(format!(
                "Waiting for fernet keys from {}",
                upstream_source(upstream)
            ));
        }
        return Ok(Some(result));
    }

    // The leader: create, rotate, or wait.
    let period = inputs.period.as_secs();
    let retiring = held.as_ref().and_then(|material| {
        material.fernet.retiring(
            inputs.max_active_keys,
            &published_state.as_ref()?.primary_since,
            inputs.token_expiration,
        )
    });
    let mut decision = leader_decision(
        published_state.as_ref(),
        &[],
        inputs.now,
        period,
        inputs.request,
        retiring,
    );
    if matches!(
        decision,
        LeaderDecision::Rotate { .. } | LeaderDecision::WaitFor { .. }
    ) {
        let own = held_fingerprint.clone().and_then(|fingerprint| {
            let generation = published_state.as_ref()?.generation;
            Some(Ack {
                generation,
                fingerprint,
            })
        });
        let mut peers = peer_acks(juju, &relation, own)?;
        if let Some(current) = &published_state {
            peers.extend(inputs.sites.iter().map(|(site, acked)| {
                let ack = (*acked == Some(current.generation)).then(|| Ack {
                    generation: current.generation,
                    fingerprint: current.fingerprint.clone(),
                });
                (sites::site_label(site), ack)
            }));
        }
        decision = leader_decision(
            published_state.as_ref(),
            &peers,
            inputs.now,
            period,
            inputs.request,
            retiring,
        );
    }
    match decision {
        LeaderDecision::Initialize
            if !juju
                .relation_ids(sites::SOURCE_ENDPOINT)
                .context("cannot list the fernet-keys-source relation")?
                .is_empty() =>
        {
            // Its relation-created has not run yet: keys of its own would only be merged in.
            result.waiting = Some("Waiting for fernet keys from the key source".to_owned());
        }
        LeaderDecision::Initialize => {
            // A new leader adopts what was published; only an empty bag means "never created".
            // Even then, keys that exist already are kept, so that replacing the Python charm
            // (or a keystone-manage setup) does not invalidate every token issued so far.
            let (material, origin) = initial_keys(juju, held)?;
            publish(juju, &relation, &app_bag, inputs, &material, 1)?;
            tracing::info!("fernet keys: generation 1 published ({origin})");
            result.generation = Some(1);
            result.waiting = None;
        }
        LeaderDecision::Rotate { forced_past } => {
            let current = published_state.clone().context("published state")?;
            let Some(material) = inputs.store.read()? else {
                bail!("the leader holds no keys to rotate");
            };
            let rotated = material.rotate_fernet(inputs.max_active_keys)?;
            let generation = current.generation + 1;
            publish(juju, &relation, &app_bag, inputs, &rotated, generation)?;
            // Rotating on its own is what a site that left its source said it would do.
            set_shared(
                juju,
                &relation,
                &[(crate::peer_keys::FERNET_FORMER_SOURCE, None)],
            )?;
            let units_to_update: Vec<String> = juju
                .relation_units(&relation)?
                .iter()
                .map(|u| u.to_string())
                .collect();
            tracing::info!(
                "fernet keys: rotated to generation {generation}, primary key {}",
                rotated.fernet.primary_index()
            );
            result.generation = Some(generation);
            if !forced_past.is_empty() {
                tracing::warn!(
                    "fernet keys: rotation forced past {}, which had not acknowledged generation {}",
                    forced_past.join(", "),
                    current.generation
                );
            }
            result.rotated = Some(Rotated {
                generation,
                primary_index: rotated.fernet.primary_index(),
                units_to_update,
                forced_past,
            });
        }
        LeaderDecision::WaitFor { units } => {
            tracing::info!(
                "fernet rotation due, waiting for {} to acknowledge the current keys",
                units.join(", ")
            );
            result.note = Some(format!("fernet rotation waiting for {}", units.join(", ")));
            result.blocked_rotation = Some(units);
        }
        LeaderDecision::TooSoon { key, next_allowed } => {
            let last_rotation = published_state.as_ref().map_or(0, |p| p.last_rotation);
            result.rotation_too_soon = Some(TooSoon {
                key,
                next_allowed,
                primary_until: retiring
                    .and_then(|r| r.safe_from)
                    .map(|safe| safe.saturating_sub(inputs.token_expiration)),
                last_rotation,
            });
        }
        LeaderDecision::NotDue { .. } => {}
    }
    Ok(Some(result))
}

fn upstream_source(upstream: &Upstream) -> &str {
    match upstream {
        Upstream::Waiting { source }
        | Upstream::Held { source, .. }
        | Upstream::Adopt { source, .. } => source,
    }
}

/// A consuming site's leader: publishes the source's set to its units (with the keys it held
/// added, while they may still be needed) as the next local generation. The local generation
/// it holds, unless it still waits for the source.
fn adopt(
    juju: &Juju,
    relation: &RelationId,
    app_bag: &crate::juju::Databag,
    inputs: &SyncInputs<'_>,
    upstream: &Upstream,
    held: Option<KeyMaterial>,
    published: Option<&Published>,
) -> Result<Option<u64>> {
    let Upstream::Adopt {
        source,
        generation: source_generation,
        fingerprint,
        material,
        keep_local_until,
    } = upstream
    else {
        return Ok(published.map(|p| p.generation));
    };
    let adopted = match (keep_local_until, &held) {
        (Some(_), Some(local)) => sites::merge(material, local),
        _ => material.clone(),
    };
    let generation = published.map_or(1, |p| p.generation + 1);
    publish(juju, relation, app_bag, inputs, &adopted, generation)?;
    set_shared(
        juju,
        relation,
        &[
            (
                crate::peer_keys::FERNET_SOURCE_GENERATION,
                Some(source_generation.to_string()),
            ),
            (
                crate::peer_keys::FERNET_SOURCE_FINGERPRINT,
                Some(fingerprint.clone()),
            ),
            (
                crate::peer_keys::FERNET_KEEP_LOCAL_UNTIL,
                keep_local_until.map(|t| t.to_string()),
            ),
        ],
    )?;
    tracing::info!(
        "fernet keys: adopted generation {source_generation} from {source} as local generation \
         {generation}{}",
        if adopted == *material {
            ""
        } else {
            ", keeping this site's own keys as secondaries"
        }
    );
    Ok(Some(generation))
}

/// The published fernet secret's id (Juju ≥ 3.1), to grant to another site.
pub fn fernet_secret_id(bag: &crate::juju::Databag) -> Option<SecretUri> {
    bag.get(peer_keys::FERNET_SECRET_ID)
        .and_then(|id| SecretUri::parse(id))
}

/// Whether every other unit acknowledged the published set (the leader's own is what it
/// published): one relation-get per unit.
pub fn others_hold_published(juju: &Juju) -> Result<bool> {
    let Some((relation, bag)) = app_data(juju)? else {
        return Ok(false);
    };
    let Some(current) = published(&bag) else {
        return Ok(false);
    };
    for unit in juju.relation_units(&relation)? {
        let data = juju.relation_data(&relation, &Bag::Unit(unit))?;
        if !current.acknowledged_by(ack_of(&data).as_ref()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The first key set: this unit's existing repositories, else the Python charm's leader setting,
/// else new keys.
fn initial_keys(juju: &Juju, held: Option<KeyMaterial>) -> Result<(KeyMaterial, &'static str)> {
    if let Some(material) = held {
        return Ok((material, "adopted the keys on disk"));
    }
    let settings = juju
        .leader_get()
        .context("cannot read the leader settings")?;
    if let Some(text) = settings.get(PYTHON_CHARM_KEYS) {
        match crate::fernet_keys::from_python_charm_leader_setting(text) {
            Ok(material) => return Ok((material, "adopted the Python charm's keys")),
            Err(e) => tracing::warn!("ignoring the Python charm's key_repository setting: {e}"),
        }
    }
    Ok((KeyMaterial::generate()?, "created new keys"))
}

/// Every unit of the peer relation with what it acknowledges: the others from their unit bags,
/// this one (the leader) from what it holds on disk.
fn peer_acks(
    juju: &Juju,
    relation: &RelationId,
    own: Option<Ack>,
) -> Result<Vec<(String, Option<Ack>)>> {
    let mut acks = vec![(juju.unit().to_string(), own)];
    for unit in juju.relation_units(relation)? {
        let bag = juju.relation_data(relation, &Bag::Unit(unit.clone()))?;
        acks.push((unit.to_string(), ack_of(&bag)));
    }
    Ok(acks)
}

/// Reads the published key material from the secret or the bag.
fn fetch(juju: &Juju, app_bag: &crate::juju::Databag) -> Result<Option<(KeyMaterial, u64)>> {
    if juju.supports_secrets() {
        let Some(uri) = app_bag
            .get(peer_keys::FERNET_SECRET_ID)
            .and_then(|id| SecretUri::parse(id))
        else {
            return Ok(None);
        };
        let content = juju
            .secret_get(&uri, SecretRead::Refresh)
            .context("cannot read the fernet keys secret")?;
        return Ok(Some(KeyMaterial::from_secret_content(&content)?));
    }
    match app_bag.get(peer_keys::FERNET_KEYS) {
        Some(text) => Ok(Some(KeyMaterial::from_bag_value(text)?)),
        None => Ok(None),
    }
}

/// Publishes a new key set (leader only) and applies it here first.
fn publish(
    juju: &Juju,
    relation: &RelationId,
    app_bag: &crate::juju::Databag,
    inputs: &SyncInputs<'_>,
    material: &KeyMaterial,
    generation: u64,
) -> Result<()> {
    inputs
        .store
        .apply(material)
        .context("cannot write the key repositories")?;
    let fingerprint = material.fingerprint();
    let mut changes = DatabagChanges::new();
    if juju.supports_secrets() {
        let content = material.to_secret_content(generation);
        let what = AppSecret {
            id_key: peer_keys::FERNET_SECRET_ID,
            label: SECRET_LABEL,
            description: "Keystone fernet and credential keys",
        };
        if let Some(uri) = put_app_secret(juju, app_bag, &what, &content)? {
            changes.insert(
                peer_keys::FERNET_SECRET_ID.to_owned(),
                Some(uri.to_string()),
            );
        }
    } else {
        changes.insert(
            peer_keys::FERNET_KEYS.to_owned(),
            Some(material.to_bag_value(generation).into_inner()),
        );
    }
    changes.insert(
        peer_keys::FERNET_GENERATION.to_owned(),
        Some(generation.to_string()),
    );
    changes.insert(
        peer_keys::FERNET_FINGERPRINT.to_owned(),
        Some(fingerprint.clone()),
    );
    changes.insert(
        peer_keys::FERNET_LAST_ROTATION.to_owned(),
        Some(inputs.now.to_string()),
    );
    // A key's time as primary starts when it is first published as primary; keys adopted from
    // elsewhere count from now, which only makes retiring them wait longer.
    let mut since = primary_since(app_bag);
    since.retain(|index, _| material.fernet.keys().contains_key(index));
    since
        .entry(material.fernet.primary_index())
        .or_insert(inputs.now);
    let since = serde_json::to_string(&since).context("cannot encode the keys' primary times")?;
    changes.insert(peer_keys::FERNET_PRIMARY_SINCE.to_owned(), Some(since));
    juju.relation_set(relation, true, &changes)
        .context("cannot publish the fernet keys in the cluster relation")
}

/// An application-owned secret whose id the peer application bag keeps under `id_key`.
struct AppSecret {
    id_key: &'static str,
    label: &'static str,
    description: &'static str,
}

/// Sets the secret's content (a new revision), or creates the secret; the new secret's URI when
/// it was created (the caller publishes it under `id_key`).
fn put_app_secret(
    juju: &Juju,
    bag: &crate::juju::Databag,
    secret: &AppSecret,
    content: &crate::juju::SecretContent,
) -> Result<Option<SecretUri>> {
    match bag.get(secret.id_key).and_then(|id| SecretUri::parse(id)) {
        Some(uri) => {
            juju.secret_set(&uri, content)
                .with_context(|| format!("cannot update the {} secret", secret.label))?;
            Ok(None)
        }
        None => {
            let uri = juju
                .secret_add(
                    content,
                    &NewSecret {
                        owner: SecretOwner::Application,
                        label: Some(secret.label.to_owned()),
                        description: Some(secret.description.to_owned()),
                    },
                )
                .with_context(|| format!("cannot create the {} secret", secret.label))?;
            Ok(Some(uri))
        }
    }
}

fn acknowledge(
    juju: &Juju,
    relation: &RelationId,
    generation: u64,
    fingerprint: &str,
) -> Result<()> {
    let own = juju.relation_data(relation, &Bag::Unit(juju.unit().clone()))?;
    if ack_of(&own).is_some_and(|a| a.generation == generation && a.fingerprint == fingerprint) {
        return Ok(());
    }
    let changes = DatabagChanges::from([
        (
            peer_keys::FERNET_GENERATION.to_owned(),
            Some(generation.to_string()),
        ),
        (
            peer_keys::FERNET_FINGERPRINT.to_owned(),
            Some(fingerprint.to_owned()),
        ),
    ]);
    juju.relation_set(relation, false, &changes)
        .context("cannot acknowledge the fernet keys in the cluster relation")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Shared state besides the keys, in the peer application bag (only the leader writes it; every
// unit reads it): the admin credentials here, and other concerns' keys through [`set_shared`].

const ADMIN_SECRET_LABEL: &str = "keystone-admin";
/// Content keys, in the secret and in the bag's JSON.
const CHARM_PASSWORD: &str = "charm-admin-password";
const ADMIN_PASSWORD: &str = "admin-password";
/// The Python charm's leader settings for the same two passwords: adopted on upgrade, so the
/// operator's admin password keeps working when this charm replaces it.
const PYTHON_ADMIN_PASSWORD: &str = "admin_passwd";
const PYTHON_CHARM_PASSWORD: &str = "_charm-keystone-admin_passwd";

/// The peer relation, when it exists.
pub fn relation(juju: &Juju) -> Result<Option<RelationId>> {
    Ok(juju
        .relation_ids(ENDPOINT)
        .context("cannot list the cluster relation")?
        .into_iter()
        .next())
}

/// This unit's own address on each binding, in its cluster bag (`public-address`,
/// `internal-address`, `admin-address`, as the Python charm), for its peers. Not read in
/// update-status: Juju runs config-changed when a unit's addresses change.
fn own_addresses(hook: &Hook<'_>) -> Result<DatabagChanges> {
    if *hook.event == crate::event::Event::UpdateStatus {
        return Ok(DatabagChanges::new());
    }
    let mut changes = DatabagChanges::new();
    for role in crate::addresses::Role::ALL {
        let info = hook
            .juju
            .network_get(role.binding())
            .with_context(|| format!("cannot read this unit's {} binding", role.binding()))?;
        let binding = crate::addresses::Binding::from_network(&info);
        let address = crate::addresses::unit_address(&hook.config, role, &binding);
        changes.insert(
            format!("{}-address", role.binding()),
            address.map(|a| a.to_string()),
        );
    }
    Ok(changes)
}

/// After the readiness check (`answering`): every unit tells its peers its addresses, and a
/// unit other than the leader says whether it may serve (it holds the current keys and its
/// Keystone answers); the leader keeps, in the application bag, whether every other unit does
/// (every unit goal-state expects, joined or not), looking again whenever a peer's data
/// changed.
pub fn report_readiness(hook: &Hook<'_>, answering: bool) -> Result<()> {
    let Some(relation) = relation(hook.juju)? else {
        return Ok(());
    };
    let held = hook.facts.get::<HeldKeys>().map(|k| k.generation);
    let mut changes = own_addresses(hook)?;
    let ready = held.filter(|_| answering).map(|g| g.to_string());
    if !hook.leader {
        changes.insert(peer_keys::UNIT_READY.to_owned(), ready);
        hook.juju
            .relation_set(&relation, false, &changes)
            .context("cannot say in the cluster relation whether this unit is ready")?;
        return Ok(());
    }
    if !changes.is_empty() {
        // Read first, so that unchanged addresses cost no relation-set.
        hook.juju
            .relation_data(&relation, &Bag::Unit(hook.juju.unit().clone()))
            .context("cannot read this unit's cluster data")?;
        hook.juju
            .relation_set(&relation, false, &changes)
            .context("cannot tell the other units this unit's addresses")?;
    }
    // The leader's own readiness, for its peers' haproxy, in the application bag every hook
    // reads anyway.
    let leader_ready = ready.map(|g| format!("{} {g}", hook.juju.unit().as_str()));
    set_shared(
        hook.juju,
        &relation,
        &[(peer_keys::LEADER_READY, leader_ready)],
    )?;
    let peer_hook = matches!(
        hook.event,
        crate::event::Event::Relation {
            endpoint: crate::event::Endpoint::Cluster,
            ..
        }
    );
    let Some(generation) = held else {
        return Ok(());
    };
    let bag = hook
        .juju
        .relation_data(&relation, &Bag::App(hook.juju.app()))
        .context("cannot read the cluster application data")?;
    // Worked out again in peer hooks, and whenever it does not say this generation: a lone
    // unit gets no peer hook after its own rotation.
    if !peer_hook && bag.get(peer_keys::UNITS_READY) == Some(&generation.to_string()) {
        return Ok(());
    }
    let mut all = true;
    let mut seen = std::collections::BTreeSet::new();
    for unit in hook.juju.relation_units(&relation)? {
        let data = hook
            .juju
            .relation_data(&relation, &Bag::Unit(unit.clone()))?;
        all &= data
            .get(peer_keys::UNIT_READY)
            .and_then(|g| g.parse::<u64>().ok())
            == Some(generation);
        seen.insert(unit.as_str().to_owned());
    }
    // A unit Juju is adding but that has not joined the relation yet is not ready either.
    let goal = hook
        .juju
        .goal_state()
        .context("cannot read the application's goal state")?;
    let me = hook.juju.unit().as_str().to_owned();
    all &= goal
        .expected_units()
        .into_iter()
        .all(|unit| unit == me || seen.contains(unit));
    let value = match all {
        true => generation.to_string(),
        false => "none".to_owned(),
    };
    set_shared(
        hook.juju,
        &relation,
        &[(peer_keys::UNITS_READY, Some(value))],
    )
}

/// The peers as [`KnownPeers`] says, read again only in the hooks where they can change.
pub fn known_peers(hook: &Hook<'_>) -> Result<KnownPeers> {
    let files = hook.machine.files.as_ref();
    let path = std::path::Path::new(crate::paths::KNOWN_PEERS);
    let kept: Option<KnownPeers> = files
        .read(path)
        .context("cannot read the peers this unit knows")?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let peers_may_have_changed = matches!(
        hook.event,
        crate::event::Event::Relation {
            endpoint: crate::event::Endpoint::Cluster,
            ..
        } | crate::event::Event::Start
            | crate::event::Event::UpgradeCharm
            | crate::event::Event::LeaderElected
    );
    // Juju runs config-changed when this unit's addresses change: its own is read again then.
    let own_may_have_changed =
        peers_may_have_changed || *hook.event == crate::event::Event::ConfigChanged;
    let known = match &kept {
        Some(kept) if !own_may_have_changed => kept.clone(),
        _ => {
            let peers = match &kept {
                Some(kept) if !peers_may_have_changed => kept.peers.clone(),
                _ => peers(hook.juju)?,
            };
            let known = KnownPeers {
                own: own_address(hook.juju)?,
                peers,
            };
            if kept.as_ref() != Some(&known) {
                let text = serde_json::to_vec(&known).context("cannot encode the peers")?;
                files
                    .write(path, &text, &crate::host::fs::Owner::root(), 0o644)
                    .context("cannot keep the peers this unit knows")?;
            }
            known
        }
    };
    Ok(known)
}

/// This unit's address on the cluster binding, as Juju gives it to its peers (its own bag's
/// `ingress-address`, else `private-address`).
fn own_address(juju: &Juju) -> Result<Option<std::net::IpAddr>> {
    let Some(relation) = relation(juju)? else {
        return Ok(None);
    };
    let bag = juju
        .relation_data(&relation, &Bag::Unit(juju.unit().clone()))
        .context("cannot read this unit's cluster data")?;
    Ok(["ingress-address", "private-address"]
        .iter()
        .find_map(|key| bag.get(*key)?.parse().ok()))
}

/// Every other unit, as its cluster bag (and for the leader, the application bag) describes it.
pub fn peers(juju: &Juju) -> Result<Vec<Peer>> {
    let Some((relation, app_bag)) = app_data(juju)? else {
        return Ok(Vec::new());
    };
    let leader_ready = app_bag
        .get(peer_keys::LEADER_READY)
        .and_then(|text| text.split_once(' '))
        .and_then(|(unit, g)| Some((unit.to_owned(), g.parse::<u64>().ok()?)));
    let mut peers = Vec::new();
    for unit in juju.relation_units(&relation)? {
        let bag = juju
            .relation_data(&relation, &Bag::Unit(unit.clone()))
            .with_context(|| format!("cannot read {unit}'s cluster data"))?;
        let address = ["ingress-address", "private-address"]
            .iter()
            .find_map(|key| bag.get(*key)?.parse().ok());
        let role_addresses = crate::addresses::Role::ALL
            .iter()
            .filter_map(|role| {
                let address = bag.get(&format!("{}-address", role.binding()))?;
                Some((role.binding().to_owned(), address.parse().ok()?))
            })
            .collect();
        peers.push(Peer {
            unit: unit.as_str().to_owned(),
            address,
            role_addresses,
            ready: bag
                .get(peer_keys::UNIT_READY)
                .and_then(|g| g.parse().ok())
                .or_else(|| {
                    leader_ready
                        .as_ref()
                        .filter(|(leader, _)| leader == unit.as_str())
                        .map(|(_, g)| *g)
                }),
        });
    }
    Ok(peers)
}

/// Whether every other unit holds fernet keys `generation` with its Keystone answering, as the
/// leader last saw it (kept in the application bag, so asking costs no hook-tool call).
pub fn every_unit_ready(peer_bag: &crate::juju::Databag, generation: u64) -> bool {
    peer_bag
        .get(peer_keys::UNITS_READY)
        .and_then(|g| g.parse::<u64>().ok())
        == Some(generation)
}

/// The peer relation and its application bag, when the relation exists.
pub fn app_data(juju: &Juju) -> Result<Option<(RelationId, crate::juju::Databag)>> {
    let Some(relation) = juju
        .relation_ids(ENDPOINT)
        .context("cannot list the cluster relation")?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let bag = juju
        .relation_data(&relation, &Bag::App(juju.app()))
        .context("cannot read the cluster application data")?;
    Ok(Some((relation, bag)))
}

/// Sets (Some) or deletes (None) leader-owned keys of the peer application bag.
pub fn set_shared(
    juju: &Juju,
    relation: &RelationId,
    changes: &[(&str, Option<String>)],
) -> Result<()> {
    let changes: DatabagChanges = changes
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect();
    juju.relation_set(relation, true, &changes)
        .context("cannot update the cluster application data")
}

/// The two passwords every unit shares: the charm's own admin (made by bootstrap, used for the
/// API) and the operator's admin user (unless admin-password is set in config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    pub charm_password: Sensitive<String>,
    pub admin_password: Sensitive<String>,
    /// The fernet key source they were adopted from (see [`crate::fernet_keys::sites`]): its
    /// admin password is the one in force, whatever this site's admin-password says.
    pub adopted_from: Option<String>,
}

impl AdminCredentials {
    /// The admin password in force: config's admin-password, else the stored one; on a site
    /// that adopted its fernet key source's credentials, always the source's (one admin user in
    /// one shared database: a site's own value would lock the other sites out).
    pub fn password_in_force(&self, config: &Config) -> Sensitive<String> {
        if self.adopted_from.is_some() {
            return self.admin_password.clone();
        }
        match crate::identity::admin_password_choice(
            config.admin_password.as_ref(),
            Some(&self.admin_password),
        ) {
            crate::identity::AdminPasswordChoice::FromConfig(p)
            | crate::identity::AdminPasswordChoice::Stored(p) => p,
            crate::identity::AdminPasswordChoice::GenerateNew => self.admin_password.clone(),
        }
    }

    pub fn to_content(&self) -> crate::juju::SecretContent {
        crate::juju::SecretContent::from([
            (CHARM_PASSWORD.to_owned(), self.charm_password.clone()),
            (ADMIN_PASSWORD.to_owned(), self.admin_password.clone()),
        ])
    }

    pub fn from_content(content: &crate::juju::SecretContent) -> Result<AdminCredentials> {
        let get = |key: &str| {
            content
                .get(key)
                .filter(|v| !v.expose().is_empty())
                .cloned()
                .with_context(|| format!("the stored admin credentials have no {key}"))
        };
        Ok(AdminCredentials {
            charm_password: get(CHARM_PASSWORD)?,
            admin_password: get(ADMIN_PASSWORD)?,
            adopted_from: None,
        })
    }
}

/// Secret content the leader shares with every unit: an application secret on Juju ≥ 3.1
/// (its id under `id_key` in the peer application bag), else JSON under `bag_key` in that bag.
pub struct SharedSecret {
    id_key: &'static str,
    bag_key: &'static str,
    label: &'static str,
    description: &'static str,
}

const ADMIN_CREDENTIALS: SharedSecret = SharedSecret {
    id_key: peer_keys::ADMIN_SECRET_ID,
    bag_key: peer_keys::ADMIN_PASSWORDS,
    label: ADMIN_SECRET_LABEL,
    description: "Keystone admin passwords",
};

/// The service users' passwords (identity-service and identity-credentials).
pub const SERVICE_PASSWORDS: SharedSecret = SharedSecret {
    id_key: peer_keys::SERVICE_PASSWORDS_SECRET_ID,
    bag_key: peer_keys::SERVICE_PASSWORDS,
    label: "keystone-service-passwords",
    description: "Keystone service users' passwords",
};

impl SharedSecret {
    /// The secret's URI, once the leader stored its content in one.
    pub fn uri(&self, bag: &crate::juju::Databag) -> Option<SecretUri> {
        bag.get(self.id_key).and_then(|id| SecretUri::parse(id))
    }
}

/// The credentials a fernet key source offers other sites (see
/// [`crate::relations::fernet_keys`]), when they can travel in a secret.
pub const SITE_CREDENTIALS: SharedSecret = SharedSecret {
    id_key: peer_keys::SITE_CREDENTIALS_SECRET_ID,
    bag_key: peer_keys::SITE_CREDENTIALS,
    label: "keystone-site-credentials",
    description: "Keystone passwords shared with other sites",
};

/// Identifies secret content without revealing it: SHA-256 over its sorted entries. Only for
/// content that holds a generated password (32 random characters), so that the digest cannot
/// be searched for the other values either.
pub fn content_digest(content: &crate::juju::SecretContent) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for (key, value) in content {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.expose().as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Secret content as JSON, where it travels in a bag.
pub fn content_to_json(content: &crate::juju::SecretContent) -> Result<Sensitive<String>> {
    let map: std::collections::BTreeMap<&String, &String> =
        content.iter().map(|(k, v)| (k, v.expose())).collect();
    Ok(Sensitive::new(
        serde_json::to_string(&map).context("cannot encode secret content as JSON")?,
    ))
}

/// Secret content from its JSON (see [`content_to_json`]).
pub fn content_from_json(text: &str) -> Result<crate::juju::SecretContent> {
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(text).context("not a JSON object of strings")?;
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, Sensitive::new(v)))
        .collect())
}

/// Reads a shared secret's content (None before the leader stored it).
pub fn read_shared(
    juju: &Juju,
    bag: &crate::juju::Databag,
    what: &SharedSecret,
) -> Result<Option<crate::juju::SecretContent>> {
    if let Some(uri) = what.uri(bag) {
        let content = juju
            .secret_get(&uri, SecretRead::Refresh)
            .with_context(|| format!("cannot read the {} secret", what.label))?;
        return Ok(Some(content));
    }
    match bag.get(what.bag_key) {
        Some(text) => content_from_json(text).map(Some).with_context(|| {
            format!(
                "the {} in the cluster relation are not valid JSON",
                what.description
            )
        }),
        None => Ok(None),
    }
}

/// Stores a shared secret's whole content (leader only); the secret's URI when it is in one.
pub fn store_shared(
    juju: &Juju,
    relation: &RelationId,
    bag: &crate::juju::Databag,
    what: &SharedSecret,
    content: &crate::juju::SecretContent,
) -> Result<Option<SecretUri>> {
    if juju.supports_secrets() {
        let secret = AppSecret {
            id_key: what.id_key,
            label: what.label,
            description: what.description,
        };
        match put_app_secret(juju, bag, &secret, content)? {
            Some(uri) => {
                set_shared(juju, relation, &[(what.id_key, Some(uri.to_string()))])?;
                Ok(Some(uri))
            }
            None => Ok(what.uri(bag)),
        }
    } else {
        let text = content_to_json(content)
            .with_context(|| format!("cannot encode the {}", what.description))?;
        set_shared(juju, relation, &[(what.bag_key, Some(text.into_inner()))])?;
        Ok(None)
    }
}

/// How many times the admin credentials changed (0 before they were made).
pub fn admin_generation(bag: &crate::juju::Databag) -> u64 {
    bag.get(peer_keys::ADMIN_GENERATION)
        .and_then(|g| g.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Reads the stored admin credentials (None before the leader made them).
pub fn admin_credentials(
    juju: &Juju,
    bag: &crate::juju::Databag,
) -> Result<Option<AdminCredentials>> {
    let Some(content) = read_shared(juju, bag, &ADMIN_CREDENTIALS)? else {
        return Ok(None);
    };
    let mut credentials = AdminCredentials::from_content(&content)?;
    credentials.adopted_from = bag.get(peer_keys::ADMIN_ADOPTED_FROM).cloned();
    Ok(Some(credentials))
}

/// Stores `credentials` (leader only): in an application secret on Juju ≥ 3.1, else in the bag.
pub fn store_admin_credentials(
    juju: &Juju,
    relation: &RelationId,
    bag: &crate::juju::Databag,
    credentials: &AdminCredentials,
) -> Result<()> {
    store_shared(
        juju,
        relation,
        bag,
        &ADMIN_CREDENTIALS,
        &credentials.to_content(),
    )?;
    let generation = admin_generation(bag) + 1;
    set_shared(
        juju,
        relation,
        &[
            (peer_keys::ADMIN_GENERATION, Some(generation.to_string())),
            (
                peer_keys::ADMIN_ADOPTED_FROM,
                credentials.adopted_from.clone(),
            ),
        ],
    )
}

/// The stored credentials, made by the leader the first time they are needed: adopted from the
/// Python charm's leader settings when it ran here before, else generated. None on a
/// non-leader before the leader made them.
pub fn ensure_admin_credentials(
    juju: &Juju,
    relation: &RelationId,
    bag: &crate::juju::Databag,
) -> Result<Option<AdminCredentials>> {
    if let Some(stored) = admin_credentials(juju, bag)? {
        return Ok(Some(stored));
    }
    if !juju
        .is_leader()
        .context("cannot tell whether this unit leads")?
    {
        return Ok(None);
    }
    let settings = juju
        .leader_get()
        .context("cannot read the leader settings")?;
    let adopt = |key: &str| -> Result<Sensitive<String>> {
        match settings.get(key).filter(|v| !v.trim().is_empty()) {
            Some(value) => Ok(Sensitive::new(value.trim().to_owned())),
            None => crate::identity::generate_password()
                .map_err(|e| anyhow::anyhow!("cannot generate a password: {e}")),
        }
    };
    let credentials = AdminCredentials {
        charm_password: adopt(PYTHON_CHARM_PASSWORD)?,
        admin_password: adopt(PYTHON_ADMIN_PASSWORD)?,
        adopted_from: None,
    };
    store_admin_credentials(juju, relation, bag, &credentials)?;
    tracing::info!("admin credentials stored for every unit");
    Ok(Some(credentials))
}
