//! The `fernet-keys` relation (interface `keystone-fernet-keys`): this application is the
//! source of the fernet and credential keys of other Keystone applications (sites), usually in
//! other models (see [`crate::key_sets::sites`] for the protocol).
//!
//! - [`observe`], before the cluster step: the leader reads what each site acknowledged, for
//!   the over-rotation guard (the cluster step rotates only when every site holds the current
//!   generation).
//! - [`publish`], after the database is initialised: the leader offers its current set to each
//!   site: in its fernet secret granted to the relation on Juju ≥ 3.3, else in the relation's
//!   application bag (the status then says so). With them, the credentials of the shared
//!   database that every site uses ([`site_credentials`]), the same two ways.
//!
//! The relations' ids are kept in the peer application bag ([`crate::peer_keys::FERNET_SITES`]), so hooks of
//! other endpoints ask Juju nothing when there is none.

use anyhow::{Context as _, Result};

use crate::event::{Endpoint, Event, RelationHook};
use crate::juju::{Bag, Databag, DatabagChanges, Juju, RelationId, SecretUri};
use crate::key_sets::sites::{self, SiteAcks};
use crate::relations::cluster::{self, admin::AdminCredentials};
use crate::relations::service_passwords::{self, Passwords};

use crate::facts::{DatabaseFlags, FactName, HeldKeys, SiteRelations};
use crate::peers::Peers;
use crate::secret::Sensitive;
use crate::step::{Condition, Hook, Step};

pub const ENDPOINT: &str = "fernet-keys";

/// The relations to sites: asked of Juju in this endpoint's hooks (and kept in the peer bag),
/// read from the peer bag in every other hook.
fn relations(juju: &Juju, event: &Event, peers: &Peers<'_>) -> Result<Vec<RelationId>> {
    let own_hook = matches!(
        event,
        Event::Relation {
            endpoint: Endpoint::FernetKeys,
            ..
        }
    );
    if !own_hook {
        return Ok(known_sites(&peers.app()));
    }
    let breaking = match event {
        Event::Relation {
            hook: RelationHook::Broken,
            ..
        } => juju.relation_id(),
        _ => None,
    };
    let ids: Vec<RelationId> = juju
        .relation_ids(ENDPOINT)
        .context("cannot list the fernet-keys relations")?
        .into_iter()
        .filter(|id| Some(id) != breaking.as_ref())
        .collect();
    let marker = (!ids.is_empty()).then(|| {
        ids.iter()
            .map(RelationId::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    });
    peers.set_shared(&[(crate::peer_keys::FERNET_SITES, marker)])?;
    Ok(ids)
}

/// A site's name as it gives it, when it is one a status message may carry.
fn valid_site(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 120
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// The fernet-keys-sites step: [`observe`].
pub const OBSERVE: Step =
    Step::new("fernet-keys-sites", observe).writes(&[FactName::SiteRelations, FactName::SiteAcks]);

/// Step: see the module doc.
pub fn observe(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    if !hook.leader {
        return Ok(Vec::new());
    }
    let Some(peers) = hook.peers.as_ref() else {
        return Ok(Vec::new());
    };
    let ids = relations(hook.juju, hook.event, peers)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let acks = site_acks(hook.juju, &ids)?;
    hook.facts.set(acks);
    hook.facts.set(SiteRelations(ids));
    Ok(Vec::new())
}

/// The relations to sites as the peer bag keeps them (outside this endpoint's hooks, e.g. in
/// the rotate-fernet action).
fn known_sites(bag: &Databag) -> Vec<RelationId> {
    bag.get(crate::peer_keys::FERNET_SITES)
        .map(|ids| ids.split(' ').filter_map(RelationId::parse).collect())
        .unwrap_or_default()
}

/// Each site with the generation it acknowledged: one relation-list and one relation-get per
/// site.
fn site_acks(juju: &Juju, ids: &[RelationId]) -> Result<SiteAcks> {
    let mut acks = Vec::new();
    for id in ids {
        let Some(app) = juju
            .relation_remote_app(id)
            .context("cannot read a fernet-keys site's name")?
        else {
            continue;
        };
        let remote = juju
            .relation_data(id, &Bag::App(app.clone()))
            .with_context(|| format!("cannot read what {app} acknowledged"))?;
        let site = remote
            .get(sites::SITE)
            .filter(|s| valid_site(s))
            .cloned()
            .unwrap_or_else(|| app.as_str().to_owned());
        let acked = remote.get(sites::ACKNOWLEDGED).and_then(|g| g.parse().ok());
        acks.push((site, acked));
    }
    Ok(SiteAcks(acks))
}

/// The fernet-keys step: [`publish`].
pub const PUBLISH: Step =
    Step::new("fernet-keys", publish).reads(&[FactName::SiteRelations, FactName::HeldKeys]);

/// Step: see the module doc.
pub fn publish(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let Some(SiteRelations(ids)) = hook.facts.get::<SiteRelations>().cloned() else {
        return Ok(Vec::new());
    };
    if hook.facts.get::<HeldKeys>().is_none() {
        return Ok(Vec::new());
    }
    let credentials = site_credentials(hook)?;
    let Some(peers) = hook.peers.as_ref() else {
        return Ok(Vec::new());
    };
    publish_to(hook.juju, hook.machine, peers, &ids, credentials.as_ref())
}

/// What every site logs in to the shared Keystone with (the admin credentials) and gives its
/// service users, as offered to them.
#[derive(Debug, Clone)]
pub struct SiteCredentials {
    digest: String,
    place: CredentialsPlace,
}

#[derive(Debug, Clone)]
enum CredentialsPlace {
    /// A secret of this application's, granted to each relation (Juju ≥ 3.3).
    Secret(SecretUri),
    /// Their JSON, in each relation's application bag.
    Bag(Sensitive<String>),
}

/// The credentials to offer, worked out only when they may have changed: the stored ones
/// changed since they were last offered, admin-password may have (config-changed), or a site
/// came or went. The charm's admin, the admin password in force (config's, if set), and the
/// service users' passwords with the key sites derive new users' passwords from (made here the
/// first time), so that a service user has one password at every site.
fn site_credentials(hook: &Hook<'_>) -> Result<Option<SiteCredentials>> {
    let Some(peers) = hook.peers.as_ref() else {
        return Ok(None);
    };
    let peer_bag = peers.app();
    let generations = format!(
        "{}.{}",
        cluster::admin::generation(&peer_bag),
        service_passwords::passwords_generation(&peer_bag)
    );
    let recorded = peer_bag
        .get(crate::peer_keys::FERNET_SITES_CREDENTIALS)
        .and_then(|text| text.split_once(' '));
    let may_have_changed = matches!(
        hook.event,
        Event::ConfigChanged
            | Event::UpgradeCharm
            | Event::LeaderElected
            | Event::Relation {
                endpoint: Endpoint::FernetKeys,
                ..
            }
    ) || recorded.map(|(g, _)| g) != Some(generations.as_str());
    if !may_have_changed {
        return Ok(None);
    }
    let Some(stored) = cluster::admin::credentials(hook.juju, &peer_bag)? else {
        return Ok(None);
    };
    let in_force = AdminCredentials {
        admin_password: stored.password_in_force(&hook.config),
        adopted_from: None,
        ..stored
    };
    let mut passwords = Passwords::read(hook, &peer_bag)?;
    passwords.ensure_site_key()?;
    passwords.store(hook)?;
    let mut content = passwords.content().clone();
    content.extend(in_force.to_content());
    let digest = cluster::shared::content_digest(&content);
    let changed = recorded.map(|(_, d)| d) != Some(digest.as_str());
    let place = match hook.juju.supports_cross_model_secrets() {
        true => {
            let known = cluster::shared::SITE_CREDENTIALS.uri(&peers.app());
            let uri = match (known, changed) {
                (Some(uri), false) => Some(uri),
                _ => cluster::shared::store(
                    hook.juju,
                    peers,
                    &cluster::shared::SITE_CREDENTIALS,
                    &content,
                )?,
            };
            CredentialsPlace::Secret(uri.context("the site credentials secret has no id")?)
        }
        false => CredentialsPlace::Bag(cluster::shared::content_to_json(&content)?),
    };
    if changed || recorded.map(|(g, _)| g) != Some(generations.as_str()) {
        peers.set_shared(&[(
            crate::peer_keys::FERNET_SITES_CREDENTIALS,
            Some(format!("{generations} {digest}")),
        )])?;
    }
    Ok(Some(SiteCredentials { digest, place }))
}

/// Offers the published set to every site (leader only), and `credentials` when given; the
/// status note when the keys travel in the relation data.
fn publish_to(
    juju: &Juju,
    machine: &crate::machine::Machine,
    peers: &Peers<'_>,
    ids: &[RelationId],
    credentials: Option<&SiteCredentials>,
) -> Result<Vec<Condition>> {
    let peer_bag = peers.app();
    let Some(current) = cluster::published(&peer_bag) else {
        return Ok(Vec::new());
    };
    let secret =
        cluster::fernet_secret_id(&peer_bag).filter(|_| juju.supports_cross_model_secrets());
    let flags = DatabaseFlags::from_peer_bag(&peer_bag);
    for id in ids {
        let own = juju
            .relation_data(id, &Bag::App(juju.app()))
            .context("cannot read this application's fernet-keys data")?;
        let mut changes = DatabagChanges::new();
        let stale = own.get(sites::FINGERPRINT) != Some(&current.fingerprint);
        match &secret {
            Some(uri) => {
                if own.get(sites::SECRET_ID).map(String::as_str) != Some(uri.as_str()) {
                    juju.secret_grant(uri, id)
                        .context("cannot let a site read the fernet keys secret")?;
                }
                changes.insert(sites::SECRET_ID.to_owned(), Some(uri.to_string()));
                changes.insert(sites::KEYS.to_owned(), None);
            }
            None if stale => {
                let Some(material) = machine
                    .keys
                    .read()
                    .context("cannot read the key repositories")?
                else {
                    return Ok(Vec::new());
                };
                changes.insert(
                    sites::KEYS.to_owned(),
                    Some(material.to_bag_value(current.generation).into_inner()),
                );
            }
            None => {}
        }
        changes.insert(
            sites::GENERATION.to_owned(),
            Some(current.generation.to_string()),
        );
        changes.insert(
            sites::FINGERPRINT.to_owned(),
            Some(current.fingerprint.clone()),
        );
        changes.insert(
            sites::SOURCE.to_owned(),
            Some(crate::relations::fernet_keys_source::site_name(juju)),
        );
        changes.insert(
            sites::DB_INITIALISED.to_owned(),
            Some(flags.bootstrapped.to_string()),
        );
        if let Some(credentials) = credentials {
            offer_credentials(juju, id, &own, credentials, &mut changes)?;
        }
        juju.relation_set(id, true, &changes)
            .context("cannot offer the fernet keys to a site")?;
        if stale {
            tracing::info!(
                "fernet keys: generation {} offered to the site of {}",
                current.generation,
                id.as_str()
            );
        }
    }
    if secret.is_none() && !ids.is_empty() {
        return Ok(vec![Condition::Note(
            "keys shared with other sites in the relation data: whoever can read the relation can \
             read them"
                .to_owned(),
        )]);
    }
    Ok(Vec::new())
}

/// Adds the credentials to a site's offer: a grant of the secret to the relation (once), or
/// their JSON when the site's copy is not current.
fn offer_credentials(
    juju: &Juju,
    id: &RelationId,
    own: &Databag,
    credentials: &SiteCredentials,
    changes: &mut DatabagChanges,
) -> Result<()> {
    match &credentials.place {
        CredentialsPlace::Secret(uri) => {
            if own.get(sites::ADMIN_SECRET_ID).map(String::as_str) != Some(uri.as_str()) {
                juju.secret_grant(uri, id)
                    .context("cannot let a site read the shared credentials secret")?;
            }
            changes.insert(sites::ADMIN_SECRET_ID.to_owned(), Some(uri.to_string()));
            changes.insert(sites::ADMIN_CREDENTIALS.to_owned(), None);
        }
        CredentialsPlace::Bag(json) => {
            if own.get(sites::ADMIN_DIGEST) != Some(&credentials.digest) {
                changes.insert(
                    sites::ADMIN_CREDENTIALS.to_owned(),
                    Some(json.expose().clone()),
                );
            }
            changes.insert(sites::ADMIN_SECRET_ID.to_owned(), None);
        }
    }
    changes.insert(
        sites::ADMIN_DIGEST.to_owned(),
        Some(credentials.digest.clone()),
    );
    Ok(())
}

#[cfg(test)]
mod tests;
