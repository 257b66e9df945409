//! The `shared-db` relation (interface `mysql-shared`): Keystone's database.
//!
//! - This unit asks ([`request`]): `database`, `username` (config `database`, `database-user`)
//!   and `hostname`, its address on the shared-db binding, or its address inside the database's
//!   `access-network` when the database advertises one ([`hostname`]).
//! - The database answers in its unit bags: `db_host`, `password`, optional `db_port`, optional
//!   `ssl_ca` / `ssl_cert` / `ssl_key` (base64 PEM), and `allowed_units` (space-separated unit
//!   names that may connect). Any remote unit's `allowed_units` may grant this unit
//!   ([`database_state`]).
//! - The leader runs `keystone-manage db_sync` once per database and records it in the peer
//!   application bag (`db-initialised`); the flag is cleared when the relation departs or breaks,
//!   so a re-added database is initialised again ([`db_init_plan`]; the Python charm kept the flag
//!   across a new database, bug #1797229).
//!
//! Remote values reach keystone.conf, so they are checked here: a value that could add a line
//! or change the URL's meaning is refused with the unit and key named, never passed on.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine as _;

use anyhow::Context as _;

use crate::database::{Database, DatabaseState, DatabaseTls, SharedDbError};
use crate::event::{Endpoint, Event, RelationHook};
use crate::facts::{Consuming, DatabaseFlags, FactName, Observed};
use crate::host::process::{Bootstrap, KeystoneManage};
use crate::identity;
use crate::juju::{Bag, Databag, DatabagChanges, Juju, NetworkInfo, UnitName};
use crate::peer_keys;
use crate::peers::Peers;
use crate::relations::cluster;
use crate::relations::fernet_keys_source;
use crate::secret::Sensitive;
use crate::step::{Condition, Hook, Step};

pub const ENDPOINT: &str = "shared-db";
/// The relation's name in status messages (`Missing relations: database`).
pub const STATUS_NAME: &str = "database";
/// What the leader clears when the database goes away: a new database needs both again.
pub const FLAGS_CLEARED_WITH_DATABASE: [&str; 2] =
    [peer_keys::DB_INITIALISED, peer_keys::KEYSTONE_BOOTSTRAPPED];
/// What the leader sets after a successful db_sync.
pub const FLAG_SET: &str = "True";
/// The role `keystone-manage bootstrap` grants the charm's own admin user, system-wide: Keystone's
/// default policies give the system `admin` role what the charm needs.
const BOOTSTRAP_ROLE: &str = "admin";

/// Status text while the leader has not run db_sync on this database.
pub const NOT_INITIALISED: &str = "Database not initialised";

/// What this unit asks the database for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseRequest {
    /// Config `database`.
    pub database: String,
    /// Config `database-user`.
    pub user: String,
}

impl DatabaseRequest {
    /// Checks the names before they are sent or put in a URL: the database name must be a plain
    /// MySQL identifier (it becomes the URL's path), and so must the user name (it becomes the
    /// URL's user, which the URL renderer refuses otherwise).
    pub fn new(database: &str, user: &str) -> Result<DatabaseRequest, SharedDbError> {
        let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if database.is_empty() || database.len() > 64 || !database.chars().all(plain) {
            return Err(SharedDbError::InvalidRequest {
                option: "database",
                reason: "must be 1 to 64 letters, digits, '_' or '-'".to_owned(),
            });
        }
        // The user goes into the database URL too, which takes only these characters.
        if user.is_empty() || user.len() > 80 || !user.chars().all(plain) {
            return Err(SharedDbError::InvalidRequest {
                option: "database-user",
                reason: "must be 1 to 80 letters, digits, '_' or '-'".to_owned(),
            });
        }
        Ok(DatabaseRequest {
            database: database.to_owned(),
            user: user.to_owned(),
        })
    }
}

/// The keys this unit sends (joined, and again whenever the hostname changes).
pub fn request(request: &DatabaseRequest, hostname: &str) -> Databag {
    BTreeMap::from([
        ("database".to_owned(), request.database.clone()),
        ("username".to_owned(), request.user.clone()),
        ("hostname".to_owned(), hostname.to_owned()),
    ])
}

/// Only what differs between what this unit's bag holds and what it should hold (empty: no
/// relation-set needed).
pub fn request_changes(current: &Databag, wanted: &Databag) -> DatabagChanges {
    wanted
        .iter()
        .filter(|(key, value)| current.get(*key) != Some(*value))
        .map(|(key, value)| (key.clone(), Some(value.clone())))
        .collect()
}

/// The `access-network` a remote unit advertises (the first, in unit order), if any.
pub fn access_network(remote: &[RemoteUnit]) -> Option<&str> {
    remote
        .iter()
        .filter_map(|u| u.bag.get("access-network"))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
}

/// The address to send as `hostname`: the binding's address inside `access_network` when one is
/// given and this unit has one there, otherwise the binding's ingress address.
pub fn hostname(
    network: &NetworkInfo,
    access_network: Option<&str>,
) -> Result<String, SharedDbError> {
    if let Some(cidr) = access_network {
        let inside = network
            .bind_addresses
            .iter()
            .flat_map(|b| b.addresses.iter())
            .map(|a| a.value.as_str())
            .find(|address| {
                address
                    .parse::<IpAddr>()
                    .ok()
                    .is_some_and(|ip| in_network(ip, cidr))
            });
        if let Some(address) = inside {
            return Ok(address.to_owned());
        }
    }
    network
        .ingress_address()
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .ok_or(SharedDbError::NoAddress)
}

/// Whether `ip` is inside `cidr` (`10.0.0.0/24`, `fd00::/64`); false for anything unparsable.
fn in_network(ip: IpAddr, cidr: &str) -> bool {
    let Some((network, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(network), Ok(bits)) = (network.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// One remote (database) unit and its bag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUnit {
    pub unit: UnitName,
    pub bag: Databag,
}

/// Reads the remote bags. `remote` is `None` without a shared-db relation, else every remote
/// unit's bag (possibly none yet).
pub fn database_state(
    remote: Option<&[RemoteUnit]>,
    this_unit: &UnitName,
    request: &DatabaseRequest,
) -> Result<DatabaseState, SharedDbError> {
    let Some(remote) = remote else {
        return Ok(DatabaseState::Missing);
    };
    let mut units: Vec<&RemoteUnit> = remote.iter().collect();
    units.sort_by(|a, b| a.unit.as_str().cmp(b.unit.as_str()));
    let has_credentials = |u: &RemoteUnit| {
        ["db_host", "password"]
            .iter()
            .all(|key| u.bag.get(*key).is_some_and(|v| !v.trim().is_empty()))
    };
    let grants = |u: &RemoteUnit| {
        u.bag
            .get("allowed_units")
            .is_some_and(|v| v.split_whitespace().any(|n| n == this_unit.as_str()))
    };
    let Some(first_complete) = units.iter().copied().find(|u| has_credentials(u)) else {
        return Ok(DatabaseState::Incomplete);
    };
    if !units.iter().any(|u| grants(u)) {
        let answered = units.iter().any(|u| u.bag.contains_key("allowed_units"));
        return Ok(if answered {
            DatabaseState::NotAllowed
        } else {
            DatabaseState::Incomplete
        });
    }
    // Prefer the credentials of a unit that grants this one; they belong together.
    let source = units
        .iter()
        .copied()
        .find(|u| grants(u) && has_credentials(u))
        .unwrap_or(first_complete);
    read_database(source, request).map(DatabaseState::Ready)
}

fn read_database(
    source: &RemoteUnit,
    request: &DatabaseRequest,
) -> Result<Database, SharedDbError> {
    let invalid = |key: &'static str, reason: &str| SharedDbError::InvalidValue {
        unit: source.unit.as_str().to_owned(),
        key,
        reason: reason.to_owned(),
    };
    let get = |key: &str| {
        source
            .bag
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };

    let host = get("db_host").unwrap_or_default();
    let host_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.is_empty() || bare.len() > 253 || !bare.chars().all(host_char) {
        return Err(invalid(
            "db_host",
            "not a host name or IP address: only letters, digits, '.', '-', '_' and ':' are allowed",
        ));
    }

    // The raw value: a password may legitimately start or end with spaces.
    let password = source.bag.get("password").cloned().unwrap_or_default();
    if password.chars().any(char::is_control) {
        return Err(invalid(
            "password",
            "contains a newline or another control character",
        ));
    }

    let port = match get("db_port") {
        None => None,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => return Err(invalid("db_port", "not a port number between 1 and 65535")),
        },
    };

    let pem = |key: &'static str| -> Result<Option<String>, SharedDbError> {
        let Some(encoded) = get(key) else {
            return Ok(None);
        };
        let compact: String = encoded.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|_| invalid(key, "not base64"))?;
        let text = String::from_utf8(bytes).map_err(|_| invalid(key, "not PEM text"))?;
        let well_formed = text.contains("-----BEGIN ")
            && text.contains("-----END ")
            && !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r');
        if !well_formed {
            return Err(invalid(key, "not a PEM block"));
        }
        Ok(Some(text))
    };
    let ca = pem("ssl_ca")?;
    let cert = pem("ssl_cert")?;
    let key = pem("ssl_key")?;
    let client = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, Sensitive::new(key))),
        (None, None) => None,
        (Some(_), None) => return Err(invalid("ssl_cert", "sent without ssl_key")),
        (None, Some(_)) => return Err(invalid("ssl_key", "sent without ssl_cert")),
    };
    // As the Python charm: a client certificate is used only together with the CA.
    let tls = ca.map(|ca_pem| DatabaseTls { ca_pem, client });

    Ok(Database {
        host: host.to_owned(),
        port,
        name: request.database.clone(),
        user: request.user.clone(),
        password: Sensitive::new(password),
        tls,
    })
}

/// Whether the peer flag's value means "set" (the Python charm wrote `True`).
pub fn flag_is_set(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes") || v == "1"
    })
}

impl DatabaseFlags {
    pub fn from_peer_bag(bag: &Databag) -> DatabaseFlags {
        DatabaseFlags {
            db_initialised: flag_is_set(bag.get(peer_keys::DB_INITIALISED).map(String::as_str)),
            bootstrapped: flag_is_set(
                bag.get(peer_keys::KEYSTONE_BOOTSTRAPPED)
                    .map(String::as_str),
            ),
            reset: false,
        }
    }

    /// The flags as the peer relation holds them now (none before it exists).
    pub fn read(peers: Option<&Peers<'_>>) -> DatabaseFlags {
        peers
            .map(|peers| DatabaseFlags::from_peer_bag(&peers.app()))
            .unwrap_or_default()
    }
}

/// The shared-db hook running now, if any (other hooks pass `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedDbHook {
    Joined,
    Changed,
    Departed,
    Broken,
}

impl SharedDbHook {
    pub fn of(event: &Event) -> Option<SharedDbHook> {
        match event {
            Event::Relation {
                endpoint: Endpoint::SharedDb,
                hook,
            } => match hook {
                RelationHook::Joined => Some(SharedDbHook::Joined),
                RelationHook::Changed => Some(SharedDbHook::Changed),
                RelationHook::Departed => Some(SharedDbHook::Departed),
                RelationHook::Broken => Some(SharedDbHook::Broken),
                RelationHook::Created => None,
            },
            _ => None,
        }
    }
}

/// What the leader does about db_sync in this hook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbInit {
    /// Peer application keys to delete first ([`FLAGS_CLEARED_WITH_DATABASE`]).
    pub clear_flags: Vec<&'static str>,
    /// Run `keystone-manage db_sync`, then set [`peer_keys::DB_INITIALISED`] to [`FLAG_SET`] (and bootstrap).
    pub run_db_sync: bool,
}

/// The db-initialised rules. Only the leader writes the flag. A departing or breaking relation
/// clears it (a database unit left, or the database is going away); if a database is still
/// ready (another unit of it remains), db_sync runs again at once, so the unit does not sit in
/// "Database not initialised" until the next hook. db_sync on a synced database changes nothing.
pub fn db_init(
    is_leader: bool,
    hook: Option<SharedDbHook>,
    state: &DatabaseState,
    initialised: bool,
) -> DbInit {
    if !is_leader {
        return DbInit::default();
    }
    let leaving = matches!(hook, Some(SharedDbHook::Departed | SharedDbHook::Broken));
    let ready = matches!(state, DatabaseState::Ready(_));
    let clear_flags = if leaving && initialised {
        FLAGS_CLEARED_WITH_DATABASE.to_vec()
    } else {
        Vec::new()
    };
    let still_initialised = initialised && !leaving;
    DbInit {
        clear_flags,
        run_db_sync: ready && !still_initialised,
    }
}

/// The database's part of the status: `Missing relations: database`, `Incomplete relations:
/// database` (nothing yet, or not allowed yet), or the data problem (blocked: nothing else is
/// touched, since rewriting keystone.conf without the database would take a serving unit down).
pub fn conditions(state: &Result<DatabaseState, SharedDbError>) -> Vec<Condition> {
    match state {
        Err(err) => vec![Condition::Blocked(err.to_string())],
        Ok(DatabaseState::Missing) => vec![Condition::MissingRelation(STATUS_NAME)],
        Ok(DatabaseState::Incomplete | DatabaseState::NotAllowed) => {
            vec![Condition::IncompleteRelation(STATUS_NAME)]
        }
        Ok(DatabaseState::Ready(_)) => Vec::new(),
    }
}

/// Reads the relation (relation-ids, relation-list, one relation-get per database unit) and, in
/// shared-db's joined and changed hooks, sends this unit's request when it differs from what the
/// bag holds (network-get, relation-get, relation-set).
pub fn observe(
    juju: &Juju,
    request: &DatabaseRequest,
    hook: Option<SharedDbHook>,
) -> anyhow::Result<Observed> {
    let Some(relation) = juju
        .relation_ids(ENDPOINT)
        .context("cannot list the shared-db relations")?
        .into_iter()
        .next()
    else {
        return Ok(Observed {
            relation: None,
            state: Ok(DatabaseState::Missing),
        });
    };
    let mut remote = Vec::new();
    for unit in juju
        .relation_units(&relation)
        .context("cannot list the database units")?
    {
        let bag = juju
            .relation_data(&relation, &Bag::Unit(unit.clone()))
            .with_context(|| format!("cannot read {unit}'s shared-db data"))?;
        remote.push(RemoteUnit { unit, bag });
    }
    if matches!(hook, Some(SharedDbHook::Joined | SharedDbHook::Changed)) {
        let network = juju
            .network_get(ENDPOINT)
            .context("cannot read this unit's shared-db address")?;
        let hostname = match hostname(&network, access_network(&remote)) {
            Ok(hostname) => hostname,
            Err(err) => {
                return Ok(Observed {
                    relation: Some(relation),
                    state: Err(err),
                });
            }
        };
        let wanted = self::request(request, &hostname);
        let own = juju
            .relation_data(&relation, &Bag::Unit(juju.unit().clone()))
            .context("cannot read this unit's shared-db data")?;
        let changes = request_changes(&own, &wanted);
        if !changes.is_empty() {
            juju.relation_set(&relation, false, &changes)
                .context("cannot send the database request")?;
            tracing::info!("asked for database {}", request.database);
        }
    }
    Ok(Observed {
        state: database_state(Some(&remote), juju.unit(), request),
        relation: Some(relation),
    })
}

// ---------------------------------------------------------------------------------------------
// The steps.

/// The shared-db step: [`run`].
pub const STEP: Step = Step::new("shared-db", run).writes(&[FactName::Observed]);

/// Step: asks for the database and reads what it answered (recording [`Observed`]).
pub fn run(hook: &mut Hook<'_>) -> anyhow::Result<Vec<Condition>> {
    let observed = match DatabaseRequest::new(&hook.config.database, &hook.config.database_user) {
        Ok(request) => observe(hook.juju, &request, SharedDbHook::of(hook.event))?,
        Err(err) => Observed {
            relation: None,
            state: Err(err),
        },
    };
    let mut conditions = conditions(&observed.state);
    if let Some(db) = observed.database() {
        conditions.extend(answering(hook.machine.interfaces.as_ref(), db));
    }
    hook.facts.set(observed);
    Ok(conditions)
}

/// MySQL's port when the database sends none.
const MYSQL_PORT: u16 = 3306;

/// Whether the database accepts connections, asked in every hook once it is ready (one TCP
/// connect; Keystone's own `GET /v3` does not touch the database). While it does not, the unit
/// waits, saying which server, and what needs Keystone's API fails the hook, so Juju retries it.
fn answering(network: &dyn crate::host::net::Interfaces, db: &Database) -> Option<Condition> {
    let port = db.port.unwrap_or(MYSQL_PORT);
    network.accepts(&db.host, port).err().map(|reason| {
        tracing::warn!("the database {}:{port} does not answer: {reason}", db.host);
        Condition::Waiting(format!(
            "Database {}:{port} is not answering ({reason})",
            db.host
        ))
    })
}

/// The database-init step: [`initialise`].
pub const INITIALISE: Step = Step::new("database-init", initialise)
    .reads(&[FactName::Observed, FactName::Consuming])
    .writes(&[FactName::DatabaseFlags]);

/// Step, after Keystone's files are written: the leader initialises the database (db_sync,
/// then bootstrap) once, and clears the flags when the database goes away; every unit records
/// the [`DatabaseFlags`] and waits while the database is not initialised.
pub fn initialise(hook: &mut Hook<'_>) -> anyhow::Result<Vec<Condition>> {
    let Some(observed) = hook.facts.get::<Observed>().cloned() else {
        return Ok(Vec::new());
    };
    let mut flags = DatabaseFlags::read(hook.peers.as_ref());
    // A site that takes its keys from a source shares that source's database: only the
    // source initialises it; this site adopts the flags once the source says it did.
    if let Some(consuming) = hook.facts.get::<Consuming>().cloned() {
        if hook.leader
            && let Some(peers) = &hook.peers
            && consuming.db_initialised
            && consuming.credentials_adopted
            && !(flags.db_initialised && flags.bootstrapped)
        {
            peers.set_shared(&[
                (peer_keys::DB_INITIALISED, Some(FLAG_SET.into())),
                (peer_keys::KEYSTONE_BOOTSTRAPPED, Some(FLAG_SET.into())),
            ])?;
            tracing::info!(
                "the shared database was initialised by {}: db_sync and bootstrap are not run here",
                consuming.source
            );
            flags.db_initialised = true;
            flags.bootstrapped = true;
        }
        hook.facts.set(flags);
        return Ok(match (observed.database(), flags.db_initialised) {
            (Some(_), false) if consuming.db_initialised => vec![Condition::Waiting(format!(
                "Waiting for {} to share its credentials",
                consuming.source
            ))],
            (Some(_), false) => vec![Condition::Waiting(format!(
                "Waiting for {} to initialise the shared database",
                consuming.source
            ))],
            _ => Vec::new(),
        });
    }
    if hook.leader
        && let (Some(peers), Ok(state)) = (&hook.peers, &observed.state)
    {
        let init = db_init(
            true,
            SharedDbHook::of(hook.event),
            state,
            flags.db_initialised,
        );
        if !init.clear_flags.is_empty() {
            let changes: Vec<(&str, Option<String>)> =
                init.clear_flags.iter().map(|key| (*key, None)).collect();
            peers.set_shared(&changes)?;
            tracing::info!("the database went away: it will be initialised again");
            flags = DatabaseFlags {
                reset: true,
                ..DatabaseFlags::default()
            };
        }
        // The key source's relation may exist before its first hook here: asked only when this
        // leader would initialise the database, which a consuming site must never do.
        let would_initialise = init.run_db_sync || (flags.db_initialised && !flags.bootstrapped);
        if would_initialise
            && !hook
                .juju
                .relation_ids(fernet_keys_source::ENDPOINT)
                .context("cannot list the fernet-keys-source relation")?
                .is_empty()
        {
            hook.facts.set(flags);
            return Ok(vec![Condition::Waiting(
                "Waiting for the fernet key source to initialise the shared database".to_owned(),
            )]);
        }
        let manage = KeystoneManage::new(hook.machine.runner);
        let installed = crate::release::kept_version(hook.machine.files.as_ref())?;
        if init.run_db_sync && !hook.paused {
            tracing::info!("running keystone-manage db_sync");
            manage.db_sync().context("keystone-manage db_sync failed")?;
            peers.set_shared(&[
                (peer_keys::DB_INITIALISED, Some(FLAG_SET.into())),
                (peer_keys::DB_SYNCED_VERSION, installed),
            ])?;
            flags.db_initialised = true;
        }
        if flags.db_initialised && !flags.bootstrapped && !hook.paused {
            bootstrap(hook, peers, &manage)?;
            flags.bootstrapped = true;
        }
    }
    hook.facts.set(flags);
    Ok(match (observed.database(), flags.db_initialised) {
        (Some(_), false) => vec![Condition::Waiting(NOT_INITIALISED.to_owned())],
        _ => Vec::new(),
    })
}

/// `keystone-manage bootstrap`: the charm's own admin user (system-scoped `admin`, which
/// Keystone's default policies give what the charm needs), the admin project, the region and
/// Keystone's own endpoints.
fn bootstrap(
    hook: &Hook<'_>,
    peers: &Peers<'_>,
    manage: &KeystoneManage<'_>,
) -> anyhow::Result<()> {
    let credentials = cluster::admin::ensure(hook.juju, peers)?
        .context("the leader could not store the admin credentials")?;
    let urls = hook.endpoint_urls()?;
    tracing::info!("running keystone-manage bootstrap");
    manage
        .bootstrap(&Bootstrap {
            username: identity::CHARM_ADMIN_USER.to_owned(),
            password: credentials.charm_password.clone(),
            project: identity::ADMIN_PROJECT.to_owned(),
            role: BOOTSTRAP_ROLE.to_owned(),
            service_name: identity::IDENTITY_SERVICE.to_owned(),
            region: hook.config.regions.first().cloned().unwrap_or_default(),
            admin_url: urls.admin,
            internal_url: urls.internal,
            public_url: urls.public,
        })
        .context("keystone-manage bootstrap failed")?;
    peers.set_shared(&[(peer_keys::KEYSTONE_BOOTSTRAPPED, Some(FLAG_SET.into()))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::{BindAddress, InterfaceAddress};

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn me() -> UnitName {
        UnitName::parse("keystone/0").unwrap()
    }

    fn req() -> DatabaseRequest {
        DatabaseRequest::new("keystone", "keystone").unwrap()
    }

    fn unit(name: &str, pairs: &[(&str, &str)]) -> RemoteUnit {
        RemoteUnit {
            unit: UnitName::parse(name).unwrap(),
            bag: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn ready(pairs: &[(&str, &str)]) -> Database {
        let mut all = vec![
            ("db_host", "10.0.0.5"),
            ("password", "s3cret"),
            ("allowed_units", "keystone/0 keystone/1"),
        ];
        all.extend_from_slice(pairs);
        match database_state(Some(&[unit("mysql/0", &all)]), &me(), &req()) {
            Ok(DatabaseState::Ready(db)) => db,
            other => panic!("not ready: {other:?}"),
        }
    }

    fn state(units: &[RemoteUnit]) -> Result<DatabaseState, SharedDbError> {
        database_state(Some(units), &me(), &req())
    }

    #[test]
    fn joined_sends_database_username_hostname() {
        let bag = request(&req(), "10.0.0.9");
        assert_eq!(
            bag,
            Databag::from([
                ("database".into(), "keystone".into()),
                ("username".into(), "keystone".into()),
                ("hostname".into(), "10.0.0.9".into()),
            ])
        );
        let mut current = bag.clone();
        assert!(request_changes(&current, &bag).is_empty());
        current.insert("hostname".into(), "10.0.0.1".into());
        assert_eq!(
            request_changes(&current, &bag),
            DatabagChanges::from([("hostname".into(), Some("10.0.0.9".into()))])
        );
    }

    #[test]
    fn hostile_request_names_are_refused() {
        assert!(DatabaseRequest::new("key/stone", "keystone").is_err());
        assert!(DatabaseRequest::new("keystone?x=1", "keystone").is_err());
        assert!(DatabaseRequest::new("", "keystone").is_err());
        assert!(DatabaseRequest::new("keystone", "a\nb").is_err());
        assert!(DatabaseRequest::new("keystone_2-db", "ks_user-2").is_ok());
    }

    fn network() -> NetworkInfo {
        let address = |value: &str, cidr: &str| InterfaceAddress {
            hostname: String::new(),
            value: value.into(),
            cidr: cidr.into(),
        };
        NetworkInfo {
            bind_addresses: vec![
                BindAddress {
                    interface_name: "eth0".into(),
                    addresses: vec![address("10.0.0.9", "10.0.0.0/24")],
                    ..BindAddress::default()
                },
                BindAddress {
                    interface_name: "eth1".into(),
                    addresses: vec![
                        address("192.168.7.9", "192.168.7.0/24"),
                        address("fd00:7::9", "fd00:7::/64"),
                    ],
                    ..BindAddress::default()
                },
            ],
            egress_subnets: vec![],
            ingress_addresses: vec!["10.0.0.9".into()],
        }
    }

    #[test]
    fn hostname_follows_the_access_network() {
        let n = network();
        let cases = [
            (None, "10.0.0.9"),
            (Some("192.168.7.0/24"), "192.168.7.9"),
            (Some("192.168.0.0/16"), "192.168.7.9"),
            (Some("fd00:7::/64"), "fd00:7::9"),
            (Some("172.16.0.0/12"), "10.0.0.9"),
            (Some("not a cidr"), "10.0.0.9"),
            (Some("192.168.7.0/40"), "10.0.0.9"),
        ];
        for (access, expected) in cases {
            assert_eq!(hostname(&n, access).unwrap(), expected, "{access:?}");
        }
        assert_eq!(
            hostname(&NetworkInfo::default(), None),
            Err(SharedDbError::NoAddress)
        );
        let remote = [
            unit("mysql/0", &[]),
            unit("mysql/1", &[("access-network", "192.168.7.0/24")]),
        ];
        assert_eq!(access_network(&remote), Some("192.168.7.0/24"));
    }

    #[test]
    fn states_from_remote_bags() {
        let creds = [("db_host", "10.0.0.5"), ("password", "pw")];
        let cases: Vec<(&str, Vec<RemoteUnit>, &str)> = vec![
            ("no remote unit yet", vec![], "Incomplete"),
            (
                "host without password",
                vec![unit(
                    "mysql/0",
                    &[("db_host", "h"), ("allowed_units", "keystone/0")],
                )],
                "Incomplete",
            ),
            (
                "empty password",
                vec![unit(
                    "mysql/0",
                    &[
                        ("db_host", "h"),
                        ("password", ""),
                        ("allowed_units", "keystone/0"),
                    ],
                )],
                "Incomplete",
            ),
            (
                "credentials, no allowed_units at all",
                vec![unit("mysql/0", &creds)],
                "Incomplete",
            ),
            (
                "allowed_units without this unit",
                vec![unit(
                    "mysql/0",
                    &[
                        ("db_host", "h"),
                        ("password", "p"),
                        ("allowed_units", "keystone/1 keystone/01"),
                    ],
                )],
                "NotAllowed",
            ),
            (
                "another unit grants",
                vec![
                    unit("mysql/0", &creds),
                    unit("mysql/1", &[("allowed_units", "keystone/2 keystone/0")]),
                ],
                "Ready",
            ),
            (
                "granted in one bag",
                vec![unit(
                    "mysql/0",
                    &[
                        ("db_host", "h"),
                        ("password", "p"),
                        ("allowed_units", " keystone/0 "),
                    ],
                )],
                "Ready",
            ),
        ];
        for (name, units, expected) in cases {
            let got = state(&units).unwrap();
            let kind = match got {
                DatabaseState::Missing => "Missing",
                DatabaseState::Incomplete => "Incomplete",
                DatabaseState::NotAllowed => "NotAllowed",
                DatabaseState::Ready(_) => "Ready",
            };
            assert_eq!(kind, expected, "{name}");
        }
        assert_eq!(
            database_state(None, &me(), &req()),
            Ok(DatabaseState::Missing)
        );
    }

    #[test]
    fn the_granting_units_credentials_win() {
        let units = [
            unit("mysql/0", &[("db_host", "10.0.0.1"), ("password", "stale")]),
            unit(
                "mysql/1",
                &[
                    ("db_host", "10.0.0.2"),
                    ("password", "fresh"),
                    ("allowed_units", "keystone/0"),
                ],
            ),
        ];
        let Ok(DatabaseState::Ready(db)) = state(&units) else {
            panic!("not ready")
        };
        assert_eq!(
            (db.host.as_str(), db.password.expose().as_str()),
            ("10.0.0.2", "fresh")
        );
    }

    #[test]
    fn ready_database_and_its_url() {
        let db = ready(&[]);
        assert_eq!(db.port, None);
        assert_eq!(db.tls, None);
        assert_eq!(
            db.connection_url().unwrap().expose(),
            "mysql+pymysql://keystone:s3cret@10.0.0.5/keystone"
        );
        assert!(!format!("{db:?}").contains("s3cret"));

        let db = ready(&[("db_port", "3307"), ("db_host", "fd00::5")]);
        // db_host given twice: the later pair wins in the bag.
        assert_eq!(
            db.connection_url().unwrap().expose(),
            "mysql+pymysql://keystone:s3cret@[fd00::5]:3307/keystone"
        );
    }

    #[test]
    fn passwords_alembic_cannot_read_are_refused_not_mangled() {
        // alembic's config parser rejects `%`, so the URL cannot percent-encode; render refuses
        // what it cannot pass through unchanged.
        let mut db = ready(&[]);
        db.password = Sensitive::new("p@ss%w".into());
        assert!(db.connection_url().is_err());
    }

    #[test]
    fn tls_files_and_url_parameters() {
        let db = ready(&[("ssl_ca", &b64(CA))]);
        assert_eq!(
            db.tls,
            Some(DatabaseTls {
                ca_pem: CA.into(),
                client: None
            })
        );
        assert_eq!(
            db.connection_url().unwrap().expose(),
            "mysql+pymysql://keystone:s3cret@10.0.0.5/keystone?ssl_ca=/etc/keystone/db-client.ca"
        );
        let db = ready(&[
            ("ssl_ca", &b64(CA)),
            ("ssl_cert", &b64(CA)),
            ("ssl_key", &b64(KEY)),
        ]);
        assert_eq!(
            db.tls
                .as_ref()
                .and_then(|t| t.client.as_ref())
                .map(|c| c.1.expose().as_str()),
            Some(KEY)
        );
        assert!(db.connection_url().unwrap().expose().ends_with(
            "?ssl_ca=/etc/keystone/db-client.ca&ssl_cert=/etc/keystone/db-client.cert\
             &ssl_key=/etc/keystone/db-client.key"
        ));
        // A client certificate without the CA is ignored, as the Python charm does.
        assert_eq!(
            ready(&[("ssl_cert", &b64(CA)), ("ssl_key", &b64(KEY))]).tls,
            None
        );
    }

    #[test]
    fn hostile_values_are_refused_with_unit_and_key() {
        let not_pem = b64("[database]\nconnection = sqlite://");
        let cases: [(&str, &str, &str); 9] = [
            ("db_host", "10.0.0.5\n[database]", "db_host"),
            ("db_host", "h/keystone?x=", "db_host"),
            ("db_host", "user@h", "db_host"),
            ("password", "pw\nconnection = sqlite://", "password"),
            ("password", "pw\0", "password"),
            ("db_port", "3306\n[database]", "db_port"),
            ("db_port", "0", "db_port"),
            ("ssl_ca", "%%%", "ssl_ca"),
            ("ssl_ca", &not_pem, "ssl_ca"),
        ];
        for (key, value, named) in cases {
            let mut bag = vec![
                ("db_host", "10.0.0.5"),
                ("password", "s3cret"),
                ("allowed_units", "keystone/0"),
            ];
            bag.retain(|(k, _)| *k != key);
            bag.push((key, value));
            let err = state(&[unit("mysql/0", &bag)]).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("shared-db: mysql/0 sent an unusable {named} (")),
                "{key}={value:?}: {text}"
            );
            assert!(!text.contains('\n'), "{text}");
            if key == "password" {
                assert!(!text.contains("pw"), "{text}");
            }
        }
        let half = [
            ("db_host", "h"),
            ("password", "p"),
            ("allowed_units", "keystone/0"),
            ("ssl_ca", CA),
        ];
        // ssl_ca must be base64, not raw PEM ('-' and ' ' are not base64).
        assert!(state(&[unit("mysql/0", &half)]).is_err());
    }

    #[test]
    fn the_initialised_flag() {
        let ready_state = DatabaseState::Ready(ready(&[]));
        let sync = DbInit {
            clear_flags: vec![],
            run_db_sync: true,
        };
        let clear_and_sync = DbInit {
            clear_flags: FLAGS_CLEARED_WITH_DATABASE.to_vec(),
            run_db_sync: true,
        };
        let clear = DbInit {
            clear_flags: FLAGS_CLEARED_WITH_DATABASE.to_vec(),
            run_db_sync: false,
        };
        let nothing = DbInit::default();
        use SharedDbHook::*;
        let cases = [
            // (leader, hook, state, initialised) -> plan
            (true, Some(Changed), &ready_state, false, &sync),
            (true, None, &ready_state, false, &sync),
            (true, Some(Changed), &ready_state, true, &nothing),
            (
                true,
                Some(Changed),
                &DatabaseState::Incomplete,
                false,
                &nothing,
            ),
            (true, Some(Departed), &ready_state, true, &clear_and_sync),
            (
                true,
                Some(Departed),
                &DatabaseState::Incomplete,
                true,
                &clear,
            ),
            (true, Some(Broken), &DatabaseState::Missing, true, &clear),
            (true, Some(Broken), &DatabaseState::Missing, false, &nothing),
            (false, Some(Changed), &ready_state, false, &nothing),
            (false, Some(Broken), &DatabaseState::Missing, true, &nothing),
        ];
        for (leader, hook, state, initialised, expected) in cases {
            assert_eq!(
                &db_init(leader, hook, state, initialised),
                expected,
                "leader={leader} hook={hook:?} state={state:?} initialised={initialised}"
            );
        }
        assert!(flag_is_set(Some("True")));
        assert!(flag_is_set(Some("true")));
        assert!(!flag_is_set(Some("")));
        assert!(!flag_is_set(Some("False")));
        assert!(!flag_is_set(None));
    }

    #[test]
    fn readding_a_database_initialises_it_again() {
        // The leader's view across remove-relation and a new relation (bug #1797229).
        let mut initialised = true;
        let plan = db_init(
            true,
            Some(SharedDbHook::Broken),
            &DatabaseState::Missing,
            initialised,
        );
        initialised &= plan.clear_flags.is_empty();
        let new_db = DatabaseState::Ready(ready(&[("db_host", "10.0.0.77")]));
        let plan = db_init(true, Some(SharedDbHook::Changed), &new_db, initialised);
        assert!(plan.run_db_sync);
    }

    #[test]
    fn status_messages() {
        let status = |state: Result<DatabaseState, SharedDbError>| {
            crate::status::unit_status(&conditions(&state)).to_string()
        };
        assert_eq!(
            status(Ok(DatabaseState::Missing)),
            "blocked: Missing relations: database"
        );
        assert_eq!(
            status(Ok(DatabaseState::Incomplete)),
            "waiting: Incomplete relations: database"
        );
        assert_eq!(
            status(Ok(DatabaseState::NotAllowed)),
            "waiting: Incomplete relations: database"
        );
        assert_eq!(
            status(Ok(DatabaseState::Ready(ready(&[])))),
            "active: Unit is ready"
        );
        let no_address = conditions(&Err(SharedDbError::NoAddress));
        assert!(no_address[0].stops_the_hook());
        assert_eq!(
            crate::status::unit_status(&no_address).to_string(),
            "blocked: shared-db: this unit has no address on the shared-db binding to send as hostname; bind shared-db to a space this machine is in"
        );
    }

    #[test]
    fn a_database_that_stops_answering_makes_the_unit_wait_until_it_is_back() {
        let mut sim = crate::testing::Sim::ready(1);
        let unit = "keystone/0";
        sim.machine(unit)
            .1
            .interfaces
            .set_refusing("10.0.0.5", MYSQL_PORT, true);
        sim.run(unit, "update-status");
        assert_eq!(
            sim.status(unit),
            "waiting: Database 10.0.0.5:3306 is not answering (connection refused)"
        );
        sim.machine(unit)
            .1
            .interfaces
            .set_refusing("10.0.0.5", MYSQL_PORT, false);
        sim.run(unit, "update-status");
        assert_eq!(sim.status(unit), "active: Unit is ready");
    }
}
