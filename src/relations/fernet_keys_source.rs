//! The `fernet-keys-source` relation (interface `keystone-fernet-keys`, limit 1): this site
//! takes its fernet and credential keys from another Keystone application, usually in another
//! model (see [`crate::key_sets::sites`] for the protocol).
//!
//! - [`run`], before the cluster step: the leader reads the source's offer and records what to
//!   adopt ([`Upstream`]); the cluster step publishes it to the units and never rotates. Every
//!   unit says where its keys come from. An application that is itself a source is refused.
//! - [`report`], after it: the leader tells the source which generation all its units hold.
//!
//! Whether the relation exists is kept in the peer application bag ([`crate::peer_keys::FERNET_SOURCE`]),
//! so hooks of other endpoints ask Juju nothing when it does not.

use anyhow::{Context as _, Result};

use crate::event::{Endpoint, Event, RelationHook};
use crate::facts::{Consuming, FactName, HeldKeys};
use crate::juju::{AppName, Bag, Databag, DatabagChanges, Juju, RelationId, SecretRead, SecretUri};
use crate::key_sets::KeyMaterial;
use crate::key_sets::sites::{self, Offered, OfferedCredentials, Transport, Upstream};
use crate::peers::Peers;
use crate::relations::cluster::{self, admin::AdminCredentials};
use crate::relations::service_passwords::Passwords;
use crate::step::{Condition, Hook, Step};

pub const ENDPOINT: &str = sites::SOURCE_ENDPOINT;

/// The relation and the source application's name, when it exists.
fn current(
    juju: &Juju,
    event: &Event,
    peer_bag: &Databag,
) -> Result<Option<(RelationId, AppName)>> {
    let own_hook = match event {
        Event::Relation {
            endpoint: Endpoint::FernetKeysSource,
            hook,
        } => Some(*hook),
        _ => None,
    };
    match own_hook {
        Some(RelationHook::Broken) => Ok(None),
        Some(_) => {
            let Some(relation) = juju
                .relation_ids(ENDPOINT)
                .context("cannot list the fernet-keys-source relation")?
                .into_iter()
                .next()
            else {
                return Ok(None);
            };
            let app = juju
                .relation_remote_app(&relation)
                .context("cannot read the fernet key source's name")?;
            Ok(app.map(|app| (relation, app)))
        }
        None => Ok(peer_bag
            .get(crate::peer_keys::FERNET_SOURCE)
            .and_then(|text| {
                let (id, app) = text.split_once(' ')?;
                Some((RelationId::parse(id)?, AppName::parse(app)?))
            })),
    }
}

/// The fernet-keys-source step: [`run`].
pub const STEP: Step =
    Step::new("fernet-keys-source", run).writes(&[FactName::Upstream, FactName::Consuming]);

/// Step: see the module doc.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let Some(peer_bag) = hook.peers.as_ref().map(Peers::app) else {
        return Ok(Vec::new());
    };
    let found = match hook.leader {
        true => current(hook.juju, hook.event, &peer_bag)?,
        false => current(hook.juju, &Event::UpdateStatus, &peer_bag)?,
    };
    let Some((relation, source)) = found else {
        return left(hook, &peer_bag);
    };
    let source = source.as_str().to_owned();
    // Recorded first, so that every unit sees the relation (and a refusal) in the peer bag.
    if hook.leader {
        hook.peers()?.set_shared(&[
            (
                crate::peer_keys::FERNET_SOURCE,
                Some(format!("{} {source}", relation.as_str())),
            ),
            (crate::peer_keys::FERNET_FORMER_SOURCE, None),
        ])?;
    }
    if peer_bag.contains_key(crate::peer_keys::FERNET_SITES) {
        return Ok(vec![Condition::Blocked(format!(
            "fernet-keys-source: this application shares its keys with other sites over \
             fernet-keys, so it cannot take keys from {source} too: remove one of the relations"
        ))]);
    }
    if !hook.leader {
        return Ok(peer_bag
            .get(crate::peer_keys::FERNET_SOURCE_GENERATION)
            .map(|g| Condition::Note(sites::from_source_note(&source, g.parse().unwrap_or(0))))
            .into_iter()
            .collect());
    }
    let remote = hook
        .juju
        .relation_data(
            &relation,
            &Bag::App(AppName::parse(&source).context("source")?),
        )
        .context("cannot read what the fernet key source published")?;
    let offer = sites::offered(&remote);
    let upstream = upstream(hook, &peer_bag, &source, offer.as_ref())?;
    let mut conditions = Vec::new();
    match &upstream {
        Upstream::Held { generation, .. } | Upstream::Adopt { generation, .. } => conditions.push(
            Condition::Note(sites::from_source_note(&source, *generation)),
        ),
        Upstream::Waiting { .. } => {}
    }
    let credentials_adopted = match offer.as_ref().and_then(|o| o.credentials.as_ref()) {
        None => false,
        Some(offered)
            if peer_bag.get(crate::peer_keys::FERNET_SOURCE_CREDENTIALS)
                == Some(&offered.digest) =>
        {
            true
        }
        Some(offered) => adopt_credentials(hook, &peer_bag, &source, offered)?,
    };
    hook.facts.set(upstream);
    hook.facts.set(Consuming {
        relation,
        source,
        db_initialised: offer.is_some_and(|o| o.db_initialised),
        credentials_adopted,
    });
    Ok(conditions)
}

/// Stores the source's admin credentials as this site's (every unit then uses them), and takes
/// its service users' passwords (see [`Passwords::adopt`]), when they can be read and are the
/// ones the offer describes; whether this site now holds them.
fn adopt_credentials(
    hook: &Hook<'_>,
    peer_bag: &Databag,
    source: &str,
    offered: &OfferedCredentials,
) -> Result<bool> {
    let content = match &offered.transport {
        Transport::Secret(id) => {
            let Some(uri) = SecretUri::parse(id) else {
                return Ok(false);
            };
            match hook.juju.secret_get(&uri, SecretRead::Refresh) {
                Ok(content) => content,
                Err(err) => {
                    tracing::info!(
                        "the fernet key source's credentials are not readable yet: {err}"
                    );
                    return Ok(false);
                }
            }
        }
        Transport::Bag(text) => match cluster::shared::content_from_json(text) {
            Ok(content) => content,
            Err(_) => return Ok(false),
        },
    };
    // The secret's new revision and the bag may arrive apart: wait for the matching pair.
    if cluster::shared::content_digest(&content) != offered.digest {
        return Ok(false);
    }
    let Ok(mut credentials) = AdminCredentials::from_content(&content) else {
        return Ok(false);
    };
    credentials.adopted_from = Some(source.to_owned());
    if cluster::admin::credentials(hook.juju, peer_bag)?.as_ref() != Some(&credentials) {
        cluster::admin::store(hook.juju, hook.peers()?, &credentials)?;
        tracing::info!("admin credentials adopted from {source}, the fernet key source");
    }
    let mut passwords = Passwords::read(hook, peer_bag)?;
    passwords.adopt(&content)?;
    passwords.store(hook)?;
    hook.peers()?.set_shared(&[(
        crate::peer_keys::FERNET_SOURCE_CREDENTIALS,
        Some(offered.digest.clone()),
    )])?;
    Ok(true)
}

/// The leader's decision about the source's offer; the keys are fetched only when they differ
/// from what this site adopted last.
fn upstream(
    hook: &Hook<'_>,
    peer_bag: &Databag,
    source: &str,
    offer: Option<&Offered>,
) -> Result<Upstream> {
    let waiting = || Upstream::Waiting {
        source: source.to_owned(),
    };
    let Some(offer) = offer else {
        return Ok(waiting());
    };
    let adopted = peer_bag.get(crate::peer_keys::FERNET_SOURCE_FINGERPRINT);
    if adopted == Some(&offer.fingerprint) {
        return Ok(Upstream::Held {
            source: source.to_owned(),
            generation: offer.generation,
        });
    }
    let Some(material) = fetch(hook.juju, offer)? else {
        return Ok(waiting());
    };
    let recorded = peer_bag
        .get(crate::peer_keys::FERNET_KEEP_LOCAL_UNTIL)
        .and_then(|t| t.parse().ok());
    let keep_local_until = sites::keep_local_until(
        adopted.is_none(),
        recorded,
        hook.machine.now,
        hook.config.token_expiration,
    );
    Ok(Upstream::Adopt {
        source: source.to_owned(),
        generation: offer.generation,
        fingerprint: offer.fingerprint.clone(),
        material,
        keep_local_until,
    })
}

/// The offered keys, when they can be read and are the set the offer describes (the secret's
/// new revision and the bag may arrive apart: then wait for the next hook).
fn fetch(juju: &Juju, offer: &Offered) -> Result<Option<KeyMaterial>> {
    let fetched = match &offer.transport {
        Transport::Secret(id) => {
            let Some(uri) = SecretUri::parse(id) else {
                return Ok(None);
            };
            match juju.secret_get(&uri, SecretRead::Refresh) {
                Ok(content) => KeyMaterial::from_secret_content(&content).ok(),
                Err(err) => {
                    tracing::info!("the fernet key source's secret is not readable yet: {err}");
                    None
                }
            }
        }
        Transport::Bag(text) => KeyMaterial::from_bag_value(text).ok(),
    };
    Ok(fetched
        .filter(|(material, generation)| {
            *generation == offer.generation && material.fingerprint() == offer.fingerprint
        })
        .map(|(material, _)| material))
}

/// No source: when there was one, the site keeps its keys and rotates them on its own.
fn left(hook: &Hook<'_>, peer_bag: &Databag) -> Result<Vec<Condition>> {
    let former = peer_bag
        .get(crate::peer_keys::FERNET_FORMER_SOURCE)
        .cloned();
    if hook.leader
        && let Some((_, source)) = peer_bag
            .get(crate::peer_keys::FERNET_SOURCE)
            .and_then(|text| text.split_once(' '))
    {
        let generation = peer_bag
            .get(crate::peer_keys::FERNET_SOURCE_GENERATION)
            .cloned()
            .unwrap_or_default();
        tracing::warn!(
            "fernet-keys-source: the relation to {source} is gone; this site keeps its keys \
             (generation {generation} from {source}) and rotates them on its own from now on"
        );
        let source = source.to_owned();
        // The admin credentials stay the source's (they are the shared database's), but are
        // this site's own again: its admin-password and rotate-admin-password apply.
        if peer_bag.contains_key(crate::peer_keys::FERNET_SOURCE_CREDENTIALS)
            && let Some(mut credentials) = cluster::admin::credentials(hook.juju, peer_bag)?
            && credentials.adopted_from.take().is_some()
        {
            cluster::admin::store(hook.juju, hook.peers()?, &credentials)?;
        }
        hook.peers()?.set_shared(&[
            (crate::peer_keys::FERNET_SOURCE, None),
            (crate::peer_keys::FERNET_SOURCE_GENERATION, None),
            (crate::peer_keys::FERNET_SOURCE_FINGERPRINT, None),
            (crate::peer_keys::FERNET_SOURCE_CREDENTIALS, None),
            (crate::peer_keys::FERNET_FORMER_SOURCE, Some(source.clone())),
        ])?;
        return Ok(Vec::new());
    }
    // The leader says it in [`report`], after the cluster step, which may have just rotated.
    if hook.leader {
        return Ok(Vec::new());
    }
    Ok(former
        .map(|source| Condition::Note(former_note(&source)))
        .into_iter()
        .collect())
}

fn former_note(source: &str) -> String {
    format!("keys were from {source}; rotating on its own now")
}

/// The fernet-keys-source-ack step: [`report`].
pub const REPORT: Step =
    Step::new("fernet-keys-source-ack", report).reads(&[FactName::Consuming, FactName::HeldKeys]);

/// Step, after the cluster step: the leader tells the source the generation every unit of this
/// site holds, and this site's name. Reads only its own bag unless the answer may change. On a
/// site that left its source, the leader's note says so until its first own rotation.
pub fn report(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    if !hook.leader {
        return Ok(Vec::new());
    }
    let Some(peers) = hook.peers.as_ref() else {
        return Ok(Vec::new());
    };
    let peer_bag = peers.app();
    let Some(consuming) = hook.facts.get::<Consuming>().cloned() else {
        return Ok(peer_bag
            .get(crate::peer_keys::FERNET_FORMER_SOURCE)
            .map(|source| Condition::Note(former_note(source)))
            .into_iter()
            .collect());
    };
    let own = hook
        .juju
        .relation_data(&consuming.relation, &Bag::App(hook.juju.app()))
        .context("cannot read this site's fernet-keys-source data")?;
    let mut changes = DatabagChanges::new();
    changes.insert(sites::SITE.to_owned(), Some(site_name(hook.juju)));
    let adopted = peer_bag
        .get(crate::peer_keys::FERNET_SOURCE_GENERATION)
        .cloned();
    if adopted.is_some()
        && own.get(sites::ACKNOWLEDGED) != adopted.as_ref()
        && hook.facts.get::<HeldKeys>().is_some()
        && cluster::others_hold_published(peers)?
    {
        changes.insert(sites::ACKNOWLEDGED.to_owned(), adopted);
    }
    hook.juju
        .relation_set(&consuming.relation, true, &changes)
        .context("cannot tell the fernet key source what this site holds")?;
    Ok(Vec::new())
}

/// `<model>.<app>`: how a source names this site to its operator.
pub fn site_name(juju: &Juju) -> String {
    match juju.model_name() {
        "" => juju.app().as_str().to_owned(),
        model => format!("{model}.{}", juju.app().as_str()),
    }
}
