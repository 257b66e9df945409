//! What the steps of one hook tell the steps after them: [`Facts`], one field per fact.
//!
//! Each fact is written by exactly one step, which declares it (`Step::writes`), and read only
//! by steps that declare it (`Step::reads`) and come after that one. One fact gathers what
//! several steps add: [`Fragments`], the relations' additions to keystone.conf and the vhost;
//! every step that adds to it comes before every step that reads it. `tests/module_graph.rs`
//! checks the order of [`crate::hook::STEPS`] against those declarations, and every hook a test
//! runs checks that a step reads and writes only what it declares.
//!
//! The facts' types are plain data, defined here so that the steps' modules and the hook
//! context can all name them; what a fact means is done by the module that writes it.

use std::path::PathBuf;

use crate::database::{Database, DatabaseState, SharedDbError};
use crate::host::fs::DesiredFile;
use crate::juju::RelationId;
use crate::key_sets::sites::{SiteAcks, Upstream};
use crate::render::Templates;
pub use crate::render::fragments::Fragments;

/// Declares the facts: the [`FactName`] of each, the field of [`Facts`] that holds it, and its
/// [`Fact`] implementation.
macro_rules! facts {
    ($( $(#[$doc:meta])* $field:ident: $fact:ident, )*) => {
        /// The name of each fact, as steps declare what they read and write.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum FactName { $($fact,)* }

        impl FactName {
            pub const ALL: &[FactName] = &[$(FactName::$fact,)*];

            /// Whether several steps add to the fact (each before every step that reads it).
            pub fn gathers(self) -> bool {
                self == FactName::Fragments
            }
        }

        /// Every fact of one hook, empty until its step writes it.
        #[derive(Default)]
        pub struct Facts {
            $( $(#[$doc])* $field: Option<$fact>, )*
            /// The step running now, whose declarations accesses are checked against.
            running: Option<Declared>,
        }

        $(
            impl Fact for $fact {
                const NAME: FactName = FactName::$fact;
                fn slot(facts: &Facts) -> &Option<Self> {
                    &facts.$field
                }
                fn slot_mut(facts: &mut Facts) -> &mut Option<Self> {
                    &mut facts.$field
                }
            }
        )*
    };
}

facts! {
    /// release-upgrade: where this unit stands with a newer release its sources offer.
    upgrade_turn: UpgradeTurn,
    /// fernet-keys-sites: the relations to the sites that consume this one's keys.
    site_relations: SiteRelations,
    /// fernet-keys-sites: the generation each consuming site acknowledged.
    site_acks: SiteAcks,
    /// fernet-keys-source: what the source offers this site.
    upstream: Upstream,
    /// fernet-keys-source: this site consumes a source.
    consuming: Consuming,
    /// Relations: what they add to keystone.conf and the vhost, before keystone-files.
    fragments: Fragments,
    /// cluster: this unit holds the current keys.
    held_keys: HeldKeys,
    /// cluster: what the key sync did and found.
    key_sync: KeySync,
    /// shared-db: the database as this unit sees it.
    database: Observed,
    /// keystone-files: this unit's address and its peers.
    known_peers: KnownPeers,
    /// keystone-files: the rendered plan and templates.
    rendered: Rendered,
    /// database-init: the database's initialisation.
    database_flags: DatabaseFlags,
    /// apache: Apache serves Keystone.
    serving: Serving,
    /// ha: Pacemaker runs this unit's resources.
    clustered: Clustered,
    /// readiness: Keystone answers on this unit.
    answering: Answering,
}

/// Where a unit stands with a release upgrade its sources offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeTurn {
    /// Nothing to do now.
    Idle,
    /// This unit upgraded in this hook (it was its turn).
    Upgrade,
    /// Not yet, and why (the unit's status, or the action's failure).
    Wait(String),
}

/// A value one step tells the later ones.
pub trait Fact: Sized + 'static {
    const NAME: FactName;
    fn slot(facts: &Facts) -> &Option<Self>;
    fn slot_mut(facts: &mut Facts) -> &mut Option<Self>;
}

/// What a step declares it reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct Declared {
    pub step: &'static str,
    pub reads: &'static [FactName],
    pub writes: &'static [FactName],
}

impl Facts {
    /// The fact, if the step that writes it ran in this hook and wrote it.
    pub fn get<T: Fact>(&self) -> Option<&T> {
        self.check(T::NAME, Access::Read);
        T::slot(self).as_ref()
    }

    /// Writes the fact for the steps after this one.
    pub fn set<T: Fact>(&mut self, value: T) {
        self.check(T::NAME, Access::Write);
        *T::slot_mut(self) = Some(value);
    }

    /// Adds a relation's fragments to those of the steps before it.
    pub fn add_fragments(&mut self, more: Fragments) {
        self.check(FactName::Fragments, Access::Write);
        self.fragments.get_or_insert_default().extend(more);
    }

    /// From now until [`Facts::leave`], accesses are checked against `declared`.
    pub fn enter(&mut self, declared: Declared) {
        self.running = Some(declared);
    }

    pub fn leave(&mut self) {
        self.running = None;
    }

    /// A step that reads or writes what it did not declare is a bug in this crate: the order
    /// test would not see it. Tests (debug builds) fail on it; a release build carries on.
    fn check(&self, fact: FactName, access: Access) {
        if let Some(running) = &self.running {
            let declared = match access {
                Access::Read => running.reads.contains(&fact) || running.writes.contains(&fact),
                Access::Write => running.writes.contains(&fact),
            };
            let verb = match access {
                Access::Read => "reads",
                Access::Write => "writes",
            };
            debug_assert!(
                declared,
                "the {} step {verb} {fact:?}, which it does not declare",
                running.step
            );
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Access {
    Read,
    Write,
}

/// The relations to consuming sites, on a source's leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRelations(pub Vec<RelationId>);

/// This site consumes a source's keys (fernet-keys-source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consuming {
    pub relation: RelationId,
    pub source: String,
    /// The source initialised the shared database: this site never runs db_sync or bootstrap.
    pub db_initialised: bool,
    /// This site holds the source's current credentials, so it can log in to the shared
    /// database's Keystone and give its service users their shared passwords.
    pub credentials_adopted: bool,
}

/// This unit holds the leader's current key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldKeys {
    pub generation: u64,
}

/// What the keys mean for the unit's status, and what rotate-fernet reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeySync {
    /// Why the unit is not ready yet (it does not hold the published set).
    pub waiting: Option<String>,
    /// A note for the leader's active status, e.g. a rotation waiting for a unit.
    pub note: Option<String>,
    /// The generation this unit holds.
    pub generation: Option<u64>,
    /// Set when a requested rotation had to wait: the units it waits for.
    pub blocked_rotation: Option<Vec<String>>,
    /// Set when rotate-fernet would have retired a key that may have signed tokens still valid.
    pub rotation_too_soon: Option<TooSoon>,
    /// Set when a rotation happened in this hook.
    pub rotated: Option<Rotated>,
}

/// A rotation refused: it would retire `key` before `next_allowed` (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooSoon {
    pub key: u32,
    pub next_allowed: u64,
    /// When the key stopped being primary, if known; else the last rotation, which the
    /// refusal then counts from.
    pub primary_until: Option<u64>,
    pub last_rotation: u64,
}

/// A rotation done in this hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub generation: u64,
    pub primary_index: u32,
    /// Units that must now apply the new set.
    pub units_to_update: Vec<String>,
    /// Units that had not acknowledged the previous set (a forced rotation).
    pub forced_past: Vec<String>,
}

/// What this hook learned about the database (the shared-db step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub relation: Option<RelationId>,
    pub state: Result<DatabaseState, SharedDbError>,
}

impl Observed {
    /// The database to connect to, once it is ready for this unit.
    pub fn database(&self) -> Option<&Database> {
        match &self.state {
            Ok(DatabaseState::Ready(db)) => Some(db),
            _ => None,
        }
    }
}

/// This unit's cluster address and its peers, as the cluster relation last said: the peers read
/// again in the hooks where they can change (the cluster relation's, start, upgrade-charm,
/// leader-elected), this unit's address in those and in config-changed (which Juju runs when a
/// unit's addresses change), and both kept on the machine for the other hooks. haproxy's
/// backends and the shared cache are made from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KnownPeers {
    /// This unit's address on the cluster binding, as its peers reach it.
    pub own: Option<std::net::IpAddr>,
    pub peers: Vec<Peer>,
    /// The public host Keystone names this unit by (`crate::addresses`), read with this unit's
    /// own address.
    #[serde(default)]
    pub public_host: Option<String>,
}

impl KnownPeers {
    /// The cache every unit shares, as this unit (`me`) sees the application.
    pub fn shared_cache(&self, me: &str) -> crate::cache::SharedCache {
        let peers: Vec<crate::cache::PeerAddresses> = self
            .peers
            .iter()
            .map(|peer| crate::cache::PeerAddresses {
                unit: peer.unit.clone(),
                cluster: peer.address,
                roles: peer.role_addresses.values().copied().collect(),
            })
            .collect();
        crate::cache::SharedCache::of(me, self.own, &peers)
    }
}

/// What a peer says of itself that haproxy needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Peer {
    pub unit: String,
    /// Its address on the cluster binding (Juju's `private-address` in its bag).
    pub address: Option<std::net::IpAddr>,
    /// Its address for each role (`public`, `internal`, `admin`), as it publishes them.
    #[serde(default)]
    pub role_addresses: std::collections::BTreeMap<String, std::net::IpAddr>,
    /// The fernet generation it holds while its Keystone answers.
    pub ready: Option<u64>,
}

/// What the keystone-files step rendered and wrote, for the apache and haproxy steps.
pub struct Rendered {
    pub templates: Templates,
    pub plan: WorkloadPlan,
    /// The database flag the plan was made with.
    pub planned_initialised: bool,
    pub keystone_changed: bool,
}

/// The unit's workload, as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadPlan {
    /// Keystone's own files (keystone.conf, logging.conf, the database's TLS material): written
    /// whenever the config is valid, so that keystone-manage reads the current database.
    pub keystone_files: Vec<DesiredFile>,
    /// Apache's files (the vhost): written only once Keystone can serve.
    pub apache_files: Vec<DesiredFile>,
    /// The CA of Keystone's certificate in the system's store, so every client on the unit
    /// trusts it: written only once Keystone can serve.
    pub system_ca: Option<DesiredFile>,
    /// Directories the files go in that the packages do not create.
    pub directories: Vec<PathBuf>,
    /// Apache modules the vhost needs.
    pub modules: Vec<&'static str>,
    /// Apache serves Keystone (the site is enabled and Apache runs).
    pub serve: bool,
    /// memcached's configuration and the firewall that guards it (enable-cache): written only
    /// once Keystone can serve.
    pub cache_files: Vec<DesiredFile>,
    /// memcached runs (enable-cache).
    pub memcached: bool,
}

/// The database's initialisation as the leader recorded it in the peer application bag; every
/// unit reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DatabaseFlags {
    /// db_sync ran on the current database.
    pub db_initialised: bool,
    /// `keystone-manage bootstrap` ran on it.
    pub bootstrapped: bool,
    /// This hook cleared the flags: the database went away, so whatever was set up in it must
    /// be set up again.
    pub reset: bool,
}

/// Apache serves Keystone on this unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serving {
    /// This hook changed one of the files Keystone or Apache run from, or started or restarted
    /// a service: whatever was known of Keystone answering is out of date.
    pub changed: bool,
}

/// hacluster said `clustered` (any value) on an ha relation: Pacemaker runs this
/// unit's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clustered;

/// Keystone answered on this unit: the steps that need it serving (the admin identity, the
/// consumers, haproxy's own server) read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answering;

#[cfg(test)]
mod tests {
    use super::*;

    fn running(reads: &'static [FactName], writes: &'static [FactName]) -> Facts {
        let mut facts = Facts::default();
        facts.enter(Declared {
            step: "test",
            reads,
            writes,
        });
        facts
    }

    #[test]
    fn a_step_reads_and_writes_what_it_declares() {
        let mut facts = running(&[FactName::Serving], &[FactName::Answering]);
        assert_eq!(facts.get::<Serving>(), None);
        facts.set(Answering);
        assert_eq!(facts.get::<Answering>(), Some(&Answering));
        facts.leave();
        // Outside a step (an action reading what its steps found) nothing is checked.
        facts.set(Serving { changed: true });
        assert_eq!(facts.get::<Serving>(), Some(&Serving { changed: true }));
    }

    #[test]
    #[should_panic(expected = "the test step reads Clustered, which it does not declare")]
    fn a_step_reading_what_it_does_not_declare_fails() {
        let facts = running(&[FactName::Serving], &[]);
        let _ = facts.get::<Clustered>();
    }

    #[test]
    #[should_panic(expected = "the test step writes Serving, which it does not declare")]
    fn a_step_writing_what_it_only_reads_fails() {
        let mut facts = running(&[FactName::Serving], &[]);
        facts.set(Serving { changed: false });
    }
}
