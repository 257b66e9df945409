//! The cloud's admin identity in Keystone: the admin and service domains and projects, the
//! roles, the operator's admin user and Keystone's own endpoints ([`identity::admin_identity`]),
//! ensured by the leader through the API whenever their inputs changed.
//!
//! A digest of the inputs is kept in the peer application bag (`identity-applied`), so a hook
//! whose inputs did not change makes no API call.

use anyhow::{Context as _, Result};
use sha2::{Digest as _, Sha256};

use crate::event::Event;
use crate::facts::{Answering, DatabaseFlags, FactName};
use crate::identity::{self, IdentitySettings};
use crate::keystone_api::{Change, DomainRef, PasswordCredentials};
use crate::peer_keys;
use crate::peers::Peers;
use crate::relations::cluster::{self, admin::AdminCredentials};
use crate::step::{Condition, Hook, Step};
use crate::steps::policy;

/// The admin-identity step: [`run`].
pub const STEP: Step =
    Step::new("admin-identity", run).reads(&[FactName::DatabaseFlags, FactName::Answering]);

/// Step: the leader, once Keystone answers and is bootstrapped, ensures the admin identity when
/// its inputs changed. update-status skips it: nothing it reads can change without another hook.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    if !hook.leader {
        return Ok(Vec::new());
    }
    let Some(bag) = hook.peers.as_ref().map(Peers::app) else {
        return Ok(Vec::new());
    };
    let flags = hook
        .facts
        .get::<DatabaseFlags>()
        .copied()
        .unwrap_or_else(|| DatabaseFlags::from_peer_bag(&bag));
    let applied = bag.get(peer_keys::IDENTITY_APPLIED).cloned();
    // A new database holds none of it: forget what was applied to the old one.
    if (flags.reset || !flags.bootstrapped) && applied.is_some() {
        hook.peers()?
            .set_shared(&[(peer_keys::IDENTITY_APPLIED, None)])?;
        return Ok(Vec::new());
    }
    if !flags.bootstrapped
        || hook.facts.get::<Answering>().is_none()
        || *hook.event == Event::UpdateStatus
    {
        return Ok(Vec::new());
    }
    let credentials = cluster::admin::credentials(hook.juju, &bag)?
        .context("the admin credentials are missing from the cluster relation")?;
    // Every unit's policy names ids only Keystone knows: ensure again until they are kept.
    let applied = applied.filter(|_| policy::ids_known(&bag));
    if let Some(ensured) = ensure(hook, applied.as_deref(), &credentials)? {
        policy::keep_ids(hook, &ensured.ids)?;
    }
    Ok(Vec::new())
}

/// Ensures the admin identity for `credentials` unless `applied` is the digest of the same
/// inputs; records the new digest. What it ensured, when it called Keystone.
pub fn ensure(
    hook: &mut Hook<'_>,
    applied: Option<&str>,
    credentials: &AdminCredentials,
) -> Result<Option<identity::Ensured>> {
    let settings = IdentitySettings::from_config(&hook.config, hook.endpoint_urls()?);
    let password = credentials.password_in_force(&hook.config);
    let objects = identity::admin_identity(&settings, &password);
    // Debug never prints a password, so the passwords are hashed in explicitly.
    let mut digest = Sha256::new();
    digest.update(format!("{objects:?}").as_bytes());
    digest.update([0]);
    digest.update(password.expose().as_bytes());
    digest.update([0]);
    digest.update(credentials.charm_password.expose().as_bytes());
    let digest: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if applied == Some(digest.as_str()) {
        return Ok(None);
    }
    let charm_admin = PasswordCredentials {
        user_name: identity::CHARM_ADMIN_USER.to_owned(),
        user_domain: DomainRef::Id(crate::keystone_api::DEFAULT_DOMAIN_ID.to_owned()),
        password: credentials.charm_password.clone(),
    };
    let api = hook.keystone_as(&charm_admin)?;
    let ensured = identity::ensure_objects(api, &objects)
        .context("cannot set up Keystone's admin domain, projects, roles and endpoints")?;
    for outcome in &ensured.outcomes {
        if outcome.change != Change::Unchanged {
            tracing::info!("Keystone: {} {:?}", outcome.object, outcome.change);
        }
    }
    hook.peers()?
        .set_shared(&[(peer_keys::IDENTITY_APPLIED, Some(digest))])?;
    Ok(Some(ensured))
}
