//! What the units tell each other through their cluster bags besides the keys: their
//! addresses, whether each may serve (it holds the current keys and its Keystone answers), and,
//! from the leader, whether every unit does. haproxy's backends and the shared cache are made
//! from the peers as this unit knows them.

use anyhow::{Context as _, Result};

use crate::facts::{HeldKeys, KnownPeers, Peer};
use crate::juju::DatabagChanges;
use crate::peer_keys;
use crate::peers::Peers;
use crate::step::Hook;

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

/// After the readiness check (`answering`): every unit tells its peers its addresses and the
/// Keystone version it runs, and a unit other than the leader says whether it may serve (it
/// holds the current keys and its Keystone answers); the leader keeps, in the application bag,
/// whether every other unit does (every unit goal-state expects, joined or not), looking again
/// whenever a peer's data changed.
pub fn report(hook: &Hook<'_>, answering: bool) -> Result<()> {
    let Some(peers) = hook.peers.as_ref() else {
        return Ok(());
    };
    let held = hook.facts.get::<HeldKeys>().map(|k| k.generation);
    let mut changes = own_addresses(hook)?;
    if *hook.event != crate::event::Event::UpdateStatus {
        // What this unit runs, for the leader's schema upgrade (steps/release_upgrade.rs).
        changes.insert(
            peer_keys::UNIT_KEYSTONE_VERSION.to_owned(),
            crate::release::kept_version(hook.machine.files.as_ref())?,
        );
    }
    let ready = held.filter(|_| answering).map(|g| g.to_string());
    if !hook.leader {
        changes.insert(peer_keys::UNIT_READY.to_owned(), ready);
        peers
            .set_own(&changes)
            .context("cannot say in the cluster relation whether this unit is ready")?;
        return Ok(());
    }
    if !changes.is_empty() {
        // Read first, so that unchanged addresses cost no relation-set.
        peers.own_bag()?;
        peers
            .set_own(&changes)
            .context("cannot tell the other units this unit's addresses")?;
    }
    // The leader's own readiness, for its peers' haproxy, in the application bag every hook
    // reads anyway.
    let leader_ready = ready.map(|g| format!("{} {g}", hook.juju.unit().as_str()));
    peers.set_shared(&[(peer_keys::LEADER_READY, leader_ready)])?;
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
    // Worked out again in peer hooks, and whenever it does not say this generation: a lone
    // unit gets no peer hook after its own rotation.
    if !peer_hook && peers.get(peer_keys::UNITS_READY) == Some(generation.to_string()) {
        return Ok(());
    }
    let mut all = true;
    let mut seen = std::collections::BTreeSet::new();
    for unit in peers.units()? {
        let data = peers.unit_bag(&unit)?;
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
    peers.set_shared(&[(peer_keys::UNITS_READY, Some(value))])
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
                _ => hook
                    .peers
                    .as_ref()
                    .map(peers)
                    .transpose()?
                    .unwrap_or_default(),
            };
            // An address the config cannot resolve blocks the unit in the steps that need it.
            let public_host = hook.addresses().ok().map(|hosts| hosts.public);
            let known = KnownPeers {
                own: hook.peers.as_ref().map(own_address).transpose()?.flatten(),
                peers,
                public_host,
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
fn own_address(peers: &Peers<'_>) -> Result<Option<std::net::IpAddr>> {
    let bag = peers.own_bag()?;
    Ok(["ingress-address", "private-address"]
        .iter()
        .find_map(|key| bag.get(*key)?.parse().ok()))
}

/// Every other unit, as its cluster bag (and for the leader, the application bag) describes it.
pub fn peers(peers: &Peers<'_>) -> Result<Vec<Peer>> {
    let leader_ready = peers.get(peer_keys::LEADER_READY).and_then(|text| {
        let (unit, g) = text.split_once(' ')?;
        Some((unit.to_owned(), g.parse::<u64>().ok()?))
    });
    let mut found = Vec::new();
    for unit in peers.units()? {
        let bag = peers.unit_bag(&unit)?;
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
        found.push(Peer {
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
    Ok(found)
}

/// Whether every other unit holds fernet keys `generation` with its Keystone answering, as the
/// leader last saw it (kept in the application bag, so asking costs no hook-tool call).
pub fn every_unit_ready(peer_bag: &crate::juju::Databag, generation: u64) -> bool {
    peer_bag
        .get(peer_keys::UNITS_READY)
        .and_then(|g| g.parse::<u64>().ok())
        == Some(generation)
}
