//! One key set across sites: Keystone applications in different models sharing the fernet and
//! credential keys of one *source* application (interface `keystone-fernet-keys`).
//!
//! ## Protocol
//! The source's leader publishes, in its application bag of each `fernet-keys` relation:
//! `generation`, `fingerprint`, `source` (`<model>.<app>`), `db-initialised`, and either
//! `secret-id` (Juju ≥ 3.3: its peer fernet secret, granted to the relation) or `keys` (older
//! Juju: the keys themselves, JSON). A consuming site's leader adopts that set into its own
//! peer relation (its units sync as usual), and says in its application bag `site`
//! (`<model>.<app>`) and `acknowledged-generation`: the source generation every one of its units
//! holds. The source rotates only when its own units and every site acknowledged the current
//! generation.
//!
//! The source also shares the credentials of the one shared database: the charm's own admin and
//! the operator's admin password in force, every service user's password and the key new ones
//! are derived from: `admin-digest`, and `admin-secret-id` (a secret granted to the relation,
//! Juju ≥ 3.3) or `admin-credentials` (JSON, older Juju). A consuming site adopts them before
//! it uses the shared database.
//!
//! Everything here is pure.

use std::collections::BTreeMap;

use super::{Key, KeyMaterial, KeySet};

/// The consuming endpoint.
pub const SOURCE_ENDPOINT: &str = "fernet-keys-source";

/// The relation's application bag keys, both directions.
pub const GENERATION: &str = "generation";
pub const FINGERPRINT: &str = "fingerprint";
pub const SECRET_ID: &str = "secret-id";
pub const KEYS: &str = "keys";
pub const SOURCE: &str = "source";
pub const DB_INITIALISED: &str = "db-initialised";
pub const SITE: &str = "site";
pub const ACKNOWLEDGED: &str = "acknowledged-generation";
pub const ADMIN_DIGEST: &str = "admin-digest";
pub const ADMIN_SECRET_ID: &str = "admin-secret-id";
pub const ADMIN_CREDENTIALS: &str = "admin-credentials";

/// What a source published, from its application bag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub generation: u64,
    pub fingerprint: String,
    pub transport: Transport,
    /// Whether the source initialised the shared database.
    pub db_initialised: bool,
    /// The credentials it shares, once it offered them.
    pub credentials: Option<OfferedCredentials>,
}

/// The source's credentials as it offered them: their digest, and where they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedCredentials {
    pub digest: String,
    /// A secret granted to the relation, or the JSON of their content in the bag.
    pub transport: Transport,
}

fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// How the keys travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A Juju secret granted to the relation.
    Secret(String),
    /// The keys themselves in the application bag (JSON, [`KeyMaterial::to_bag_value`]).
    Bag(String),
}

/// The source's offer; None until it published a whole one.
pub fn offered(bag: &BTreeMap<String, String>) -> Option<Offered> {
    let transport = match (bag.get(SECRET_ID), bag.get(KEYS)) {
        (Some(id), _) => Transport::Secret(id.clone()),
        (None, Some(keys)) => Transport::Bag(keys.clone()),
        (None, None) => return None,
    };
    let fingerprint = bag.get(FINGERPRINT)?.clone();
    if !is_digest(&fingerprint) {
        return None;
    }
    Some(Offered {
        generation: bag.get(GENERATION)?.parse().ok()?,
        fingerprint,
        transport,
        db_initialised: bag.get(DB_INITIALISED).is_some_and(|v| v == "true"),
        credentials: offered_credentials(bag),
    })
}

fn offered_credentials(bag: &BTreeMap<String, String>) -> Option<OfferedCredentials> {
    let digest = bag.get(ADMIN_DIGEST).filter(|d| is_digest(d))?.clone();
    let transport = match (bag.get(ADMIN_SECRET_ID), bag.get(ADMIN_CREDENTIALS)) {
        (Some(id), _) => Transport::Secret(id.clone()),
        (None, Some(json)) => Transport::Bag(json.clone()),
        (None, None) => return None,
    };
    Some(OfferedCredentials { digest, transport })
}

/// What a consuming site's leader found on `fernet-keys-source`, for the cluster step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The source has not published a set this site can read yet.
    Waiting { source: String },
    /// The site holds the source's current set.
    Held { source: String, generation: u64 },
    /// A set to adopt. `keep_local_until`: keep the keys this site holds as extra secondaries,
    /// recorded until then (see [`merge`]).
    Adopt {
        source: String,
        generation: u64,
        fingerprint: String,
        material: KeyMaterial,
        keep_local_until: Option<u64>,
    },
}

/// Each consuming site (`site <model>.<app>`) with the source generation it acknowledged,
/// recorded on the source's leader for the over-rotation guard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteAcks(pub Vec<(String, Option<u64>)>);

/// When a site keeps its own keys after adopting a source's set: on the first adoption (every
/// key it held may have signed a token still valid) until one token lifetime later; on later
/// adoptions until that recorded time. Never past it: by then no token they signed is valid.
pub fn keep_local_until(
    first_adoption: bool,
    recorded: Option<u64>,
    now: u64,
    token_lifetime: u64,
) -> Option<u64> {
    if first_adoption {
        return Some(now.saturating_add(token_lifetime));
    }
    recorded.filter(|until| now < *until)
}

/// The source's set with this site's keys added as secondaries: every key `local` holds that
/// the source does not, except its staged key 0 (it never signed a token). Indices are
/// renumbered so that the source's staged key stays 0 and its primary stays the highest;
/// Keystone tries every key, so order among secondaries does not matter. With nothing to add,
/// the source's set as it is.
pub fn merge(source: &KeyMaterial, local: &KeyMaterial) -> KeyMaterial {
    KeyMaterial {
        fernet: merge_set(&source.fernet, &local.fernet),
        credential: merge_set(&source.credential, &local.credential),
    }
}

fn merge_set(source: &KeySet, local: &KeySet) -> KeySet {
    let known: Vec<&str> = source.keys().values().map(Key::expose).collect();
    let mut extras: Vec<&Key> = Vec::new();
    for (index, key) in local.keys() {
        if *index != 0 && !known.contains(&key.expose()) && !extras.contains(&key) {
            extras.push(key);
        }
    }
    if extras.is_empty() {
        return source.clone();
    }
    let mut keys = BTreeMap::new();
    if let Some(staged) = source.keys().get(&0) {
        keys.insert(0, staged.clone());
    }
    let rest = source
        .keys()
        .iter()
        .filter(|(i, _)| **i != 0)
        .map(|(_, k)| k);
    for (n, key) in extras.into_iter().chain(rest).enumerate() {
        keys.insert(n as u32 + 1, key.clone());
    }
    KeySet::from_parts(keys)
}

/// The name the guard gives a site in status and action messages.
pub fn site_label(site: &str) -> String {
    format!("site {site}")
}

/// The status note of a consuming unit.
pub fn from_source_note(source: &str, generation: u64) -> String {
    format!("keys from {source}, generation {generation}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        crate::key_sets::test_key(n)
    }

    fn set(pairs: &[(u32, u8)]) -> KeySet {
        KeySet::new(pairs.iter().map(|(i, n)| (*i, key(*n))).collect()).expect("valid")
    }

    fn material(fernet: KeySet) -> KeyMaterial {
        KeyMaterial {
            credential: fernet.clone(),
            fernet,
        }
    }

    #[test]
    fn merging_keeps_every_local_key_but_the_staged_one_as_a_secondary() {
        let source = material(set(&[(0, 10), (4, 11), (5, 12)]));
        let local = material(set(&[(0, 20), (1, 21), (2, 22)]));
        let merged = merge(&source, &local);
        let keys = merged.fernet.keys();
        assert_eq!(keys[&0], key(10), "the source's staged key stays staged");
        assert_eq!(merged.fernet.primary_index(), 4);
        assert_eq!(keys[&4], key(12), "the source's primary stays the primary");
        let values: Vec<&Key> = keys.values().collect();
        for k in [key(11), key(21), key(22)] {
            assert!(values.contains(&&k), "{k:?}");
        }
        assert!(!values.contains(&&key(20)));
        assert_eq!(merged.credential, merged.fernet);
    }

    #[test]
    fn merging_what_the_source_holds_already_changes_nothing() {
        let source = material(set(&[(0, 10), (4, 11), (5, 12)]));
        let local = material(set(&[(0, 30), (3, 11), (4, 12)]));
        assert_eq!(merge(&source, &local), source);
        assert_eq!(merge(&source, &source), source);
    }

    #[test]
    fn local_keys_are_kept_one_token_lifetime_from_the_first_adoption() {
        assert_eq!(keep_local_until(true, None, 100, 3600), Some(3700));
        assert_eq!(keep_local_until(true, Some(50), 100, 3600), Some(3700));
        assert_eq!(keep_local_until(false, Some(3700), 3000, 3600), Some(3700));
        assert_eq!(keep_local_until(false, Some(3700), 3700, 3600), None);
        assert_eq!(keep_local_until(false, None, 3000, 3600), None);
    }

    #[test]
    fn an_offer_needs_a_generation_a_fingerprint_and_a_transport() {
        let fp = "ab".repeat(32);
        let bag = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            offered(&bag(&[
                ("generation", "3"),
                ("fingerprint", &fp),
                ("secret-id", "secret://x/y"),
                ("db-initialised", "true"),
            ])),
            Some(Offered {
                generation: 3,
                fingerprint: fp.clone(),
                transport: Transport::Secret("secret://x/y".into()),
                db_initialised: true,
                credentials: None,
            })
        );
        // The admin credentials: a digest and where they are, or nothing.
        let with = |pairs: &[(&str, &str)]| {
            let mut all = vec![
                ("generation", "3"),
                ("fingerprint", fp.as_str()),
                ("keys", "{}"),
            ];
            all.extend_from_slice(pairs);
            offered(&bag(&all)).and_then(|o| o.credentials)
        };
        assert_eq!(
            with(&[("admin-digest", &fp), ("admin-secret-id", "secret://x/z")]),
            Some(OfferedCredentials {
                digest: fp.clone(),
                transport: Transport::Secret("secret://x/z".into()),
            })
        );
        assert_eq!(
            with(&[("admin-digest", &fp), ("admin-credentials", "{}")]).map(|c| c.transport),
            Some(Transport::Bag("{}".into()))
        );
        assert_eq!(with(&[("admin-digest", &fp)]), None);
        assert_eq!(
            with(&[("admin-digest", "short"), ("admin-credentials", "{}")]),
            None
        );
        assert!(offered(&bag(&[("generation", "3"), ("fingerprint", &fp)])).is_none());
        assert!(
            offered(&bag(&[
                ("generation", "x"),
                ("fingerprint", &fp),
                ("keys", "{}")
            ]))
            .is_none()
        );
        assert!(
            offered(&bag(&[
                ("generation", "1"),
                ("fingerprint", "zz"),
                ("keys", "{}")
            ]))
            .is_none()
        );
    }
}
