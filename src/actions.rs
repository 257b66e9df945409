//! The charm's actions: parse the parameters, act, and report results or a failure message in
//! Juju's terms (`action-set`, `action-fail`). An action never fails the process for a reason the
//! operator can fix; it fails the task with a message saying what to do. An action that changes
//! what the unit's status depends on (pause, resume) asks the hook to assess the unit again.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::config::Config;
use crate::event::Event;
use crate::facts::{DatabaseFlags, KeySync, TooSoon};
use crate::host::fs::Owner;
use crate::host::packages;
use crate::host::process::Invocation;
use crate::host::services::Service;
use crate::juju::Juju;
use crate::key_sets::RotationRequest;
use crate::machine::Machine;
use crate::paths;
use crate::peers::Peers;
use crate::relations::cluster;
use crate::relations::{consumers, service_passwords};
use crate::release::KeystoneRelease;
use crate::security_checklist::{self, Ownership};
use crate::step::{Hook, Step};
use crate::steps::admin_identity;

/// What the hook does once the action has reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAction {
    Done,
    /// Assess the unit again and set its status, as a hook would.
    Reassess,
}

/// The actions actions.yaml declares.
pub const ACTIONS: [&str; 11] = [
    "rotate-fernet",
    "fernet-status",
    "pause",
    "resume",
    "get-admin-password",
    "rotate-admin-password",
    "list-service-usernames",
    "rotate-service-user-password",
    "security-checklist",
    "package-upgrade",
    "openstack-upgrade",
];

/// Runs the action Juju dispatched, and reports its results or its failure.
/// `steps` are the hook's (an action that changes what a hook maintains runs the hook's own
/// steps for it).
pub fn run(
    juju: &Juju,
    machine: &Machine,
    event: &Event,
    name: &str,
    steps: &[Step],
) -> Result<AfterAction> {
    let outcome = match name {
        "rotate-fernet" => rotate_fernet(juju, machine, event, steps),
        "fernet-status" => fernet_status(juju, machine),
        "pause" => pause(machine).map(|r| (r, AfterAction::Reassess)),
        "resume" => resume(machine).map(|r| (r, AfterAction::Reassess)),
        "get-admin-password" => get_admin_password(juju),
        "rotate-admin-password" => rotate_admin_password(juju, machine, event),
        "list-service-usernames" => list_service_usernames(juju),
        "rotate-service-user-password" => rotate_service_user_password(juju, machine, event),
        "security-checklist" => security_checklist(juju, machine),
        "package-upgrade" => package_upgrade(juju, machine, event),
        "openstack-upgrade" => openstack_upgrade(juju, machine, event, steps),
        // Juju only dispatches actions listed in actions.yaml: this is a packaging mistake.
        other => Err(ActionFailure(format!(
            "this charm has no action named {other:?}"
        ))),
    };
    match outcome {
        Ok((results, after)) => {
            juju.action_set(&results)
                .context("cannot report the action's results")?;
            Ok(after)
        }
        Err(ActionFailure(message)) => {
            juju.action_fail(&message)
                .context("cannot report the action's failure")?;
            Ok(AfterAction::Done)
        }
    }
}

/// A failure to report with action-fail.
struct ActionFailure(String);

impl<E: std::fmt::Display> From<E> for ActionFailure {
    fn from(err: E) -> Self {
        ActionFailure(err.to_string())
    }
}

type Results = BTreeMap<String, String>;

/// Results, and nothing more to do.
fn done(results: Results) -> Result<(Results, AfterAction), ActionFailure> {
    Ok((results, AfterAction::Done))
}

fn config(juju: &Juju) -> Result<Config, ActionFailure> {
    let options = juju
        .config()
        .map_err(|e| ActionFailure(format!("cannot read the config: {e}")))?;
    Config::from_options(&options)
        .map_err(|p| ActionFailure(format!("fix the configuration first: {p}")))
}

/// What package-upgrade says when it upgraded, and when a release upgrade stands in its way:
/// the Python charm's words, which runbooks look for.
pub const UPGRADE_DONE: &str = "success, upgrade completed";
pub const RELEASE_UPGRADE_AVAILABLE: &str =
    "upgrade skipped because an openstack upgrade is available";

/// package-upgrade: the charm's packages to their newest versions within Keystone's release,
/// unless openstack-origin offers a newer release (that is a release upgrade, not this). When
/// something will change, the unit first drains from haproxy (as for a release upgrade); what
/// changed is reported; Apache restarts on the new code and the unit is assessed again, which
/// ends the drain once Keystone answers (and the leader migrates the schema if Keystone's
/// version moved).
fn package_upgrade(
    juju: &Juju,
    machine: &Machine,
    event: &Event,
) -> Result<(Results, AfterAction), ActionFailure> {
    let hook = hook_for(juju, machine, event)?;
    let wanted = packages::keystone_packages(hook.config.enable_cache);
    let runner = machine.runner;
    let before = packages::installed_versions(runner, &wanted)?;
    let Some(installed) = before.get("keystone").cloned() else {
        return Err(ActionFailure(
            "Keystone is not installed: let the install hook finish first".to_owned(),
        ));
    };
    packages::update(runner)?;
    let names: Vec<String> = before.keys().cloned().collect();
    let candidates = packages::candidate_versions(runner, &names)?;
    let major =
        |version: &str| packages::upstream(version).map(|v| KeystoneRelease::of_version(&v).major);
    if let Some(candidate) = candidates.get("keystone")
        && major(candidate) > major(&installed)
    {
        return done(Results::from([
            ("outcome".to_owned(), RELEASE_UPGRADE_AVAILABLE.to_owned()),
            (
                "available".to_owned(),
                format!("keystone {candidate} (installed: {installed})"),
            ),
        ]));
    }
    let mut results = Results::from([("outcome".to_owned(), UPGRADE_DONE.to_owned())]);
    if candidates
        .iter()
        .all(|(name, c)| before.get(name) == Some(c))
    {
        results.insert(
            "upgraded".to_owned(),
            "nothing: every package is at its newest version for this release".to_owned(),
        );
        return done(results);
    }
    crate::steps::release_upgrade::drain(&hook, "package-upgrade")?;
    packages::upgrade(runner, &names)?;
    let after = packages::installed_versions(runner, &wanted)?;
    let changed: Vec<String> = after
        .iter()
        .filter_map(|(name, version)| {
            let old = before.get(name)?;
            (old != version).then(|| format!("{name} {old} -> {version}"))
        })
        .collect();
    tracing::info!("package-upgrade: {}", changed.join(", "));
    results.insert("upgraded".to_owned(), changed.join("\n"));
    // The package's scripts enable (and may start) the distribution's own Keystone service.
    machine.services.disable_distribution_keystone()?;
    crate::steps::packages::record_keystone_version(juju, machine)
        .map_err(|e| ActionFailure(format!("cannot record Keystone's version: {e:#}")))?;
    if !hook.paused && machine.services.is_running(Service::Apache2)? {
        tracing::info!("restarting Apache on the upgraded packages");
        machine.services.restart(Service::Apache2)?;
    }
    Ok((results, AfterAction::Reassess))
}

/// What openstack-upgrade says, in the Python charm's words.
pub const NO_UPGRADE_AVAILABLE: &str = "no upgrade available";
pub const UPGRADE_NOT_ACTION_MANAGED: &str =
    "action-managed-upgrade config is False, skipped upgrade";

/// openstack-upgrade: this unit to the newer OpenStack release openstack-origin's sources
/// offer, when action-managed-upgrade is true. The leader goes first (it expands and migrates
/// the schema); each other unit drains from haproxy, upgrades and rejoins; the leader contracts
/// the schema once the last unit runs the new release. Run it unit by unit.
fn openstack_upgrade(
    juju: &Juju,
    machine: &Machine,
    event: &Event,
    steps: &[Step],
) -> Result<(Results, AfterAction), ActionFailure> {
    let outcome = |text: &str| Results::from([("outcome".to_owned(), text.to_owned())]);
    let mut hook = hook_for(juju, machine, event)?;
    if !hook.config.action_managed_upgrade {
        return done(outcome(UPGRADE_NOT_ACTION_MANAGED));
    }
    let Some(installed) = crate::release::kept_version(machine.files.as_ref())? else {
        return Err(ActionFailure(
            "Keystone is not installed: let the install hook finish first".to_owned(),
        ));
    };
    hook.release_upgrade = crate::release::UpgradeRequest::Action;
    hook.run_steps(steps).map_err(failure)?;
    match hook.facts.get::<crate::facts::UpgradeTurn>() {
        Some(crate::facts::UpgradeTurn::Upgrade) => {}
        Some(crate::facts::UpgradeTurn::Wait(why)) => {
            return Err(ActionFailure(format!("not upgrading: {why}")));
        }
        _ => return done(outcome(NO_UPGRADE_AVAILABLE)),
    }
    let now = crate::release::kept_version(machine.files.as_ref())?.unwrap_or_default();
    let mut results = outcome(UPGRADE_DONE);
    results.insert(
        "upgraded".to_owned(),
        format!("keystone {installed} -> {now}"),
    );
    let app = hook.peer_app();
    let schema = match (
        app.get(crate::peer_keys::DB_SYNCED_VERSION),
        app.get(crate::peer_keys::SCHEMA_EXPANDED),
    ) {
        (Some(synced), _) if *synced == now => {
            format!("migrated for {now} (expanded, migrated and contracted)")
        }
        (_, Some(expanded)) if *expanded == now => format!(
            "expanded and migrated for {now}; the leader contracts it once every unit runs {now}"
        ),
        _ => format!("the leader expands it for {now} when it upgrades"),
    };
    results.insert("schema".to_owned(), schema);
    Ok((results, AfterAction::Reassess))
}

/// security-checklist: the Security Guide's identity checks on this unit, each `PASS` or
/// `FAIL - <what is wrong>`; the task fails when one fails, as with the Python charm.
fn security_checklist(
    juju: &Juju,
    machine: &Machine,
) -> Result<(Results, AfterAction), ActionFailure> {
    let text = |path: &str| -> Result<Option<String>, ActionFailure> {
        let bytes = machine.files.read(std::path::Path::new(path))?;
        Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
    };
    let stat = |path: &str| -> Result<Option<Ownership>, ActionFailure> {
        let stat = Invocation::new("stat").args(["-c", "%U %G %a", path]);
        let output = machine.runner.run(&stat)?;
        Ok(output
            .success()
            .then(|| Ownership::parse(&output.stdout))
            .flatten())
    };
    let unit = security_checklist::Unit {
        keystone_conf: text(paths::KEYSTONE_CONF)?.unwrap_or_default(),
        paste_ini: text(paths::KEYSTONE_PASTE_INI)?,
        config_dir: stat(paths::KEYSTONE_CONF_DIR)?,
        conf_file: stat(paths::KEYSTONE_CONF)?,
    };
    let mut results = Results::new();
    let mut failed = false;
    for (name, outcome) in security_checklist::audit(&unit) {
        let said = match outcome {
            Ok(()) => "PASS".to_owned(),
            Err(wrong) => {
                failed = true;
                format!("FAIL - {wrong}")
            }
        };
        results.insert(name.to_owned(), said);
    }
    if failed {
        juju.action_set(&results)
            .context("cannot report the action's results")?;
        return Err(ActionFailure("One or more tests failed".to_owned()));
    }
    done(results)
}

/// Why rotate-fernet did not rotate: the key it would retire, and when it may.
fn too_soon_message(refused: &TooSoon, now: u64, token_expiration: u64) -> String {
    let wait = refused.next_allowed.saturating_sub(now);
    let since = match refused.primary_until {
        Some(until) => format!(
            "fernet key {} was the primary key until {} s ago",
            refused.key,
            now.saturating_sub(until)
        ),
        None => format!(
            "fernet key {} would be retired, and the last rotation was {} s ago",
            refused.key,
            now.saturating_sub(refused.last_rotation)
        ),
    };
    format!(
        "not rotating: {since}; tokens it signed stay valid for token-expiration ({token_expiration} \
         s), so retiring it now would make them fail. It is safe in {wait} s: run again then, or \
         now with force=true"
    )
}

/// The steps rotate-fernet runs, as a hook runs them: the sites' acknowledgements, the key
/// source, the key sync (where the leader rotates), and what the sites are sent.
pub const ROTATION_STEPS: [&str; 4] = [
    "fernet-keys-sites",
    "fernet-keys-source",
    "cluster",
    "fernet-keys",
];

fn rotate_fernet(
    juju: &Juju,
    machine: &Machine,
    event: &Event,
    steps: &[Step],
) -> Result<(Results, AfterAction), ActionFailure> {
    let force = juju
        .action_params()?
        .get("force")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !juju.is_leader()? {
        return Err(ActionFailure(
            "run this on the leader: juju run keystone/leader rotate-fernet".to_owned(),
        ));
    }
    let peer_bag = peer_app(juju)?;
    // A site that takes its keys from a source never rotates them, not even with force: a key
    // set of its own would make its tokens fail at every other site, and the next adoption
    // would replace it.
    if let Some((_, source)) = peer_bag
        .get(crate::peer_keys::FERNET_SOURCE)
        .and_then(|text| text.split_once(' '))
    {
        return Err(ActionFailure(format!(
            "not rotating: this application takes its fernet keys from {source} \
             (fernet-keys-source); rotate them there (juju run <its leader> rotate-fernet in its \
             model), or remove the relation to rotate here"
        )));
    }
    let mut hook = match Hook::new(juju, machine, event)? {
        Ok(hook) => hook,
        Err(problems) => {
            return Err(ActionFailure(format!(
                "not rotating: the configuration is invalid: {problems}"
            )));
        }
    };
    hook.rotation = RotationRequest::Action { force };
    for step in steps.iter().filter(|s| ROTATION_STEPS.contains(&s.name)) {
        hook.run_step(step)
            .map_err(|e| ActionFailure(format!("{e:#}")))?;
    }
    let Some(sync) = hook.facts.get::<KeySync>().cloned() else {
        return Err(ActionFailure(
            "the cluster peer relation does not exist yet; try again shortly".to_owned(),
        ));
    };
    if let Some(refused) = sync.rotation_too_soon {
        return Err(ActionFailure(too_soon_message(
            &refused,
            machine.now,
            hook.config.token_expiration,
        )));
    }
    if let Some(units) = sync.blocked_rotation {
        let verb = if units.len() == 1 { "has" } else { "have" };
        let generation = sync.generation.map(|g| g.to_string()).unwrap_or_default();
        return Err(ActionFailure(format!(
            "not rotating: {} {verb} not acknowledged fernet keys generation {generation}; a second \
             rotation before they sync could leave them unable to validate tokens. Run again once \
             they have, or with force=true",
            units.join(", ")
        )));
    }
    let Some(rotated) = sync.rotated else {
        return done(Results::from([
            (
                "generation".to_owned(),
                sync.generation.unwrap_or(1).to_string(),
            ),
            ("rotated".to_owned(), "false".to_owned()),
            (
                "message".to_owned(),
                "keys were created; there was nothing to rotate".to_owned(),
            ),
        ]));
    };
    let mut results = Results::new();
    if !rotated.forced_past.is_empty() {
        let units = rotated.forced_past.join(", ");
        let (they, keep) = match rotated.forced_past.len() {
            1 => ("it", "keeps"),
            _ => ("they", "keep"),
        };
        results.insert("forced-past".to_owned(), units.clone());
        results.insert(
            "risk".to_owned(),
            format!(
                "{units} did not hold generation {} when this rotation was forced: {they} {keep} \
                 validating tokens only if they sync before the next rotation; until then a \
                 further rotation can make tokens fail there",
                rotated.generation - 1
            ),
        );
    }
    results.extend(Results::from([
        ("generation".to_owned(), rotated.generation.to_string()),
        (
            "primary-key-index".to_owned(),
            rotated.primary_index.to_string(),
        ),
        ("rotated".to_owned(), "true".to_owned()),
        (
            "units-to-update".to_owned(),
            rotated.units_to_update.join(","),
        ),
    ]));
    done(results)
}

fn fernet_status(juju: &Juju, machine: &Machine) -> Result<(Results, AfterAction), ActionFailure> {
    let config = config(juju)?;
    let mut results = Results::new();
    let held = machine
        .keys
        .read()
        .map_err(|e| ActionFailure(format!("{e:#}")))?;
    let published = cluster::published(&peer_app(juju)?);
    match &held {
        None => {
            results.insert("keys".to_owned(), "none".to_owned());
        }
        Some(material) => {
            for (index, key) in material.fernet.keys() {
                results.insert(format!("keys.{index}"), key.short_fingerprint());
            }
            results.insert(
                "primary-key-index".to_owned(),
                material.fernet.primary_index().to_string(),
            );
        }
    }
    let held_fingerprint = held.as_ref().map(|m| m.fingerprint());
    match &published {
        Some(p) => {
            let in_sync = held_fingerprint.as_deref() == Some(p.fingerprint.as_str());
            results.insert("leader-generation".to_owned(), p.generation.to_string());
            results.insert("in-sync".to_owned(), in_sync.to_string());
            if in_sync {
                results.insert("generation".to_owned(), p.generation.to_string());
            }
            let due = p.last_rotation + config.fernet_rotation_period().as_secs();
            results.insert("next-rotation-due".to_owned(), due.to_string());
            results.insert(
                "next-rotation-in".to_owned(),
                format!("{}s", due.saturating_sub(machine.now)),
            );
        }
        None => {
            results.insert("in-sync".to_owned(), "false".to_owned());
            results.insert("leader-generation".to_owned(), "none".to_owned());
        }
    }
    done(results)
}

/// The cluster application bag (empty before the peer relation exists).
fn peer_app(juju: &Juju) -> Result<crate::juju::Databag, ActionFailure> {
    Ok(Peers::read(juju)
        .map_err(failure)?
        .map(|peers| peers.app())
        .unwrap_or_default())
}

fn no_peers() -> ActionFailure {
    ActionFailure("the cluster peer relation does not exist yet; try again shortly".to_owned())
}

fn failure(err: anyhow::Error) -> ActionFailure {
    ActionFailure(format!("{err:#}"))
}

/// A hook's context for an action that works as a hook step would.
fn hook_for<'a>(
    juju: &'a Juju,
    machine: &'a Machine,
    event: &'a Event,
) -> Result<Hook<'a>, ActionFailure> {
    Hook::new(juju, machine, event)
        .map_err(failure)?
        .map_err(|problems| ActionFailure(format!("fix the configuration first: {problems}")))
}

/// Stops Apache and memcached and keeps them stopped (hooks start nothing while paused) until
/// resume. Pause hacluster first in an HA deployment, so the VIP moves away before Keystone stops.
fn pause(machine: &Machine) -> Result<Results, ActionFailure> {
    machine
        .files
        .write(
            std::path::Path::new(paths::PAUSED_MARKER),
            b"paused by the pause action\n",
            &Owner::root(),
            0o644,
        )
        .map_err(|e| ActionFailure(format!("cannot record the pause: {e}")))?;
    crate::steps::workload::stop(machine)?;
    Ok(Results::from([(
        "message".to_owned(),
        "Apache and memcached are stopped; run resume to start them".to_owned(),
    )]))
}

/// Clears the pause; the unit comes back as a hook would bring it.
fn resume(machine: &Machine) -> Result<Results, ActionFailure> {
    machine
        .files
        .remove(std::path::Path::new(paths::PAUSED_MARKER))
        .map_err(|e| ActionFailure(format!("cannot clear the pause: {e}")))?;
    Ok(Results::from([(
        "message".to_owned(),
        "resumed".to_owned(),
    )]))
}

/// The admin user's password: admin-password from the config when set, else the stored one;
/// on a site that adopted its fernet key source's credentials, the source's.
fn get_admin_password(juju: &Juju) -> Result<(Results, AfterAction), ActionFailure> {
    let config = config(juju)?;
    let stored = cluster::admin::credentials(juju, &peer_app(juju)?).map_err(failure)?;
    let password = match (stored, &config.admin_password) {
        (Some(stored), _) => stored.password_in_force(&config),
        (None, Some(password)) => password.clone(),
        (None, None) => {
            return Err(ActionFailure(
                "the leader has not created the admin password yet: relate a database and wait \
                 for the units to become active"
                    .to_owned(),
            ));
        }
    };
    done(Results::from([(
        "admin-password".to_owned(),
        password.into_inner(),
    )]))
}

/// A new generated admin password, set in Keystone first and then stored, so a failure leaves
/// the old one working everywhere.
fn rotate_admin_password(
    juju: &Juju,
    machine: &Machine,
    event: &Event,
) -> Result<(Results, AfterAction), ActionFailure> {
    if !juju.is_leader()? {
        return Err(ActionFailure(
            "run this on the leader: juju run keystone/leader rotate-admin-password".to_owned(),
        ));
    }
    let mut hook = hook_for(juju, machine, event)?;
    let bag = hook.peers().map_err(|_| no_peers())?.app();
    let Some(stored) = cluster::admin::credentials(juju, &bag).map_err(failure)? else {
        return Err(ActionFailure(
            "there is no admin password to rotate yet: relate a database and wait for the units \
             to become active"
                .to_owned(),
        ));
    };
    // Every site logs in to the shared database's Keystone with the source's password.
    if let Some(source) = &stored.adopted_from {
        return Err(ActionFailure(format!(
            "this site takes its admin credentials from {source}, with its fernet keys: run \
             rotate-admin-password on {source}'s leader, and every site adopts the new password"
        )));
    }
    if hook.config.admin_password.is_some() {
        return Err(ActionFailure(
            "admin-password is set in the config, which wins over a rotated password: change it \
             with juju config keystone admin-password=..., or unset it to use rotate-admin-password"
                .to_owned(),
        ));
    }
    if !DatabaseFlags::from_peer_bag(&bag).bootstrapped {
        return Err(ActionFailure(
            "Keystone is not bootstrapped yet; wait for the units to become active".to_owned(),
        ));
    }
    let rotated = cluster::admin::AdminCredentials {
        adopted_from: None,
        charm_password: stored.charm_password.clone(),
        admin_password: crate::identity::generate_password()
            .map_err(|e| ActionFailure(format!("cannot generate a password: {e}")))?,
    };
    admin_identity::ensure(&mut hook, None, &rotated).map_err(failure)?;
    cluster::admin::store(juju, hook.peers().map_err(failure)?, &rotated).map_err(failure)?;
    tracing::info!("the admin password was rotated");
    // Assessed again, so identity-admin consumers get it from this unit at once.
    Ok((
        Results::from([(
            "message".to_owned(),
            "the admin password was rotated; get-admin-password returns the new one".to_owned(),
        )]),
        AfterAction::Reassess,
    ))
}

/// The service users of the relations the leader serves.
fn service_users(juju: &Juju) -> Result<Vec<String>, ActionFailure> {
    let bag = peer_app(juju)?;
    let users: std::collections::BTreeSet<String> = consumers::recorded_users(
        &bag,
        &[
            crate::peer_keys::IDENTITY_SERVICE_RECORDS,
            crate::peer_keys::IDENTITY_CREDENTIALS_RECORDS,
        ],
        &[
            crate::peer_keys::IDENTITY_SERVICE_APP_RECORDS,
            crate::peer_keys::IDENTITY_CREDENTIALS_APP_RECORDS,
        ],
    )
    .into_iter()
    .collect();
    Ok(users.into_iter().collect())
}

fn list_service_usernames(juju: &Juju) -> Result<(Results, AfterAction), ActionFailure> {
    done(Results::from([(
        "usernames".to_owned(),
        service_users(juju)?.join("\n"),
    )]))
}

/// A new generated password for a service user: stored, then set in Keystone and sent on every
/// relation it serves by the hook's steps (assessed again right after).
fn rotate_service_user_password(
    juju: &Juju,
    machine: &Machine,
    event: &Event,
) -> Result<(Results, AfterAction), ActionFailure> {
    if !juju.is_leader()? {
        return Err(ActionFailure(
            "run this on the leader: juju run keystone/leader rotate-service-user-password \
             service-user=<name>"
                .to_owned(),
        ));
    }
    // A password of its own would change the user of the one shared database for every site.
    if let Some((_, source)) = peer_app(juju)?
        .get(crate::peer_keys::FERNET_SOURCE)
        .and_then(|text| text.split_once(' '))
    {
        return Err(ActionFailure(format!(
            "not rotating: this site shares its service users and their passwords with the \
             other sites of {source} (fernet-keys-source); run rotate-service-user-password on \
             {source}'s leader"
        )));
    }
    let user = juju
        .action_params()?
        .get("service-user")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_default();
    let users = service_users(juju)?;
    if !users.contains(&user) {
        return Err(ActionFailure(format!(
            "there is no service-user {user:?}; the service users are: {}",
            match users.is_empty() {
                true => "none yet".to_owned(),
                false => users.join(", "),
            }
        )));
    }
    let hook = hook_for(juju, machine, event)?;
    let bag = hook.peers().map_err(|_| no_peers())?.app();
    let mut passwords = service_passwords::Passwords::read(&hook, &bag).map_err(failure)?;
    passwords.replace(
        &user,
        crate::identity::generate_password()
            .map_err(|e| ActionFailure(format!("cannot generate a password: {e}")))?,
    );
    passwords.store(&hook).map_err(failure)?;
    tracing::info!("the password of service user {user} was rotated");
    Ok((
        Results::from([(
            "message".to_owned(),
            format!("{user} has a new password; its relations get it now"),
        )]),
        AfterAction::Reassess,
    ))
}
