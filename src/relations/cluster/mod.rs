//! The `cluster` peer relation: one fernet and credential key set on every unit ([`run`], the
//! step). Every step reads and writes the relation's bags through [`crate::peers::Peers`];
//! every key is in [`crate::peer_keys`]. Beside the key sync: the admin credentials
//! every unit shares ([`admin`]), other secrets the leader shares ([`shared`]), and what the
//! units tell each other of their addresses and readiness ([`readiness`]).
//!
//! The leader publishes (see [`crate::key_sets`] for the protocol):
//! - application bag: `fernet-generation`, `fernet-fingerprint`, `fernet-last-rotation`,
//!   `fernet-primary-since` (when each key held became primary, JSON), and either
//!   `fernet-secret-id` (Juju ≥ 3.1: the keys are in an application-owned secret) or
//!   `fernet-keys` (older Juju: the keys themselves, JSON);
//! - every other unit acknowledges in its unit bag: `fernet-generation`, `fernet-fingerprint`
//!   (the leader's own state is what it published and what its disk holds).
//!
//! Decisions come from the pure functions of [`crate::key_sets`]; this module reads what they
//! need (as few hook tools as possible), and carries them out.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::facts::{FactName, HeldKeys, KeySync, Rotated, TooSoon};
use crate::host::keys::KeyStore;
use crate::juju::{DatabagChanges, Juju, NewSecret, SecretOwner, SecretRead, SecretUri};
use crate::key_sets::sites::{self, Upstream};
use crate::key_sets::{
    Ack, KeyMaterial, LeaderDecision, Published, RotationRequest, UnitDecision, leader_decision,
    unit_decision,
};
use crate::machine::Machine;
use crate::peer_keys;
use crate::peers::Peers;
use crate::step::{Condition, Hook, Step};

pub mod admin;
pub mod readiness;
pub mod shared;

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
    let Some(peers) = hook.peers.as_ref() else {
        return Ok(Vec::new());
    };
    let sync = sync(hook.juju, peers, &inputs)?;
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
    let Some(published) = hook
        .peers
        .as_ref()
        .and_then(|peers| published(&peers.app()))
    else {
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
        primary_since: key_times(bag, peer_keys::FERNET_PRIMARY_SINCE),
        primary_everywhere: key_times(bag, peer_keys::FERNET_PRIMARY_EVERYWHERE),
    })
}

/// A time for each key held (JSON under `key`: index → unix seconds); empty when a revision
/// that did not keep it published.
fn key_times(bag: &crate::juju::Databag, key: &str) -> BTreeMap<u32, u64> {
    bag.get(key)
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
/// them. Three roles: every unit holds what was published ([`hold`]); then a consuming site's leader
/// adopts its source's set ([`adopt_upstream`]), any other leader creates and rotates ([`lead`]).
fn sync(juju: &Juju, peers: &Peers<'_>, inputs: &SyncInputs<'_>) -> Result<KeySync> {
    let published_state = published(&peers.app());
    let leader = juju
        .is_leader()
        .context("cannot tell whether this unit leads")?;
    let held = inputs
        .store
        .read()
        .context("cannot read the key repositories")?;
    let peer = PeerView {
        juju,
        peers,
        inputs,
    };
    let mut result = hold(&peer, published_state.as_ref(), held.as_ref(), leader)?;
    if leader {
        match inputs.upstream {
            Some(upstream) => {
                adopt_upstream(&peer, upstream, held, published_state.as_ref(), &mut result)?
            }
            None => lead(peer, held, published_state, &mut result)?,
        }
    }
    Ok(result)
}

/// What every role of the key sync reads: the peer relation and the inputs from outside Juju.
struct PeerView<'a> {
    juju: &'a Juju,
    peers: &'a Peers<'a>,
    inputs: &'a SyncInputs<'a>,
}

/// Every unit, the leader too: holds what was published and, unless it leads, says so.
fn hold(
    peer: &PeerView<'_>,
    published_state: Option<&Published>,
    held: Option<&KeyMaterial>,
    leader: bool,
) -> Result<KeySync> {
    let mut result = KeySync::default();
    let held_fingerprint = held.map(KeyMaterial::fingerprint);
    match unit_decision(published_state, held_fingerprint.as_deref()) {
        UnitDecision::WaitForLeader => {
            if !leader {
                result.waiting = Some("Waiting for the leader to create fernet keys".to_owned());
            }
        }
        UnitDecision::Apply => {
            let published = published_state.context("published state")?;
            match fetch(peer.juju, &peer.peers.app())? {
                Some((material, generation))
                    if generation == published.generation
                        && material.fingerprint() == published.fingerprint =>
                {
                    peer.inputs
                        .store
                        .apply(&material)
                        .context("cannot write the key repositories")?;
                    tracing::info!("fernet keys: applied generation {generation}");
                    if !leader {
                        acknowledge(peer.peers, generation, &published.fingerprint)?;
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
            let published = published_state.context("published state")?;
            // The leader's state is what it published (and holds on disk); only the others
            // acknowledge, which spares every unit a peer hook per rotation.
            if !leader {
                acknowledge(peer.peers, published.generation, &published.fingerprint)?;
            }
            result.generation = Some(published.generation);
        }
    }
    Ok(result)
}

/// A consuming site's leader: takes its keys from the source, never rotates on its own.
fn adopt_upstream(
    peer: &PeerView<'_>,
    upstream: &Upstream,
    held: Option<KeyMaterial>,
    published_state: Option<&Published>,
    result: &mut KeySync,
) -> Result<()> {
    let adopted = adopt(peer, upstream, held, published_state)?;
    if let Some(generation) = adopted {
        result.generation = Some(generation);
        result.waiting = None;
    } else if published_state.is_none() {
        result.waiting = Some(format!(
            "Waiting for fernet keys from {}",
            upstream_source(upstream)
        ));
    }
    Ok(())
}

/// The leader of a site with no source: creates the keys, rotates them when due (or asked) and
/// safe, or says whom it waits for.
fn lead(
    peer: PeerView<'_>,
    held: Option<KeyMaterial>,
    mut published_state: Option<Published>,
    result: &mut KeySync,
) -> Result<()> {
    let inputs = peer.inputs;
    let held_fingerprint = held.as_ref().map(KeyMaterial::fingerprint);
    if let (Some(published), Some(material)) = (published_state.as_mut(), held.as_ref()) {
        // What is noted is in the bag from here on: a rotation in this same hook (forced)
        // publishes the times it keeps from the bag.
        note_primary_everywhere(&peer, published, material, held_fingerprint.as_deref())?;
    }
    let retiring = held.as_ref().and_then(|material| {
        material.fernet.retiring(
            inputs.max_active_keys,
            published_state.as_ref()?,
            inputs.token_expiration,
        )
    });
    let decision = lead_decision(&peer, published_state.as_ref(), held_fingerprint, retiring)?;
    match decision {
        LeaderDecision::Initialize
            if !peer
                .juju
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
            let (material, origin) = initial_keys(peer.juju, held)?;
            publish(&peer, &material, 1)?;
            tracing::info!("fernet keys: generation 1 published ({origin})");
            result.generation = Some(1);
            result.waiting = None;
        }
        LeaderDecision::Rotate { forced_past } => {
            let current = published_state.context("published state")?;
            result.generation = Some(current.generation + 1);
            result.rotated = Some(rotate(&peer, &current, forced_past)?);
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
    Ok(())
}

/// What the leader does about its keys. The units' acknowledgements are read only when a
/// rotation is due or asked for: the decision first runs without them.
fn lead_decision(
    peer: &PeerView<'_>,
    published_state: Option<&Published>,
    held_fingerprint: Option<String>,
    retiring: Option<crate::key_sets::Retiring>,
) -> Result<LeaderDecision> {
    let inputs = peer.inputs;
    let period = inputs.period.as_secs();
    let decision = leader_decision(
        published_state,
        &[],
        inputs.now,
        period,
        inputs.request,
        retiring,
    );
    if !matches!(
        decision,
        LeaderDecision::Rotate { .. } | LeaderDecision::WaitFor { .. }
    ) {
        return Ok(decision);
    }
    let own = held_fingerprint.and_then(|fingerprint| {
        Some(Ack {
            generation: published_state?.generation,
            fingerprint,
        })
    });
    let mut peers = peer_acks(peer.juju, peer.peers, own)?;
    if let Some(current) = published_state {
        peers.extend(inputs.sites.iter().map(|(site, acked)| {
            let ack = (*acked == Some(current.generation)).then(|| Ack {
                generation: current.generation,
                fingerprint: current.fingerprint.clone(),
            });
            (sites::site_label(site), ack)
        }));
    }
    Ok(leader_decision(
        published_state,
        &peers,
        inputs.now,
        period,
        inputs.request,
        retiring,
    ))
}

/// Rotates the keys the leader holds and publishes them as the generation after `current`.
fn rotate(peer: &PeerView<'_>, current: &Published, forced_past: Vec<String>) -> Result<Rotated> {
    let inputs = peer.inputs;
    let Some(material) = inputs.store.read()? else {
        bail!("the leader holds no keys to rotate");
    };
    let rotated = material.rotate_fernet(inputs.max_active_keys)?;
    let generation = current.generation + 1;
    publish(peer, &rotated, generation)?;
    // Rotating on its own is what a site that left its source said it would do.
    peer.peers
        .set_shared(&[(crate::peer_keys::FERNET_FORMER_SOURCE, None)])?;
    let units_to_update: Vec<String> = peer.peers.units()?.iter().map(|u| u.to_string()).collect();
    tracing::info!(
        "fernet keys: rotated to generation {generation}, primary key {}",
        rotated.fernet.primary_index()
    );
    if !forced_past.is_empty() {
        tracing::warn!(
            "fernet keys: rotation forced past {}, which had not acknowledged generation {}",
            forced_past.join(", "),
            current.generation
        );
    }
    Ok(Rotated {
        generation,
        primary_index: rotated.fernet.primary_index(),
        units_to_update,
        forced_past,
    })
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
    peer: &PeerView<'_>,
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
    publish(peer, &adopted, generation)?;
    peer.peers.set_shared(&[
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
    ])?;
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
pub fn others_hold_published(peers: &Peers<'_>) -> Result<bool> {
    let Some(current) = published(&peers.app()) else {
        return Ok(false);
    };
    for unit in peers.units()? {
        let data = peers.unit_bag(&unit)?;
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
        match crate::key_sets::from_python_charm_leader_setting(text) {
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
    peers: &Peers<'_>,
    own: Option<Ack>,
) -> Result<Vec<(String, Option<Ack>)>> {
    let mut acks = vec![(juju.unit().to_string(), own)];
    for unit in peers.units()? {
        let bag = peers.unit_bag(&unit)?;
        acks.push((unit.to_string(), ack_of(&bag)));
    }
    Ok(acks)
}

/// The leader notes when it first sees every unit and site hold the current primary key: until
/// then, one that applied the rotation late may still sign tokens with the key before it, which
/// must then stay a token lifetime longer. Read in the hooks after a rotation, until they all
/// do; once noted, no hook reads the acknowledgements for it again.
fn note_primary_everywhere(
    peer: &PeerView<'_>,
    published: &mut Published,
    material: &KeyMaterial,
    held_fingerprint: Option<&str>,
) -> Result<()> {
    let primary = material.fernet.primary_index();
    if published.primary_everywhere.contains_key(&primary)
        || held_fingerprint != Some(published.fingerprint.as_str())
    {
        return Ok(());
    }
    let own = Some(Ack {
        generation: published.generation,
        fingerprint: published.fingerprint.clone(),
    });
    let units = peer_acks(peer.juju, peer.peers, own)?;
    let inputs = peer.inputs;
    let sites_hold = inputs
        .sites
        .iter()
        .all(|(_, acked)| *acked == Some(published.generation));
    if !sites_hold
        || !units
            .iter()
            .all(|(_, ack)| published.acknowledged_by(ack.as_ref()))
    {
        return Ok(());
    }
    published.primary_everywhere.insert(primary, inputs.now);
    let text = serde_json::to_string(&published.primary_everywhere)
        .context("cannot encode when the keys were primary everywhere")?;
    peer.peers
        .set_shared(&[(peer_keys::FERNET_PRIMARY_EVERYWHERE, Some(text))])
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
fn publish(peer: &PeerView<'_>, material: &KeyMaterial, generation: u64) -> Result<()> {
    let (juju, inputs) = (peer.juju, peer.inputs);
    let app_bag = &peer.peers.app();
    inputs
        .store
        .apply(material)
        .context("cannot write the key repositories")?;
    let fingerprint = material.fingerprint();
    let mut changes: Vec<(&str, Option<String>)> = Vec::new();
    if juju.supports_secrets() {
        let content = material.to_secret_content(generation);
        let what = AppSecret {
            id_key: peer_keys::FERNET_SECRET_ID,
            label: SECRET_LABEL,
            description: "Keystone fernet and credential keys",
        };
        if let Some(uri) = put_app_secret(juju, app_bag, &what, &content)? {
            changes.push((peer_keys::FERNET_SECRET_ID, Some(uri.to_string())));
        }
    } else {
        changes.push((
            peer_keys::FERNET_KEYS,
            Some(material.to_bag_value(generation).into_inner()),
        ));
    }
    changes.push((peer_keys::FERNET_GENERATION, Some(generation.to_string())));
    changes.push((peer_keys::FERNET_FINGERPRINT, Some(fingerprint)));
    changes.push((
        peer_keys::FERNET_LAST_ROTATION,
        Some(inputs.now.to_string()),
    ));
    // A key's time as primary starts when it is first published as primary; keys adopted from
    // elsewhere count from now, which only makes retiring them wait longer.
    let mut since = key_times(app_bag, peer_keys::FERNET_PRIMARY_SINCE);
    since.retain(|index, _| material.fernet.keys().contains_key(index));
    since
        .entry(material.fernet.primary_index())
        .or_insert(inputs.now);
    let since = serde_json::to_string(&since).context("cannot encode the keys' primary times")?;
    changes.push((peer_keys::FERNET_PRIMARY_SINCE, Some(since)));
    // The new primary is held everywhere once every unit says so (note_primary_everywhere).
    let mut everywhere = key_times(app_bag, peer_keys::FERNET_PRIMARY_EVERYWHERE);
    everywhere.retain(|index, _| material.fernet.keys().contains_key(index));
    let everywhere = serde_json::to_string(&everywhere)
        .context("cannot encode when the keys were primary everywhere")?;
    changes.push((peer_keys::FERNET_PRIMARY_EVERYWHERE, Some(everywhere)));
    peer.peers
        .set_shared(&changes)
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

fn acknowledge(peers: &Peers<'_>, generation: u64, fingerprint: &str) -> Result<()> {
    let own = peers.own_bag()?;
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
    peers
        .set_own(&changes)
        .context("cannot acknowledge the fernet keys in the cluster relation")
}
