//! Every key of the cluster peer relation's data, in one place: the application bag (only the
//! leader writes it, every unit reads it) and each unit's own bag. What a key means is done by
//! the module named beside it; the names here keep two concerns from ever sharing a key.
//!
//! Values are text; JSON where a key holds a structure.

// -- The fernet and credential keys (relations/cluster.rs) ------------------------------------

/// App: the generation of the key set the leader published (it counts rotations and adoptions).
pub const FERNET_GENERATION: &str = "fernet-generation";
/// App: the published set's fingerprint. Unit: with [`FERNET_GENERATION`], the set this unit
/// holds (its acknowledgement).
pub const FERNET_FINGERPRINT: &str = "fernet-fingerprint";
/// App: when the leader last rotated (unix seconds).
pub const FERNET_LAST_ROTATION: &str = "fernet-last-rotation";
/// App: when each key held became primary (JSON: key index → unix seconds).
pub const FERNET_PRIMARY_SINCE: &str = "fernet-primary-since";
/// App: when the leader first saw every unit and site hold each key still held as primary (JSON:
/// key index → unix seconds): until then a unit that applied the rotation late may still sign
/// tokens with the key before it.
pub const FERNET_PRIMARY_EVERYWHERE: &str = "fernet-primary-everywhere";
/// App: the application secret holding the keys (Juju 3.1 and later).
pub const FERNET_SECRET_ID: &str = "fernet-secret-id";
/// App: the keys themselves (JSON), before Juju 3.1.
pub const FERNET_KEYS: &str = "fernet-keys";

// -- Keys shared with other sites (relations/fernet_keys.rs, relations/fernet_keys_source.rs) --

/// App: `<relation id> <source application>` while this site takes its keys from a source.
pub const FERNET_SOURCE: &str = "fernet-source";
/// App: the source's generation and fingerprint this site last adopted.
pub const FERNET_SOURCE_GENERATION: &str = "fernet-source-generation";
pub const FERNET_SOURCE_FINGERPRINT: &str = "fernet-source-fingerprint";
/// App: until when this site keeps its own former keys beside the source's (unix seconds).
pub const FERNET_KEEP_LOCAL_UNTIL: &str = "fernet-keep-local-until";
/// App: the source this site followed before (it keeps that source's keys for a while).
pub const FERNET_FORMER_SOURCE: &str = "fernet-former-source";
/// App (a source): the relations to the sites that take its keys, space-separated.
pub const FERNET_SITES: &str = "fernet-sites";
/// App (a source): the digest of the credentials it last offered its sites.
pub const FERNET_SITES_CREDENTIALS: &str = "fernet-sites-credentials";
/// App (a site): the digest of the source's credentials it adopted.
pub const FERNET_SOURCE_CREDENTIALS: &str = "fernet-source-credentials";

// -- The admin credentials (relations/cluster/admin.rs) -------------------------------------

/// App: the application secret holding the two admin passwords (Juju 3.1 and later).
pub const ADMIN_SECRET_ID: &str = "admin-secret-id";
/// App: bumped whenever the admin credentials change, so every unit sees the change in the bag
/// (a secret's new revision does not show there).
pub const ADMIN_GENERATION: &str = "admin-generation";
/// App: the two passwords themselves (JSON), before Juju 3.1.
pub const ADMIN_PASSWORDS: &str = "admin-passwords";
/// App: the fernet key source the admin credentials were adopted from.
pub const ADMIN_ADOPTED_FROM: &str = "admin-adopted-from";
/// What every admin credentials key starts with: a change to any of them reaches the
/// identity-admin consumers ([`ADMIN_DOMAIN_ID`] shares the prefix, and is one of their
/// inputs too).
pub const ADMIN_CREDENTIALS_PREFIX: &str = "admin-";

// -- Secrets shared with every unit (relations/cluster/shared.rs) ----------------------------

/// App: the service users' passwords: the secret, or (before Juju 3.1) the JSON itself.
pub const SERVICE_PASSWORDS_SECRET_ID: &str = "service-passwords-secret-id";
pub const SERVICE_PASSWORDS: &str = "service-passwords";
/// App: bumped whenever a service password is added or replaced.
pub const SERVICE_PASSWORDS_GENERATION: &str = "service-passwords-generation";
/// App (a source): the credentials it offers other sites: the secret, or the JSON itself.
pub const SITE_CREDENTIALS_SECRET_ID: &str = "site-credentials-secret-id";
pub const SITE_CREDENTIALS: &str = "site-credentials";

// -- The database (relations/shared_db.rs) ---------------------------------------------------

/// App: the leader ran db_sync on the current database (the Python charm's leader setting).
pub const DB_INITIALISED: &str = "db-initialised";
/// App: the leader ran `keystone-manage bootstrap` on it.
pub const KEYSTONE_BOOTSTRAPPED: &str = "keystone-bootstrapped";
/// App: the Keystone version (upstream, `22.0.2`) the leader last ran db_sync with.
pub const DB_SYNCED_VERSION: &str = "db-synced-version";

// -- Release upgrades (steps/release_upgrade.rs) --------------------------------------------

/// App: the Keystone version (upstream) the leader expanded and migrated the schema for, while
/// units still run the version before it (the contract waits for the last of them).
pub const SCHEMA_EXPANDED: &str = "schema-expanded";
/// App: the unit whose turn it is to upgrade, when upgrades run on config-changed.
pub const UPGRADE_TURN: &str = "upgrade-turn";
/// Unit: the Keystone version (upstream) this unit runs.
pub const UNIT_KEYSTONE_VERSION: &str = "keystone-version";

// -- Readiness and addresses (relations/cluster/readiness.rs) --------------------------------

/// Unit: the fernet generation this unit holds while its Keystone answers (unset otherwise).
pub const UNIT_READY: &str = "keystone-ready";
/// App: the generation every other unit was last seen ready at.
pub const UNITS_READY: &str = "units-ready";
/// App: `<leader unit> <generation>` while the leader holds that generation and answers.
pub const LEADER_READY: &str = "leader-ready";
/// Unit: `<binding>-address` (`public-address`, `internal-address`, `admin-address`): this
/// unit's address on each binding, as the Python charm publishes it.
pub const ADDRESS_SUFFIX: &str = "-address";

// -- The identity Keystone holds (steps/admin_identity.rs, steps/policy.rs) ------------------

/// App: a digest of the admin identity the leader last applied to the database.
pub const IDENTITY_APPLIED: &str = "identity-applied";
/// App: the default domain's id, adopted from the Python charm's leader setting (a database
/// older than `keystone-manage bootstrap` gave it an id other than `default`).
pub const DEFAULT_DOMAIN_ID: &str = "default-domain-id";
/// App: admin_domain's id and the service project's id, for the policy.
pub const ADMIN_DOMAIN_ID: &str = "admin-domain-id";
pub const SERVICE_PROJECT_ID: &str = "service-project-id";
/// App: the domain-backend domains the leader created in Keystone (JSON list;
/// relations/domain_backend.rs).
pub const DOMAINS_CREATED: &str = "domains-created";

// -- The identity consumers' replies (relations/consumers.rs and its endpoints) --------------

/// App: `<prefix><relation id>`: the leader's record of a relation's reply (JSON).
pub const IDENTITY_SERVICE_RECORDS: &str = "identity-service:";
pub const IDENTITY_SERVICE_APP_RECORDS: &str = "identity-service-app:";
/// App: the catalog entries each identity-service relation registered (JSON).
pub const IDENTITY_SERVICE_ENDPOINTS: &str = "identity-service-endpoints:";
pub const IDENTITY_CREDENTIALS_RECORDS: &str = "identity-credentials:";
pub const IDENTITY_CREDENTIALS_APP_RECORDS: &str = "identity-credentials-app:";
pub const KEYSTONE_SERVICE_RECORDS: &str = "keystone-service:";
/// Unit: `served-<endpoint>`: the digest of what this unit last served the endpoint's
/// relations from (nothing changed: no relation is read).
pub const SERVED_PREFIX: &str = "served-";

/// Every key and prefix above, for the test that no two concerns share one.
pub const ALL: [&str; 47] = [
    FERNET_GENERATION,
    FERNET_FINGERPRINT,
    FERNET_LAST_ROTATION,
    FERNET_PRIMARY_SINCE,
    FERNET_PRIMARY_EVERYWHERE,
    FERNET_SECRET_ID,
    FERNET_KEYS,
    FERNET_SOURCE,
    FERNET_SOURCE_GENERATION,
    FERNET_SOURCE_FINGERPRINT,
    FERNET_KEEP_LOCAL_UNTIL,
    FERNET_FORMER_SOURCE,
    FERNET_SITES,
    FERNET_SITES_CREDENTIALS,
    FERNET_SOURCE_CREDENTIALS,
    ADMIN_SECRET_ID,
    ADMIN_GENERATION,
    ADMIN_PASSWORDS,
    ADMIN_ADOPTED_FROM,
    ADMIN_CREDENTIALS_PREFIX,
    SERVICE_PASSWORDS_SECRET_ID,
    SERVICE_PASSWORDS,
    SERVICE_PASSWORDS_GENERATION,
    SITE_CREDENTIALS_SECRET_ID,
    SITE_CREDENTIALS,
    DB_INITIALISED,
    KEYSTONE_BOOTSTRAPPED,
    DB_SYNCED_VERSION,
    SCHEMA_EXPANDED,
    UPGRADE_TURN,
    UNIT_KEYSTONE_VERSION,
    UNIT_READY,
    UNITS_READY,
    LEADER_READY,
    ADDRESS_SUFFIX,
    IDENTITY_APPLIED,
    DEFAULT_DOMAIN_ID,
    ADMIN_DOMAIN_ID,
    SERVICE_PROJECT_ID,
    DOMAINS_CREATED,
    IDENTITY_SERVICE_RECORDS,
    IDENTITY_SERVICE_APP_RECORDS,
    IDENTITY_SERVICE_ENDPOINTS,
    IDENTITY_CREDENTIALS_RECORDS,
    IDENTITY_CREDENTIALS_APP_RECORDS,
    KEYSTONE_SERVICE_RECORDS,
    SERVED_PREFIX,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The prefixes: keys that name a family (`<prefix><relation id>`, …).
    const PREFIXES: [&str; 7] = [
        IDENTITY_SERVICE_RECORDS,
        IDENTITY_SERVICE_APP_RECORDS,
        IDENTITY_SERVICE_ENDPOINTS,
        IDENTITY_CREDENTIALS_RECORDS,
        IDENTITY_CREDENTIALS_APP_RECORDS,
        KEYSTONE_SERVICE_RECORDS,
        SERVED_PREFIX,
    ];

    #[test]
    fn no_two_concerns_share_a_key() {
        let keys = ALL;
        for (i, key) in keys.iter().enumerate() {
            assert!(!keys[..i].contains(key), "{key} twice");
        }
        // A record's key is its prefix and a relation id (`endpoint:n`): no other key may be
        // read as one.
        for prefix in PREFIXES {
            for key in &keys {
                if *key != prefix && !PREFIXES.contains(key) {
                    assert!(!key.starts_with(prefix), "{key} reads as a {prefix} record");
                }
            }
        }
        // The admin credentials' prefix takes in only them and admin_domain's id.
        let admin: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| k.starts_with(ADMIN_CREDENTIALS_PREFIX))
            .collect();
        assert_eq!(
            admin,
            [
                ADMIN_SECRET_ID,
                ADMIN_GENERATION,
                ADMIN_PASSWORDS,
                ADMIN_ADOPTED_FROM,
                ADMIN_CREDENTIALS_PREFIX,
                ADMIN_DOMAIN_ID
            ]
        );
    }
}
