//! Bringing Keystone on this unit in line with the model, in the order it depends on:
//! the database relation, Keystone's files, the leader's db_sync and bootstrap, Apache, the
//! readiness check, and the leader's identity objects.
//!
//! Decisions come from the pure parts ([`crate::relations::shared_db`]'s `db_init_plan`,
//! [`crate::workload::plan`], [`crate::identity::initial_identity_plan`]); this module carries
//! them out in one hook and reports what the status needs.

use std::path::Path;

use anyhow::{Context as _, Result};
use sha2::{Digest as _, Sha256};

use crate::charm::Machine;
use crate::config::Config;
use crate::event::{Endpoint, Event, RelationHook};
use crate::host::process::{Bootstrap, KeystoneManage};
use crate::identity::{self, EndpointUrls, IdentitySettings};
use crate::juju::Juju;
use crate::keystone_api::http::LocalEndpoint;
use crate::keystone_api::{DomainRef, PasswordCredentials, Scope};
use crate::relations::cluster::{self, AdminCredentials, SharedFlags};
use crate::relations::shared_db::{
    self, DB_INITIALISED, DatabaseRequest, DatabaseState, FLAG_SET, KEYSTONE_BOOTSTRAPPED,
    SharedDbError, SharedDbHook,
};
use crate::render::Templates;
use crate::secret::Sensitive;
use crate::workload::{self, WorkloadFacts};

/// Present while the operator has paused the unit (the pause and resume actions).
pub const PAUSED_MARKER: &str = "/var/lib/keystone/charm-paused";
/// The role `keystone-manage bootstrap` grants the charm's own admin user, system-wide: Keystone's
/// default policies give the system `admin` role what the charm needs.
const BOOTSTRAP_ROLE: &str = "admin";

/// What the status needs to know about Keystone on this unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitReport {
    pub database: Result<DatabaseState, SharedDbError>,
    pub db_initialised: bool,
    pub paused: bool,
    /// None when Keystone is not served yet (no database, keys or initialisation); else whether
    /// `GET <prefix>/v3` answered 200, or why not.
    pub answering: Option<Result<(), String>>,
    /// A rendered value was refused: nothing was written (blocked).
    pub render_problem: Option<String>,
}

/// The shared-db hook running now.
fn shared_db_hook(event: &Event) -> Option<SharedDbHook> {
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

/// Whether the operator paused this unit.
pub fn is_paused(machine: &Machine) -> Result<bool> {
    Ok(machine
        .files
        .read(Path::new(PAUSED_MARKER))
        .context("cannot read the pause marker")?
        .is_some())
}

/// The local API endpoint for `config`: service-port, the prefix, and the CA to trust over TLS
/// (ssl_ca, or the certificate itself when it is self-signed).
pub fn local_endpoint(config: &Config) -> LocalEndpoint {
    LocalEndpoint {
        port: config.service_port,
        path_prefix: config.service_path_prefix.clone(),
        tls_ca_pem: config
            .tls
            .as_ref()
            .map(|tls| config.ssl_ca_pem.clone().unwrap_or(tls.cert_pem.clone())),
    }
}

/// Runs every step; see the module documentation.
pub fn converge(
    juju: &Juju,
    machine: &Machine,
    event: &Event,
    config: &Config,
    leader: bool,
    keys_ready: bool,
) -> Result<UnitReport> {
    let hook = shared_db_hook(event);
    let observed = match DatabaseRequest::new(&config.database, &config.database_user) {
        Ok(request) => shared_db::observe(juju, &request, hook)?,
        Err(err) => shared_db::Observed {
            relation: None,
            state: Err(err),
        },
    };
    let peer = cluster::app_data(juju)?;
    let mut flags = peer
        .as_ref()
        .map(|(_, bag)| cluster::shared_flags(bag))
        .unwrap_or_default();
    let paused = is_paused(machine)?;
    let database = match &observed.state {
        Ok(DatabaseState::Ready(db)) => Some(db),
        _ => None,
    };
    let templates = Templates::from_charm_dir(&machine.charm_dir)
        .context("cannot load the charm's templates")?;
    let facts = |flags: &SharedFlags| WorkloadFacts {
        config,
        database,
        db_initialised: flags.db_initialised,
        keys_ready,
        cpus: machine.cpus,
        server_name: config
            .os_public_hostname
            .clone()
            .unwrap_or_else(|| machine.hostname.clone()),
    };
    let mut report = UnitReport {
        database: observed.state.clone(),
        db_initialised: flags.db_initialised,
        paused,
        answering: None,
        render_problem: None,
    };
    // Unusable database data (or a bad database name in config) leaves everything as it was:
    // rewriting keystone.conf without the database would take a serving unit down.
    if report.database.is_err() {
        return Ok(report);
    }
    let mut plan = match workload::plan(&templates, &facts(&flags)) {
        Ok(plan) => plan,
        Err(err) => {
            report.render_problem = Some(err.to_string());
            return Ok(report);
        }
    };
    let mut changed = workload::write_files(machine.files.as_ref(), &[], &plan.keystone_files)?;

    if leader && let Some((relation, bag)) = &peer {
        // The state is Ok here (unusable data returned above).
        let state = observed.state.clone().unwrap_or(DatabaseState::Incomplete);
        let init = shared_db::db_init_plan(true, hook, &state, flags.db_initialised);
        if !init.clear_flags.is_empty() {
            let mut changes: Vec<(&str, Option<String>)> =
                init.clear_flags.iter().map(|key| (*key, None)).collect();
            changes.push(cluster::identity_applied_change(None));
            cluster::set_shared(juju, relation, &changes)?;
            tracing::info!("the database went away: it will be initialised again");
            flags = SharedFlags::default();
        }
        let manage = KeystoneManage::new(machine.runner);
        if init.run_db_sync && !paused {
            tracing::info!("running keystone-manage db_sync");
            manage.db_sync().context("keystone-manage db_sync failed")?;
            cluster::set_shared(juju, relation, &[(DB_INITIALISED, Some(FLAG_SET.into()))])?;
            flags.db_initialised = true;
        }
        if flags.db_initialised && !flags.bootstrapped && !paused {
            let credentials =
                cluster::ensure_admin_credentials(juju, relation, bag, machine.secrets)?
                    .context("the leader could not store the admin credentials")?;
            let urls = endpoint_urls(juju, config)?;
            tracing::info!("running keystone-manage bootstrap");
            manage
                .bootstrap(&Bootstrap {
                    username: identity::CHARM_ADMIN_USER.to_owned(),
                    password: credentials.charm_password.clone(),
                    project: identity::ADMIN_PROJECT.to_owned(),
                    role: BOOTSTRAP_ROLE.to_owned(),
                    service_name: identity::IDENTITY_SERVICE.to_owned(),
                    region: config.regions.first().cloned().unwrap_or_default(),
                    admin_url: urls.admin,
                    internal_url: urls.internal,
                    public_url: urls.public,
                })
                .context("keystone-manage bootstrap failed")?;
            cluster::set_shared(
                juju,
                relation,
                &[(KEYSTONE_BOOTSTRAPPED, Some(FLAG_SET.into()))],
            )?;
            flags.bootstrapped = true;
        }
    }
    // Only the flags can have changed since the first plan; it rendered every file already, so
    // a second plan can only differ in what is served.
    if flags.db_initialised != report.db_initialised {
        plan = workload::plan(&templates, &facts(&flags))?;
    }
    report.db_initialised = flags.db_initialised;

    let apache_changed = workload::write_files(
        machine.files.as_ref(),
        &plan.directories,
        &plan.apache_files,
    )?;
    if apache_changed
        .iter()
        .any(|p| p == Path::new(workload::SYSTEM_CA))
    {
        crate::host::process::run_checked(
            machine.runner,
            &crate::host::process::Command::new("update-ca-certificates"),
        )
        .context("cannot add ssl_ca to the system's CA store")?;
    }
    changed.extend(apache_changed);
    workload::converge_services(
        machine.services.as_ref(),
        &plan,
        paused,
        !changed.is_empty(),
    )?;
    if !plan.serve || paused {
        return Ok(report);
    }

    let endpoint = local_endpoint(config);
    let mut answering = Err("no answer".to_owned());
    let probe = machine.keystone.with_api(&endpoint, &mut |api| {
        answering = match api.version_available() {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("GET {}/v3 did not answer 200", endpoint.base_url())),
            Err(err) => Err(err.to_string()),
        };
        Ok(())
    });
    if let Err(err) = probe {
        answering = Err(format!("{err:#}"));
    }
    let ready = answering.is_ok();
    report.answering = Some(answering);

    // The identity objects: the leader, once Keystone answers, whenever their inputs changed.
    // update-status skips it: nothing it reads can have changed without another hook.
    if leader
        && ready
        && flags.bootstrapped
        && *event != Event::UpdateStatus
        // Read again (from the hook's cache): this hook may have stored the credentials.
        && let Some((relation, bag)) = cluster::app_data(juju)?
    {
        let credentials = cluster::admin_credentials(juju, &bag)?
            .context("the admin credentials are missing from the cluster relation")?;
        ensure_identity(juju, machine, config, &relation, &flags, &credentials)?;
    }
    Ok(report)
}

/// Keystone's own endpoint URLs: os-*-hostname, else the first vip, else this unit's address.
pub fn endpoint_urls(juju: &Juju, config: &Config) -> Result<EndpointUrls> {
    let fallback = match config.vips.first() {
        Some(vip) => vip.to_string(),
        None => juju
            .unit_get("private-address")
            .context("cannot read this unit's address")?,
    };
    let tls = config.tls.is_some();
    let prefix = &config.service_path_prefix;
    let host = |name: &Option<String>| name.clone().unwrap_or_else(|| fallback.clone());
    Ok(EndpointUrls {
        public: identity::identity_url(
            tls,
            &host(&config.os_public_hostname),
            config.service_port,
            prefix,
        ),
        internal: identity::identity_url(
            tls,
            &host(&config.os_internal_hostname),
            config.service_port,
            prefix,
        ),
        admin: identity::identity_url(
            tls,
            &host(&config.os_admin_hostname),
            config.admin_port,
            prefix,
        ),
    })
}

/// The admin password in force: config's admin-password, else the stored one.
pub fn admin_password(config: &Config, credentials: &AdminCredentials) -> Sensitive<String> {
    match identity::admin_password_choice(
        config.admin_password.as_ref(),
        Some(&credentials.admin_password),
    ) {
        identity::AdminPasswordChoice::FromConfig(p) | identity::AdminPasswordChoice::Stored(p) => {
            p
        }
        identity::AdminPasswordChoice::GenerateNew => credentials.admin_password.clone(),
    }
}

/// Applies the initial identity plan through the API when its inputs changed since the last
/// time (recorded as a digest in the peer application bag); returns whether it ran.
pub fn ensure_identity(
    juju: &Juju,
    machine: &Machine,
    config: &Config,
    relation: &crate::juju::RelationId,
    flags: &SharedFlags,
    credentials: &AdminCredentials,
) -> Result<bool> {
    let settings = IdentitySettings::from_config(config, endpoint_urls(juju, config)?);
    let password = admin_password(config, credentials);
    let plan = identity::initial_identity_plan(&settings, &password);
    // Debug never prints a password, so the passwords are hashed in explicitly.
    let mut digest = Sha256::new();
    digest.update(format!("{plan:?}").as_bytes());
    digest.update([0]);
    digest.update(password.expose().as_bytes());
    digest.update([0]);
    digest.update(credentials.charm_password.expose().as_bytes());
    let digest: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if flags.identity_applied.as_deref() == Some(digest.as_str()) {
        return Ok(false);
    }
    let charm_admin = PasswordCredentials {
        user_name: identity::CHARM_ADMIN_USER.to_owned(),
        user_domain: DomainRef::Id(crate::keystone_api::DEFAULT_DOMAIN_ID.to_owned()),
        password: credentials.charm_password.clone(),
    };
    machine
        .keystone
        .with_api(&local_endpoint(config), &mut |api| {
            api.login(&charm_admin, &Scope::System)
                .context("the charm's admin user cannot log in to Keystone")?;
            let applied = identity::apply_plan(api, &plan)?;
            for outcome in &applied.outcomes {
                if outcome.change != crate::keystone_api::Change::Unchanged {
                    tracing::info!("Keystone: {} {:?}", outcome.step, outcome.change);
                }
            }
            Ok(())
        })
        .context("cannot set up Keystone's admin domain, projects, roles and endpoints")?;
    cluster::set_shared(
        juju,
        relation,
        &[cluster::identity_applied_change(Some(&digest))],
    )?;
    Ok(true)
}
