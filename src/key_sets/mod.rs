//! Fernet and credential keys: keystone-manage's key repository format, Keystone's rotation, and
//! the protocol that keeps one key set on every unit.
//!
//! ## Format
//! A repository is a directory of files named by integers: `0` is the staged key (the next
//! primary), the highest number is the primary (it encrypts), the rest are secondaries (they only
//! decrypt). A key is 32 random bytes, url-safe base64 with its `=` padding: 44 bytes, no newline.
//!
//! ## Protocol
//! Only the leader creates and rotates keys. It publishes, in the peer relation's application
//! bag, the set's *generation* (1 at creation, +1 per rotation), its *fingerprint* (SHA-256 over
//! the ordered sets) and the time of the last rotation. The keys themselves travel in an
//! application-owned Juju secret (Juju ≥ 3.1) or in the application bag (older Juju). Every unit
//! applies the published set whenever it differs from what it holds and acknowledges by writing
//! the generation and fingerprint it holds into its own unit bag.
//!
//! The leader rotates when a rotation is due (token-expiration ÷ (fernet-max-active-keys − 2)
//! after the last one) **and** every unit has acknowledged the current generation: a unit that
//! missed one rotation still decrypts new tokens with its staged key, but a second unsynced
//! rotation would leave it unable to (over-rotation). A new leader adopts the published set and
//! creates keys only if nothing was ever published.
//!
//! Everything here is pure: [`crate::host::keys`] keeps the sets on disk.

pub mod sites;
pub mod token;

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secret::Sensitive;

/// Why a key or a key set is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key {index} is not url-safe base64 of 32 bytes")]
    Malformed { index: u32 },
    #[error("the key set has no staged key 0")]
    NoStagedKey,
    #[error("the key set has no primary key (only the staged key 0)")]
    NoPrimaryKey,
    #[error("key file name {0:?} is not a number")]
    BadIndex(String),
    #[error("the published key set is not valid: {0}")]
    Transport(String),
    #[error("cannot read random bytes from the operating system: {0}")]
    Random(String),
}

/// One key, 44 characters of url-safe base64. Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Sensitive<String>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.short_fingerprint())
    }
}

impl Key {
    /// A new key from the OS CSPRNG.
    pub fn generate() -> Result<Key, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Key(Sensitive::new(
            base64::engine::general_purpose::URL_SAFE.encode(bytes),
        )))
    }

    /// Parses a key file's content; surrounding white space (a trailing newline from an editor)
    /// is dropped.
    pub fn parse(index: u32, text: &str) -> Result<Key, KeyError> {
        let text = text.trim();
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(text)
            .map_err(|_| KeyError::Malformed { index })?;
        if bytes.len() != 32 || text.len() != 44 {
            return Err(KeyError::Malformed { index });
        }
        Ok(Key(Sensitive::new(text.to_owned())))
    }

    /// The key text, for the key file and the Juju secret only.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The first 8 hex digits of the key's SHA-256: safe to show, enough to compare.
    pub fn short_fingerprint(&self) -> String {
        hex(&Sha256::digest(self.expose().as_bytes()))[..8].to_owned()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key repository's content: index → key.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct KeySet {
    keys: BTreeMap<u32, Key>,
}

impl KeySet {
    /// A set from parsed keys; it must hold a staged key 0 and a primary.
    pub fn new(keys: BTreeMap<u32, Key>) -> Result<KeySet, KeyError> {
        if !keys.contains_key(&0) {
            return Err(KeyError::NoStagedKey);
        }
        if keys.len() < 2 {
            return Err(KeyError::NoPrimaryKey);
        }
        Ok(KeySet { keys })
    }

    /// A set from keys known to hold a staged key 0 and a primary (a merge of two valid sets).
    fn from_parts(keys: BTreeMap<u32, Key>) -> KeySet {
        KeySet { keys }
    }

    /// keystone-manage fernet_setup: a staged key 0 and a primary key 1.
    pub fn setup(staged: Key, primary: Key) -> KeySet {
        KeySet {
            keys: BTreeMap::from([(0, staged), (1, primary)]),
        }
    }

    /// Keystone's rotation: the staged key becomes the primary with the next index, `new_staged`
    /// becomes key 0, and the oldest secondaries are removed until at most `max_active_keys`
    /// remain.
    pub fn rotate(&self, new_staged: Key, max_active_keys: u32) -> KeySet {
        let mut keys = self.keys.clone();
        // Indices only grow. A set at the top of u32 (only ever adopted from elsewhere) is
        // renumbered from 1 in its order first: Keystone still takes the highest as the primary.
        if self.primary_index() == u32::MAX {
            let staged = keys.remove(&0);
            keys = keys
                .into_values()
                .zip(1u32..)
                .map(|(k, i)| (i, k))
                .collect();
            keys.extend(staged.map(|k| (0, k)));
        }
        let next = keys.keys().copied().max().unwrap_or(0) + 1;
        if let Some(staged) = keys.remove(&0) {
            keys.insert(next, staged);
        }
        keys.insert(0, new_staged);
        let max = max_active_keys.max(3) as usize;
        while keys.len() > max {
            let Some(oldest) = keys.keys().copied().find(|i| *i != 0) else {
                break;
            };
            keys.remove(&oldest);
        }
        KeySet { keys }
    }

    /// What the next `rotate` would remove, as far as tokens go: the most recently primary of
    /// the keys it removes, and from when removing it fails no token (`token_expiration`
    /// seconds after it stopped being primary on every unit, from `published`'s
    /// `primary_everywhere`, else `primary_since`; None when neither is known). None when the
    /// rotation removes no key.
    pub fn retiring(
        &self,
        max_active_keys: u32,
        published: &Published,
        token_expiration: u64,
    ) -> Option<Retiring> {
        let max = max_active_keys.max(3) as usize;
        // A rotation adds one key (the new staged one) before removing the oldest.
        let removed = (self.keys.len() + 1).saturating_sub(max);
        let secondaries: Vec<u32> = self.keys.keys().copied().filter(|i| *i != 0).collect();
        let key = *secondaries.get(removed.checked_sub(1)?)?;
        // It stopped being primary when every unit held the next key as primary: a unit that
        // applied that rotation late signed with it until then. Before the leader saw that (or
        // for keys a revision that did not record it published), when the leader made the next
        // key primary.
        let successor = secondaries.iter().copied().find(|i| *i > key);
        let until = successor.and_then(|s| {
            published
                .primary_everywhere
                .get(&s)
                .or_else(|| published.primary_since.get(&s))
        });
        Some(Retiring {
            key,
            safe_from: until.map(|since| since.saturating_add(token_expiration)),
        })
    }

    /// The highest index: the key Keystone encrypts new tokens with.
    pub fn primary_index(&self) -> u32 {
        self.keys.keys().copied().max().unwrap_or(0)
    }

    pub fn keys(&self) -> &BTreeMap<u32, Key> {
        &self.keys
    }

    /// SHA-256 over `index:key` lines in index order, hex.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for (index, key) in &self.keys {
            hasher.update(format!("{index}:{}\n", key.expose()).as_bytes());
        }
        hex(&hasher.finalize())
    }
}

/// Both repositories the charm keeps identical on every unit.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyMaterial {
    pub fernet: KeySet,
    pub credential: KeySet,
}

impl KeyMaterial {
    /// New keys for both repositories.
    pub fn generate() -> Result<KeyMaterial, KeyError> {
        Ok(KeyMaterial {
            fernet: KeySet::setup(Key::generate()?, Key::generate()?),
            credential: KeySet::setup(Key::generate()?, Key::generate()?),
        })
    }

    /// Fingerprint of both sets together.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.fernet.fingerprint().as_bytes());
        hasher.update(b"\n");
        hasher.update(self.credential.fingerprint().as_bytes());
        hex(&hasher.finalize())
    }

    /// Rotates the fernet keys; credential keys are never rotated here.
    pub fn rotate_fernet(&self, max_active_keys: u32) -> Result<KeyMaterial, KeyError> {
        Ok(KeyMaterial {
            fernet: self.fernet.rotate(Key::generate()?, max_active_keys),
            credential: self.credential.clone(),
        })
    }

    /// Content of the Juju secret that carries the keys: `fernet-<n>` and `credential-<n>`
    /// (secret keys must start with a letter), plus the generation.
    pub fn to_secret_content(&self, generation: u64) -> BTreeMap<String, Sensitive<String>> {
        let mut content = BTreeMap::new();
        for (prefix, set) in [("fernet", &self.fernet), ("credential", &self.credential)] {
            for (index, key) in set.keys() {
                content.insert(
                    format!("{prefix}-{index}"),
                    Sensitive::new(key.expose().to_owned()),
                );
            }
        }
        content.insert(
            "generation".to_owned(),
            Sensitive::new(generation.to_string()),
        );
        content
    }

    /// Reads the secret's content back: the keys and the generation they belong to.
    pub fn from_secret_content(
        content: &BTreeMap<String, Sensitive<String>>,
    ) -> Result<(KeyMaterial, u64), KeyError> {
        let mut fernet = BTreeMap::new();
        let mut credential = BTreeMap::new();
        let mut generation = None;
        for (name, value) in content {
            if name == "generation" {
                generation = value.expose().parse::<u64>().ok();
                continue;
            }
            let (target, index) = if let Some(i) = name.strip_prefix("fernet-") {
                (&mut fernet, i)
            } else if let Some(i) = name.strip_prefix("credential-") {
                (&mut credential, i)
            } else {
                continue;
            };
            let index: u32 = index
                .parse()
                .map_err(|_| KeyError::BadIndex(index.to_owned()))?;
            target.insert(index, Key::parse(index, value.expose())?);
        }
        let generation = generation
            .ok_or_else(|| KeyError::Transport("the secret has no generation".to_owned()))?;
        Ok((
            KeyMaterial {
                fernet: KeySet::new(fernet)?,
                credential: KeySet::new(credential)?,
            },
            generation,
        ))
    }

    /// The peer application bag form, for Juju without secrets.
    pub fn to_bag_value(&self, generation: u64) -> Sensitive<String> {
        let wire = Wire {
            generation,
            fernet: self
                .fernet
                .keys()
                .iter()
                .map(|(i, k)| (i.to_string(), k.expose().to_owned()))
                .collect(),
            credential: self
                .credential
                .keys()
                .iter()
                .map(|(i, k)| (i.to_string(), k.expose().to_owned()))
                .collect(),
        };
        Sensitive::new(serde_json::to_string(&wire).unwrap_or_default())
    }

    pub fn from_bag_value(text: &str) -> Result<(KeyMaterial, u64), KeyError> {
        let wire: Wire =
            serde_json::from_str(text).map_err(|e| KeyError::Transport(e.to_string()))?;
        let parse = |map: &BTreeMap<String, String>| -> Result<KeySet, KeyError> {
            let mut keys = BTreeMap::new();
            for (index, text) in map {
                let index: u32 = index
                    .parse()
                    .map_err(|_| KeyError::BadIndex(index.clone()))?;
                keys.insert(index, Key::parse(index, text)?);
            }
            KeySet::new(keys)
        };
        Ok((
            KeyMaterial {
                fernet: parse(&wire.fernet)?,
                credential: parse(&wire.credential)?,
            },
            wire.generation,
        ))
    }
}

/// The Python charm's leader setting `key_repository`: JSON of
/// `{"/etc/keystone/fernet-keys/": {"0": "<key>", ...}, "/etc/keystone/credential-keys/": {...}}`.
/// Adopting it when this charm replaces the Python one keeps every issued token valid.
pub fn from_python_charm_leader_setting(text: &str) -> Result<KeyMaterial, KeyError> {
    let repos: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_str(text).map_err(|e| KeyError::Transport(e.to_string()))?;
    let set = |suffix: &str| -> Result<KeySet, KeyError> {
        let files = repos
            .iter()
            .find(|(path, _)| path.trim_end_matches('/').ends_with(suffix))
            .map(|(_, files)| files)
            .ok_or_else(|| KeyError::Transport(format!("no {suffix} repository")))?;
        let mut keys = BTreeMap::new();
        for (name, text) in files {
            let index: u32 = name.parse().map_err(|_| KeyError::BadIndex(name.clone()))?;
            keys.insert(index, Key::parse(index, text)?);
        }
        KeySet::new(keys)
    };
    Ok(KeyMaterial {
        fernet: set("fernet-keys")?,
        credential: set("credential-keys")?,
    })
}

#[derive(Serialize, Deserialize)]
struct Wire {
    generation: u64,
    fernet: BTreeMap<String, String>,
    credential: BTreeMap<String, String>,
}

/// What the leader has published in the peer application bag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub generation: u64,
    pub fingerprint: String,
    /// Unix seconds of the last rotation (or of creation).
    pub last_rotation: u64,
    /// When each fernet key still held became primary (unix seconds); keys published by a
    /// revision that did not keep it are missing.
    pub primary_since: BTreeMap<u32, u64>,
    /// When the leader first saw every unit and site hold each key still held as primary: from
    /// then on no unit signs with the key before it.
    pub primary_everywhere: BTreeMap<u32, u64>,
}

/// The key a rotation would retire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retiring {
    /// The fernet key's index.
    pub key: u32,
    /// From when retiring it fails no token (unix seconds), if known.
    pub safe_from: Option<u64>,
}

/// What a unit says it holds, from its unit bag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub generation: u64,
    pub fingerprint: String,
}

impl Published {
    /// Whether an acknowledgement is for exactly this set.
    pub fn acknowledged_by(&self, ack: Option<&Ack>) -> bool {
        ack.is_some_and(|a| a.generation == self.generation && a.fingerprint == self.fingerprint)
    }
}

/// Why the leader rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationRequest {
    /// update-status or another leader hook: rotate only if due.
    Scheduled,
    /// The rotate-fernet action.
    Action { force: bool },
}

/// The leader's decision about the key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderDecision {
    /// Nothing was ever published: create keys, generation 1.
    Initialize,
    /// Rotate now; the result is generation + 1. `forced_past`: units that had not acknowledged
    /// the current generation (only with `rotate-fernet force=true`).
    Rotate { forced_past: Vec<String> },
    /// Not due until this time (unix seconds).
    NotDue { next_due: u64 },
    /// Due (or asked for), but these units have not acknowledged the current generation.
    WaitFor { units: Vec<String> },
    /// Asked for (without force) while the rotation would retire `key`, which may have signed
    /// tokens still valid. Allowed from `next_allowed` (unix seconds).
    TooSoon { key: u32, next_allowed: u64 },
}

/// Decides what the leader does with the keys. `peers` are the units in the peer relation
/// (this unit included) with their acknowledgements; units that departed are not in it, so they
/// are not waited for. `retiring`: the key the next rotation would retire, if any.
pub fn leader_decision(
    published: Option<&Published>,
    peers: &[(String, Option<Ack>)],
    now: u64,
    period_secs: u64,
    request: RotationRequest,
    retiring: Option<Retiring>,
) -> LeaderDecision {
    let Some(published) = published else {
        return LeaderDecision::Initialize;
    };
    let next_due = published.last_rotation.saturating_add(period_secs);
    let wanted = match request {
        RotationRequest::Scheduled => now >= next_due,
        RotationRequest::Action { .. } => true,
    };
    if !wanted {
        return LeaderDecision::NotDue { next_due };
    }
    // A rotation happens unless the key it retires may have signed a token still valid: one
    // that stopped being primary on every unit less than token-expiration ago. Asked for, it is
    // refused then (force rotates anyway); scheduled, it first waits for the units that do not
    // hold the current set (and says so), then until it is safe. When that time is not known,
    // one period since the last rotation stands for it: with fernet-max-active-keys k, a key
    // retired from primary stays k-2 more rotations, that is (k-2) periods = token-expiration.
    let safe_from = retiring.map(|r| (r.key, r.safe_from.unwrap_or(next_due)));
    if let (RotationRequest::Action { force: false }, Some((key, safe_from))) = (request, safe_from)
        && now < safe_from
    {
        return LeaderDecision::TooSoon {
            key,
            next_allowed: safe_from,
        };
    }
    let mut lagging: Vec<String> = peers
        .iter()
        .filter(|(_, ack)| !published.acknowledged_by(ack.as_ref()))
        .map(|(unit, _)| unit.clone())
        .collect();
    lagging.sort_by_key(|u| unit_sort_key(u));
    let forced = matches!(request, RotationRequest::Action { force: true });
    if let (RotationRequest::Scheduled, true, Some((_, safe_from))) =
        (request, lagging.is_empty(), safe_from)
        && now < safe_from
    {
        return LeaderDecision::NotDue {
            next_due: safe_from,
        };
    }
    if lagging.is_empty() || forced {
        LeaderDecision::Rotate {
            forced_past: lagging,
        }
    } else {
        LeaderDecision::WaitFor { units: lagging }
    }
}

fn unit_sort_key(unit: &str) -> (String, u32) {
    let (app, n) = unit.split_once('/').unwrap_or((unit, "0"));
    (app.to_owned(), n.parse().unwrap_or(0))
}

/// What a unit does with the published set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitDecision {
    /// Nothing published yet: wait for the leader.
    WaitForLeader,
    /// The repositories on disk differ from the published set: write it.
    Apply,
    /// The disk matches; make sure the unit bag says so.
    InSync,
}

/// Whether a unit must write the published set, given the fingerprint of what it holds.
pub fn unit_decision(
    published: Option<&Published>,
    held_fingerprint: Option<&str>,
) -> UnitDecision {
    match published {
        None => UnitDecision::WaitForLeader,
        Some(p) if held_fingerprint == Some(p.fingerprint.as_str()) => UnitDecision::InSync,
        Some(_) => UnitDecision::Apply,
    }
}

/// A key of 32 bytes `n`, for tests.
#[cfg(test)]
pub(crate) fn test_key(n: u8) -> Key {
    use base64::Engine as _;
    Key::parse(
        0,
        &base64::engine::general_purpose::URL_SAFE.encode([n; 32]),
    )
    .expect("valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        test_key(n)
    }

    fn indices(set: &KeySet) -> Vec<u32> {
        set.keys().keys().copied().collect()
    }

    #[test]
    fn generated_keys_have_keystone_manages_format() {
        let k = Key::generate().expect("random");
        assert_eq!(k.expose().len(), 44);
        assert!(k.expose().ends_with('='));
        assert!(!k.expose().contains('\n'));
        assert_ne!(k, Key::generate().expect("random"));
        assert!(!format!("{k:?}").contains(k.expose()));
    }

    #[test]
    fn malformed_keys_are_refused_and_newlines_trimmed() {
        assert_eq!(
            Key::parse(3, "short"),
            Err(KeyError::Malformed { index: 3 })
        );
        let text = format!("{}\n", key(1).expose());
        assert_eq!(Key::parse(0, &text).map(|k| k.expose().len()), Ok(44));
        assert_eq!(
            KeySet::new(BTreeMap::from([(1, key(1))])),
            Err(KeyError::NoStagedKey)
        );
        assert_eq!(
            KeySet::new(BTreeMap::from([(0, key(1))])),
            Err(KeyError::NoPrimaryKey)
        );
    }

    #[test]
    fn rotation_follows_keystone() {
        let set = KeySet::setup(key(0), key(1));
        let r1 = set.rotate(key(2), 3);
        assert_eq!(indices(&r1), [0, 1, 2]);
        assert_eq!(r1.keys()[&2], key(0), "the staged key became the primary");
        assert_eq!(r1.keys()[&0], key(2));
        let r2 = r1.rotate(key(3), 3);
        assert_eq!(indices(&r2), [0, 2, 3], "the oldest secondary is pruned");
        let r3 = r2.rotate(key(4), 5).rotate(key(5), 5).rotate(key(6), 5);
        assert_eq!(indices(&r3), [0, 3, 4, 5, 6]);
        assert_eq!(r3.primary_index(), 6);
    }

    #[test]
    fn fingerprints_change_with_any_key_or_index() {
        let a = KeySet::setup(key(0), key(1));
        let b = KeySet::setup(key(0), key(2));
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), KeySet::setup(key(0), key(1)).fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[test]
    fn the_python_charms_leader_setting_is_adopted() {
        let text = serde_json::json!({
            "/etc/keystone/fernet-keys/": {"0": key(1).expose(), "1": key(2).expose(), "2": key(3).expose()},
            "/etc/keystone/credential-keys/": {"0": key(4).expose(), "1": key(5).expose()},
        })
        .to_string();
        let material = from_python_charm_leader_setting(&text).expect("valid");
        assert_eq!(material.fernet.primary_index(), 2);
        assert_eq!(material.credential.keys()[&1], key(5));
        assert!(from_python_charm_leader_setting("{}").is_err());
    }

    #[test]
    fn both_transports_round_trip() {
        let material = KeyMaterial {
            fernet: KeySet::setup(key(0), key(1)).rotate(key(2), 3),
            credential: KeySet::setup(key(7), key(8)),
        };
        let content = material.to_secret_content(5);
        assert!(content.keys().all(|k| k == "generation"
            || k.starts_with("fernet-")
            || k.starts_with("credential-")));
        assert_eq!(
            KeyMaterial::from_secret_content(&content),
            Ok((material.clone(), 5))
        );
        let bag = material.to_bag_value(5);
        assert_eq!(KeyMaterial::from_bag_value(bag.expose()), Ok((material, 5)));
        assert!(KeyMaterial::from_bag_value("{").is_err());
    }

    fn published(generation: u64, last_rotation: u64) -> Published {
        Published {
            generation,
            fingerprint: format!("fp{generation}"),
            last_rotation,
            primary_since: BTreeMap::new(),
            primary_everywhere: BTreeMap::new(),
        }
    }

    fn ack(generation: u64) -> Option<Ack> {
        Some(Ack {
            generation,
            fingerprint: format!("fp{generation}"),
        })
    }

    #[test]
    fn the_leader_rotates_only_when_due_and_everyone_acknowledged() {
        use LeaderDecision::*;
        let rotate = || Rotate {
            forced_past: Vec::new(),
        };
        let all_in_sync = vec![("k/0".to_owned(), ack(2)), ("k/1".to_owned(), ack(2))];
        let one_behind = vec![
            ("k/0".to_owned(), ack(2)),
            ("k/1".to_owned(), ack(1)),
            ("k/2".to_owned(), None),
        ];
        let p = published(2, 1000);
        let scheduled = RotationRequest::Scheduled;
        type Case<'a> = (
            Option<&'a Published>,
            &'a [(String, Option<Ack>)],
            u64,
            RotationRequest,
            LeaderDecision,
        );
        let cases: Vec<Case> = vec![
            (None, &all_in_sync, 0, scheduled, Initialize),
            (
                Some(&p),
                &all_in_sync,
                1500,
                scheduled,
                NotDue { next_due: 4600 },
            ),
            (Some(&p), &all_in_sync, 4600, scheduled, rotate()),
            (
                Some(&p),
                &one_behind,
                5000,
                scheduled,
                WaitFor {
                    units: vec!["k/1".into(), "k/2".into()],
                },
            ),
            (
                Some(&p),
                &all_in_sync,
                1500,
                RotationRequest::Action { force: false },
                TooSoon {
                    key: 1,
                    next_allowed: 4600,
                },
            ),
            (
                Some(&p),
                &all_in_sync,
                4600,
                RotationRequest::Action { force: false },
                rotate(),
            ),
            (
                Some(&p),
                &one_behind,
                4600,
                RotationRequest::Action { force: false },
                WaitFor {
                    units: vec!["k/1".into(), "k/2".into()],
                },
            ),
            (
                Some(&p),
                &one_behind,
                1500,
                RotationRequest::Action { force: true },
                Rotate {
                    forced_past: vec!["k/1".into(), "k/2".into()],
                },
            ),
        ];
        // Key 1 would be retired, and when it stopped being primary is not known: one period
        // since the last rotation stands for it.
        let unknown = Some(Retiring {
            key: 1,
            safe_from: None,
        });
        for (published, peers, now, request, expected) in cases {
            assert_eq!(
                leader_decision(published, peers, now, 3600, request, unknown),
                expected,
                "now={now} {request:?}"
            );
        }
    }

    #[test]
    fn rotate_fernet_rotates_at_once_unless_it_retires_a_key_that_signed_valid_tokens() {
        use LeaderDecision::*;
        let rotate = || Rotate {
            forced_past: Vec::new(),
        };
        let peers = vec![("k/0".to_owned(), ack(2))];
        let p = published(2, 1000);
        let asked = RotationRequest::Action { force: false };
        let decide = |now, retiring| leader_decision(Some(&p), &peers, now, 3600, asked, retiring);
        // Nothing retired: at once, however recent the last rotation.
        assert_eq!(decide(1001, None), rotate());
        let key_1 = |safe_from| {
            Some(Retiring {
                key: 1,
                safe_from: Some(safe_from),
            })
        };
        assert_eq!(
            decide(1500, key_1(2000)),
            TooSoon {
                key: 1,
                next_allowed: 2000
            }
        );
        // Safe before the period is over: the key stopped being primary long enough ago.
        assert_eq!(decide(2000, key_1(2000)), rotate());
        // Later than the period, if that is what tokens need.
        assert_eq!(
            decide(4600, key_1(9000)),
            TooSoon {
                key: 1,
                next_allowed: 9000
            }
        );
        // A scheduled rotation waits until it is safe too (a unit applied the last one late);
        // force rotates anyway.
        assert_eq!(
            leader_decision(
                Some(&p),
                &peers,
                4600,
                3600,
                RotationRequest::Scheduled,
                key_1(9000)
            ),
            NotDue { next_due: 9000 }
        );
        assert_eq!(
            leader_decision(
                Some(&p),
                &peers,
                9000,
                3600,
                RotationRequest::Scheduled,
                key_1(9000)
            ),
            rotate()
        );
        assert_eq!(
            leader_decision(
                Some(&p),
                &peers,
                1500,
                3600,
                RotationRequest::Action { force: true },
                key_1(9000)
            ),
            rotate()
        );
    }

    #[test]
    fn the_key_a_rotation_retires_is_the_newest_it_removes_safe_expiration_after_its_successor_took_over()
     {
        let since = Published {
            primary_since: BTreeMap::from([(1, 100), (2, 200), (3, 300), (4, 400)]),
            ..published(4, 400)
        };
        let set = KeySet::setup(test_key(0), test_key(1));
        // Two keys: a rotation to three removes none.
        assert_eq!(set.retiring(3, &since, 50), None);
        let three = set.rotate(test_key(2), 3);
        assert_eq!(
            three.retiring(3, &since, 50),
            Some(Retiring {
                key: 1,
                safe_from: Some(250)
            })
        );
        // With five keys allowed, three rotations remove none.
        let four = three.rotate(test_key(3), 5);
        let five = four.rotate(test_key(4), 5);
        assert_eq!(three.retiring(5, &since, 50), None);
        assert_eq!(four.retiring(5, &since, 50), None);
        assert_eq!(
            five.retiring(5, &since, 50),
            Some(Retiring {
                key: 1,
                safe_from: Some(250)
            })
        );
        // fernet-max-active-keys lowered to 3: keys 1 to 3 go; key 3 was primary until key 4
        // took over.
        assert_eq!(
            five.retiring(3, &since, 50),
            Some(Retiring {
                key: 3,
                safe_from: Some(450)
            })
        );
        assert_eq!(
            five.rotate(test_key(5), 3)
                .keys()
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            vec![0, 4, 5]
        );
        // Not known when key 2 became primary.
        assert_eq!(
            three.retiring(3, &published(2, 200), 50),
            Some(Retiring {
                key: 1,
                safe_from: None
            })
        );
        // Key 2 became primary at 200, but a unit applied that rotation only at 230: it signed
        // with key 1 until then.
        let late = Published {
            primary_everywhere: BTreeMap::from([(2, 230)]),
            ..since.clone()
        };
        assert_eq!(
            three.retiring(3, &late, 50),
            Some(Retiring {
                key: 1,
                safe_from: Some(280)
            })
        );
    }

    #[test]
    fn units_apply_whatever_differs_from_the_published_set() {
        let p = published(3, 0);
        assert_eq!(unit_decision(None, Some("x")), UnitDecision::WaitForLeader);
        assert_eq!(unit_decision(Some(&p), None), UnitDecision::Apply);
        assert_eq!(unit_decision(Some(&p), Some("fp2")), UnitDecision::Apply);
        assert_eq!(unit_decision(Some(&p), Some("fp3")), UnitDecision::InSync);
    }
}
