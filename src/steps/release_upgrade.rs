//! Release upgrades: a newer OpenStack release in openstack-origin's sources reaches the units
//! one at a time while old and new units serve side by side, as Keystone's rolling upgrade
//! allows:
//!
//! 1. the leader upgrades first, then runs `keystone-manage doctor` (what it finds is logged)
//!    and expands and migrates the schema (`db_sync --expand`, `--migrate`), which the old
//!    release still runs on;
//! 2. each other unit, in its turn, drains from haproxy (Keystone's /healthcheck answers 503),
//!    stops Apache, upgrades its packages and starts again, and rejoins haproxy only once its
//!    Keystone answers. With action-managed-upgrade false the leader hands out the turns, one
//!    unit at a time; with true the operator runs openstack-upgrade on each unit;
//! 3. once every unit runs the new release, the leader contracts the schema (`--contract`).
//!
//! A package change that moved Keystone's version within a release takes the same schema
//! path: the leader migrates again whenever its Keystone is newer than the schema.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::facts::{Answering, Consuming, DatabaseFlags, FactName, UpgradeTurn as Turn};
use crate::host::fs::Owner;
use crate::host::packages;
use crate::host::process::{KeystoneManage, SchemaPhase};
use crate::host::services::Service;
use crate::juju::{Status, StatusScope, UnitName};
use crate::paths;
use crate::peer_keys;
use crate::relations::kept;
use crate::release::{self, KeystoneRelease, UpgradeRequest};
use crate::step::{Condition, Hook, Step};

/// The upgrade step: [`run`].
pub const STEP: Step = Step::new("release-upgrade", run).writes(&[FactName::UpgradeTurn]);
/// The leader's schema step: [`schema`].
pub const SCHEMA: Step =
    Step::new("schema-upgrade", schema).reads(&[FactName::DatabaseFlags, FactName::Consuming]);
/// The rejoin step: [`rejoin`].
pub const REJOIN: Step = Step::new("rejoin-haproxy", rejoin).reads(&[FactName::Answering]);

/// The newer Keystone the sources offer that this unit has not upgraded to yet.
const PENDING: &str = "/var/lib/keystone-charm/release-upgrade.json";

/// How long a unit waits for haproxy to count it down before it stops Apache anyway.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    /// keystone's Debian version in the sources (`2:23.0.0-0ubuntu1~cloud0`).
    target: Option<String>,
    /// The openstack-origin apt was last asked about: config-changed asks again only when it
    /// changed (`apt-cache policy` takes a third of a second).
    #[serde(default)]
    asked_for: Option<String>,
}

/// What decides whether this unit upgrades now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing<'a> {
    pub unit: &'a str,
    pub leader: bool,
    pub action_managed: bool,
    pub requested: UpgradeRequest,
    pub paused: bool,
    /// Upstream versions: what runs, and what the sources offer.
    pub installed: &'a str,
    pub target: &'a str,
    /// The versions the schema is expanded, and fully migrated, for (the leader's record).
    pub expanded: Option<&'a str>,
    pub synced: Option<&'a str>,
    /// Whose turn it is, when the leader hands out turns.
    pub turn: Option<&'a str>,
}

/// Whether `target` (upstream) is a later OpenStack release than `installed`.
pub fn newer_release(target: &str, installed: &str) -> bool {
    let major = |v: &str| KeystoneRelease::of_version(v).major;
    matches!((major(target), major(installed)), (Some(t), Some(i)) if t > i)
}

/// The release's name for messages: its codename (`antelope`), else `Keystone <version>`.
pub fn release_name(upstream: &str) -> String {
    KeystoneRelease::of_version(upstream)
        .codename()
        .map_or_else(|| format!("Keystone {upstream}"), str::to_owned)
}

/// Whether this unit upgrades now: the leader goes first, since the schema must be expanded for
/// the new release before any unit runs it; the others go once it is, one at a time.
pub fn turn(s: &Standing<'_>) -> Turn {
    if !newer_release(s.target, s.installed) {
        return Turn::Idle;
    }
    if s.action_managed && s.requested == UpgradeRequest::Scheduled {
        return Turn::Idle;
    }
    let release = release_name(s.target);
    if s.paused {
        return Turn::Wait(format!("Paused: resume the unit to upgrade to {release}"));
    }
    if s.leader {
        return Turn::Upgrade;
    }
    let schema_ready = s.expanded == Some(s.target) || s.synced == Some(s.target);
    if !schema_ready {
        return Turn::Wait(match s.action_managed {
            true => format!(
                "Waiting for the leader to upgrade to {release} first \
                 (juju run keystone/leader openstack-upgrade)"
            ),
            false => format!("Waiting for the leader to upgrade to {release} first"),
        });
    }
    if !s.action_managed && s.turn != Some(s.unit) {
        return Turn::Wait(format!("Waiting for its turn to upgrade to {release}"));
    }
    Turn::Upgrade
}

/// The schema phases the leader runs now, running `installed` (upstream versions): expand and
/// migrate once for a newer Keystone, contract once every unit runs it.
pub fn schema_phases(
    installed: &str,
    synced: Option<&str>,
    expanded: Option<&str>,
    every_unit_upgraded: bool,
) -> Vec<SchemaPhase> {
    if synced == Some(installed) || synced.is_some_and(|s| is_older(installed, s)) {
        return Vec::new();
    }
    let mut phases = Vec::new();
    if expanded != Some(installed) {
        phases.extend([SchemaPhase::Expand, SchemaPhase::Migrate]);
    }
    if every_unit_upgraded {
        phases.push(SchemaPhase::Contract);
    }
    phases
}

/// Whether upstream version `a` is older than `b`, by their numeric dotted parts.
fn is_older(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.split(|c: char| !c.is_ascii_digit())
            .map_while(|p| p.parse().ok())
            .collect()
    };
    parts(a) < parts(b)
}

/// Step: in config-changed and upgrade-charm (and for openstack-upgrade) asks apt whether the
/// sources offer a newer release, and keeps the answer; then, while one is pending, upgrades
/// this unit when it is its turn, or says what it waits for.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let files = hook.machine.files.as_ref();
    let Some(installed) = release::kept_version(files)? else {
        return Ok(Vec::new());
    };
    let mut pending: Pending = kept::read(files, PENDING, "pending release upgrade")?;
    let origin = &hook.config.openstack_origin;
    let asks_apt = match hook.event {
        Event::UpgradeCharm => true,
        Event::ConfigChanged => pending.asked_for.as_ref() != Some(origin),
        _ => hook.release_upgrade == UpgradeRequest::Action,
    };
    if asks_apt {
        let offered = packages::candidate_version(hook.machine.runner, "keystone")?
            .filter(|c| packages::upstream(c).is_some_and(|t| newer_release(&t, &installed)));
        let asked = Pending {
            target: offered,
            asked_for: Some(origin.clone()),
        };
        if asked != pending {
            pending = asked;
            kept::write(files, PENDING, "pending release upgrade", &pending)?;
        }
    }
    let Some(target_version) = pending.target.clone() else {
        return Ok(Vec::new());
    };
    let target = packages::upstream(&target_version).unwrap_or_default();
    let app = hook.peer_app();
    let unit = hook.juju.unit().as_str().to_owned();
    let standing = Standing {
        unit: &unit,
        leader: hook.leader,
        action_managed: hook.config.action_managed_upgrade,
        requested: hook.release_upgrade,
        paused: hook.paused,
        installed: &installed,
        target: &target,
        expanded: app.get(peer_keys::SCHEMA_EXPANDED).map(String::as_str),
        synced: app.get(peer_keys::DB_SYNCED_VERSION).map(String::as_str),
        turn: app.get(peer_keys::UPGRADE_TURN).map(String::as_str),
    };
    let turn = turn(&standing);
    let conditions = match &turn {
        Turn::Idle => {
            if !newer_release(&target, &installed) {
                pending.target = None;
                kept::write(files, PENDING, "pending release upgrade", &pending)?;
            }
            Vec::new()
        }
        Turn::Wait(why) => vec![Condition::Waiting(why.clone())],
        Turn::Upgrade => {
            upgrade(hook, &installed, &target)?;
            pending.target = None;
            kept::write(files, PENDING, "pending release upgrade", &pending)?;
            Vec::new()
        }
    };
    hook.facts.set(turn);
    Ok(conditions)
}

/// Drains this unit from haproxy (when it has peers to take its requests), stops Apache and
/// upgrades the packages. The steps after this one render the new release's files, migrate the
/// schema (the leader) and start Apache; [`rejoin`] ends the drain once Keystone answers.
/// When apt fails, Apache serves the release it has again and the drain ends.
fn upgrade(hook: &Hook<'_>, installed: &str, target: &str) -> Result<()> {
    let machine = hook.machine;
    let release = release_name(target);
    hook.juju
        .status_set(
            StatusScope::Unit,
            &Status::maintenance(format!("Upgrading to {release}")),
        )
        .context("cannot set the unit status")?;
    let services = machine.services.as_ref();
    drain(hook, &format!("upgrading to {target}"))?;
    tracing::info!("upgrading Keystone {installed} to {release} ({target})");
    services
        .stop(Service::Apache2)
        .context("cannot stop Apache for the upgrade")?;
    let wanted = packages::keystone_packages(hook.config.enable_cache);
    let names: Vec<String> = packages::installed_versions(machine.runner, &wanted)?
        .into_keys()
        .collect();
    let upgraded =
        packages::update(machine.runner).and_then(|()| packages::upgrade(machine.runner, &names));
    if let Err(failed) = upgraded {
        tracing::error!("the upgrade to {release} failed: {failed:#}");
        machine.files.remove(Path::new(paths::DRAINING_MARKER))?;
        services.start(Service::Apache2)?;
        return Err(failed.context(format!(
            "the upgrade to {release} failed, and Keystone {installed} serves again"
        )));
    }
    // The package's scripts enable (and may start) the distribution's own Keystone service.
    services
        .disable_distribution_keystone()
        .context("cannot disable the distribution's own Keystone service")?;
    super::packages::record_keystone_version(hook.juju, machine)?;
    Ok(())
}

/// Takes this unit out of haproxy's backends before its Keystone stops (`why` is kept in the
/// marker): Keystone's /healthcheck answers 503 until [`rejoin`] sees it answer again, and this
/// waits until haproxy counts the unit down. Only when Apache runs and the unit has peers to
/// take its requests.
pub fn drain(hook: &Hook<'_>, why: &str) -> Result<()> {
    let machine = hook.machine;
    let services = machine.services.as_ref();
    let has_peers = match &hook.peers {
        Some(peers) => !peers.units()?.is_empty(),
        None => false,
    };
    if !has_peers || hook.paused || !services.is_running(Service::Apache2)? {
        return Ok(());
    }
    machine
        .files
        .write(
            Path::new(paths::DRAINING_MARKER),
            format!("{why}\n").as_bytes(),
            &Owner::root(),
            0o644,
        )
        .context("cannot mark the unit draining")?;
    let server = hook.juju.unit().as_str().replace('/', "-");
    tracing::info!("draining {server} from haproxy: {why}");
    if !services.wait_until_drained(&server, DRAIN_TIMEOUT)? {
        tracing::warn!(
            "haproxy still counted {server} up after {} s: going on anyway",
            DRAIN_TIMEOUT.as_secs()
        );
    }
    Ok(())
}

/// Step, after the database step: the leader migrates the schema when its Keystone is newer
/// than the schema ([`schema_phases`]), and hands out the turns to upgrade. Not on a site
/// that shares its key source's database: the source migrates it.
pub fn schema(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    if !hook.leader || hook.paused || hook.facts.get::<Consuming>().is_some() {
        return Ok(Vec::new());
    }
    let initialised = hook
        .facts
        .get::<DatabaseFlags>()
        .is_some_and(|f| f.db_initialised);
    let (Some(peers), true) = (&hook.peers, initialised) else {
        return Ok(Vec::new());
    };
    let Some(installed) = release::kept_version(hook.machine.files.as_ref())? else {
        return Ok(Vec::new());
    };
    let synced = peers.get(peer_keys::DB_SYNCED_VERSION);
    if synced.as_deref() == Some(installed.as_str()) {
        return Ok(Vec::new());
    }
    let expanded = peers.get(peer_keys::SCHEMA_EXPANDED);
    let mut behind: Vec<UnitName> = Vec::new();
    for unit in peers.units()? {
        let runs = peers.unit_bag(&unit)?;
        if runs.get(peer_keys::UNIT_KEYSTONE_VERSION) != Some(&installed) {
            behind.push(unit);
        }
    }
    behind.sort_by_key(UnitName::number);
    let phases = schema_phases(
        &installed,
        synced.as_deref(),
        expanded.as_deref(),
        behind.is_empty(),
    );
    let manage = KeystoneManage::new(hook.machine.runner);
    if phases.first() == Some(&SchemaPhase::Expand) {
        match manage.doctor() {
            Ok(None) => tracing::info!("keystone-manage doctor found nothing to fix"),
            Ok(Some(found)) => tracing::warn!("keystone-manage doctor: {found}"),
            Err(err) => tracing::warn!("keystone-manage doctor did not run: {err}"),
        }
    }
    for phase in &phases {
        tracing::info!("running keystone-manage db_sync {phase:?} for Keystone {installed}");
        manage
            .db_sync_phase(*phase)
            .with_context(|| format!("keystone-manage db_sync {phase:?} failed"))?;
        let record: Vec<(&str, Option<String>)> = match phase {
            SchemaPhase::Expand => Vec::new(),
            SchemaPhase::Migrate => vec![(peer_keys::SCHEMA_EXPANDED, Some(installed.clone()))],
            SchemaPhase::Contract => vec![
                (peer_keys::DB_SYNCED_VERSION, Some(installed.clone())),
                (peer_keys::SCHEMA_EXPANDED, None),
                (peer_keys::UPGRADE_TURN, None),
            ],
        };
        peers.set_shared(&record)?;
    }
    if phases.last() == Some(&SchemaPhase::Contract) {
        return Ok(Vec::new());
    }
    let next = match hook.config.action_managed_upgrade {
        true => None,
        false => behind.first().map(|u| u.as_str().to_owned()),
    };
    if let Some(unit) = &next
        && peers.get(peer_keys::UPGRADE_TURN).as_ref() != Some(unit)
    {
        tracing::info!("{unit}'s turn to upgrade to Keystone {installed}");
    }
    peers.set_shared(&[(peer_keys::UPGRADE_TURN, next)])?;
    Ok(Vec::new())
}

/// Step, after the readiness check: a unit that drained for its upgrade rejoins haproxy once
/// its Keystone answers.
pub fn rejoin(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    if hook.facts.get::<Answering>().is_none() {
        return Ok(Vec::new());
    }
    let files = hook.machine.files.as_ref();
    if files.read(Path::new(paths::DRAINING_MARKER))?.is_some() {
        tracing::info!("Keystone answers: rejoining haproxy");
        files.remove(Path::new(paths::DRAINING_MARKER))?;
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests;
