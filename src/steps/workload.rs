//! The Keystone workload on this unit: the files Keystone and Apache run from, and the services
//! that serve it.
//!
//! [`plan`] is pure: validated config and what the relations said in, the files and services the
//! unit should have out (the one meaning of "plan" in this crate). Two steps carry it out:
//! [`keystone_files`] writes Keystone's own files (before the database is initialised, since
//! keystone-manage reads them), and [`apache`] writes the vhost and starts, or restarts, Apache
//! and memcached, only when one of their inputs changed (or they are not running when they
//! should be).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::cache::SharedCache;
use crate::config::Config;
use crate::event::Event;
use crate::facts::{
    DatabaseFlags, FactName, Fragments, HeldKeys, KnownPeers, Observed, Rendered, Serving,
    WorkloadPlan,
};
use crate::host::fs::{DesiredFile, Owner, write_files};
use crate::host::process::{Invocation, Runner, run_checked};
use crate::host::services::{Service, Services};
use crate::identity::identity_url;
use crate::juju::Databag;
use crate::machine::Machine;
use crate::paths;
use crate::peer_keys;
use crate::peers::Peers;
use crate::relations::cluster;
use crate::release::KeystoneRelease;
use crate::render::{
    DatabaseConnection, KeystoneConf, LoggingConf, Policy, RenderError, Templates, Vhost,
};
use crate::step::{Condition, Hook, Step};
use crate::steps::policy;

/// What the workload plan is made from.
#[derive(Debug, Clone)]
pub struct WorkloadFacts<'a> {
    pub config: &'a Config,
    /// The database's connection, once shared-db is ready for this unit.
    pub database: Option<DatabaseConnection>,
    /// The files that connection needs (its TLS material).
    pub database_files: Vec<DesiredFile>,
    /// The leader ran db_sync and bootstrap: Keystone can serve.
    pub db_initialised: bool,
    /// The unit holds the published fernet keys (Keystone cannot issue tokens without them).
    pub keys_ready: bool,
    /// CPUs, for the mod_wsgi worker counts.
    pub cpus: u32,
    /// The vhost's ServerName.
    pub server_name: String,
    /// The cache every unit shares, as this unit sees the application (enable-cache).
    pub cache: Option<SharedCache>,
    /// Keystone's policy.
    pub policy: Policy,
    /// Whether this release of Keystone keeps cached token validations coherent.
    pub token_caching: bool,
    /// What the relations add to keystone.conf and the vhost.
    pub fragments: Fragments,
    /// This unit's public host, once known (keystone.conf's `public_endpoint`).
    pub public_host: Option<String>,
    /// The default domain's id, when it is not Keystone's `default` (adopted from the Python
    /// charm, whose database may predate it).
    pub default_domain_id: Option<String>,
}

impl WorkloadPlan {
    /// Every file, Keystone's first.
    pub fn files(&self) -> impl Iterator<Item = &DesiredFile> {
        self.keystone_files
            .iter()
            .chain(&self.apache_files)
            .chain(&self.system_ca)
            .chain(&self.cache_files)
    }
}

fn file(path: &str, content: impl Into<Vec<u8>>, owner: Owner, mode: u32) -> DesiredFile {
    DesiredFile::new(path, content, owner, mode)
}

fn keystone_readable(path: &str, content: impl Into<Vec<u8>>) -> DesiredFile {
    DesiredFile::keystone_readable(path, content)
}

/// Renders everything; a value that could change a file's meaning fails the whole plan, so
/// nothing is half-written.
pub fn plan(templates: &Templates, facts: &WorkloadFacts<'_>) -> Result<WorkloadPlan, RenderError> {
    let config = facts.config;
    let mut conf = KeystoneConf::from_config(config, facts.database.clone());
    conf.token_caching = facts.token_caching;
    conf.fragments = facts.fragments.conf.clone();
    conf.default_domain_id = facts.default_domain_id.clone();
    if let Some(host) = &facts.public_host {
        let url = identity_url(
            config.tls.is_some(),
            host,
            config.service_port,
            &config.service_path_prefix,
        );
        conf.public_endpoint = Some(url.strip_suffix("/v3").unwrap_or(&url).to_owned());
    }
    let keystone_conf = templates.keystone_conf(&conf)?;
    let logging_conf = templates.logging_conf(&LoggingConf::from_config(config))?;
    let mut keystone_files = vec![
        keystone_readable(paths::KEYSTONE_CONF, keystone_conf),
        keystone_readable(paths::LOGGING_CONF, logging_conf),
        policy::file(templates, &facts.policy)?,
    ];
    keystone_files.extend(facts.database_files.iter().cloned());

    // haproxy serves the certificate (steps::haproxy); its CA goes in the system's store, as
    // the Python charm installs it.
    let system_ca = config
        .tls
        .as_ref()
        .and_then(|tls| tls.ca_pem.as_ref())
        .map(|ca| file(paths::SYSTEM_CA, ca.clone(), Owner::root(), 0o644));
    let mut directories = Vec::new();
    if system_ca.is_some() {
        directories.push(PathBuf::from("/usr/local/share/ca-certificates"));
    }
    let mut vhost = Vhost::from_config(config, facts.cpus, &facts.server_name);
    vhost.fragments = facts.fragments.vhost.clone();
    let vhost = templates.vhost(&vhost)?;
    let mut apache_files = vec![file(paths::VHOST_FILE, vhost, Owner::root(), 0o644)];
    let mut cache_files = Vec::new();
    if let Some(cache) = &facts.cache {
        cache_files.push(file(
            paths::MEMCACHED_CONF,
            templates.memcached_conf(cache)?,
            Owner::root(),
            0o644,
        ));
        cache_files.push(file(
            paths::CACHE_FIREWALL,
            templates.cache_firewall(cache)?,
            Owner::root(),
            0o600,
        ));
    }
    let serve = facts.database.is_some() && facts.db_initialised && facts.keys_ready;
    if !serve {
        apache_files.clear();
        directories.clear();
        cache_files.clear();
    }
    Ok(WorkloadPlan {
        keystone_files,
        apache_files,
        system_ca: system_ca.filter(|_| serve),
        directories,
        // mod_env for `SetEnv HTTPS on` behind haproxy's TLS (Debian enables it by default).
        modules: match config.tls.is_some() {
            true => vec!["wsgi", "env"],
            false => vec!["wsgi"],
        },
        serve,
        cache_files,
        memcached: facts.cache.is_some(),
    })
}

fn facts<'h>(
    hook: &'h Hook<'_>,
    db_initialised: bool,
    peer_bag: Option<&Databag>,
    kept_release: KeystoneRelease,
) -> WorkloadFacts<'h> {
    let database = hook.facts.get::<Observed>().and_then(Observed::database);
    let me = hook.juju.unit().as_str();
    let cache = hook
        .config
        .enable_cache
        .then(|| match hook.facts.get::<KnownPeers>() {
            Some(known) => known.shared_cache(me),
            None => SharedCache::of(me, None, &[]),
        });
    WorkloadFacts {
        config: &hook.config,
        database: database.map(|db| db.connection()),
        database_files: database.map(|db| db.files()).unwrap_or_default(),
        db_initialised,
        keys_ready: hook.facts.get::<HeldKeys>().is_some(),
        cpus: hook.machine.cpus,
        server_name: hook
            .config
            .os_public_hostname
            .clone()
            .unwrap_or_else(|| hook.machine.hostname.clone()),
        cache,
        policy: policy::of(&hook.config, peer_bag),
        token_caching: kept_release.caches_tokens_coherently(),
        fragments: hook.facts.get::<Fragments>().cloned().unwrap_or_default(),
        public_host: hook
            .facts
            .get::<KnownPeers>()
            .and_then(|known| known.public_host.clone()),
        default_domain_id: peer_bag
            .and_then(|bag| bag.get(peer_keys::DEFAULT_DOMAIN_ID))
            .cloned(),
    }
}

/// The keystone-files step: [`keystone_files`].
pub const KEYSTONE_FILES: Step = Step::new("keystone-files", keystone_files)
    .reads(&[FactName::Observed, FactName::HeldKeys, FactName::Fragments])
    .writes(&[FactName::KnownPeers, FactName::Rendered]);

/// Step: renders every file (a refused value blocks the unit and nothing is written) and
/// writes Keystone's own.
pub fn keystone_files(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let templates = hook.machine.templates()?;
    let known = cluster::readiness::known_peers(hook)?;
    hook.facts.set(known);
    let peer_bag = hook.peers.as_ref().map(Peers::app);
    let planned_initialised = peer_bag
        .as_ref()
        .map(DatabaseFlags::from_peer_bag)
        .unwrap_or_default()
        .db_initialised;
    let plan = match plan(
        &templates,
        &facts(
            hook,
            planned_initialised,
            peer_bag.as_ref(),
            KeystoneRelease::kept(hook.machine.files.as_ref())?,
        ),
    ) {
        Ok(plan) => plan,
        Err(err) => return Ok(vec![Condition::Blocked(err.to_string())]),
    };
    let changed = write_files(hook.machine.files.as_ref(), &[], &plan.keystone_files)?;
    hook.facts.set(Rendered {
        templates,
        plan,
        planned_initialised,
        keystone_changed: needs_restart(&changed),
    });
    Ok(Vec::new())
}

/// The apache step: [`apache`].
pub const APACHE: Step = Step::new("apache", apache)
    .reads(&[
        FactName::Rendered,
        FactName::DatabaseFlags,
        FactName::Observed,
        FactName::KnownPeers,
        FactName::HeldKeys,
        FactName::Fragments,
    ])
    .writes(&[FactName::Serving]);

/// Step: once Keystone can serve, writes Apache's files and brings Apache and memcached up,
/// restarting Apache when any of its inputs changed.
pub fn apache(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let Some(rendered) = hook.facts.get::<Rendered>() else {
        return Ok(Vec::new());
    };
    let initialised = hook
        .facts
        .get::<DatabaseFlags>()
        .map_or(rendered.planned_initialised, |f| f.db_initialised);
    // Only the database flag can have changed since the first plan, so a second one is made
    // only when it did.
    let plan = match initialised == rendered.planned_initialised {
        true => rendered.plan.clone(),
        false => {
            let peer_bag = hook.peers.as_ref().map(Peers::app);
            plan(
                &rendered.templates,
                &facts(
                    hook,
                    initialised,
                    peer_bag.as_ref(),
                    KeystoneRelease::kept(hook.machine.files.as_ref())?,
                ),
            )?
        }
    };
    let asked = hook
        .facts
        .get::<Fragments>()
        .map(|f| f.restart.clone())
        .unwrap_or_default();
    if !asked.is_empty() {
        tracing::info!("Keystone restarts: {}", asked.join("; "));
    }
    let keystone_changed = rendered.keystone_changed || !asked.is_empty();
    let machine = hook.machine;
    let changed = write_files(
        machine.files.as_ref(),
        &plan.directories,
        &plan.apache_files,
    )?;
    if !write_files(machine.files.as_ref(), &[], &plan.system_ca)?.is_empty() {
        run_checked(machine.runner, &Invocation::new("update-ca-certificates"))
            .context("cannot add ssl_ca to the system's CA store")?;
    }
    let cache_changed = write_files(machine.files.as_ref(), &[], &plan.cache_files)?;
    converge_cache(
        machine.services.as_ref(),
        machine.runner,
        &plan,
        hook.paused,
        &cache_changed,
        *hook.event == Event::Start,
    )?;
    let inputs_changed = keystone_changed || !changed.is_empty();
    let services = converge_services(
        machine.services.as_ref(),
        &plan,
        hook.paused,
        inputs_changed,
    )?;
    if plan.serve && !hook.paused {
        hook.facts.set(Serving {
            changed: inputs_changed || services != ServiceChanges::default(),
        });
    }
    Ok(Vec::new())
}

/// Keystone stops serving from this unit: Apache and memcached stop (Apache waits for the old
/// process to exit). For the stop hook, the pause action and a series upgrade.
pub fn stop(machine: &Machine) -> Result<()> {
    for service in [Service::Apache2, Service::Memcached] {
        if machine.services.is_running(service)? {
            tracing::info!("stopping {}", service.name());
            machine
                .services
                .stop(service)
                .with_context(|| format!("cannot stop {}", service.name()))?;
        }
    }
    Ok(())
}

/// Whether Keystone must restart for the Keystone files that `changed`: not for its policy alone,
/// which oslo.policy reads again when it changes.
fn needs_restart(changed: &[PathBuf]) -> bool {
    changed.iter().any(|path| path != Path::new(paths::POLICY))
}

/// What [`converge_cache`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheChanges {
    pub firewall_loaded: bool,
    pub memcached_started: bool,
    pub memcached_restarted: bool,
}

/// Once Keystone can serve (and not paused): loads the firewall that guards memcached before
/// memcached listens (when the rules changed, memcached is not running, its configuration
/// changed, or the machine has just booted, which forgets them), then starts memcached, or
/// restarts it when its configuration changed. `changed` are the cache files this hook wrote.
pub fn converge_cache(
    services: &dyn Services,
    runner: &dyn Runner,
    plan: &WorkloadPlan,
    paused: bool,
    changed: &[PathBuf],
    booted: bool,
) -> Result<CacheChanges> {
    let mut done = CacheChanges::default();
    if paused || !plan.serve || !plan.memcached {
        return Ok(done);
    }
    let wrote = |path: &str| changed.iter().any(|p| p == Path::new(path));
    let running = services.is_running(Service::Memcached)?;
    let conf_changed = wrote(paths::MEMCACHED_CONF);
    if wrote(paths::CACHE_FIREWALL) || booted || !running || conf_changed {
        run_checked(
            runner,
            &Invocation::new("nft").args(["-f", paths::CACHE_FIREWALL]),
        )
        .context(
            "cannot load the firewall that lets only this application's units reach memcached",
        )?;
        done.firewall_loaded = true;
    }
    if !running {
        services
            .start(Service::Memcached)
            .context("cannot start memcached")?;
        done.memcached_started = true;
    } else if conf_changed {
        tracing::info!("restarting memcached: its configuration changed");
        services
            .restart(Service::Memcached)
            .context("cannot restart memcached")?;
        done.memcached_restarted = true;
    }
    Ok(done)
}

/// What [`converge_services`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceChanges {
    pub apache_started: bool,
    pub apache_restarted: bool,
}

/// Starts what should run and restarts Apache when its inputs changed (files, modules, the
/// site). A paused unit starts nothing.
pub fn converge_services(
    services: &dyn Services,
    plan: &WorkloadPlan,
    paused: bool,
    inputs_changed: bool,
) -> Result<ServiceChanges> {
    let mut done = ServiceChanges::default();
    if paused {
        return Ok(done);
    }
    if !plan.serve {
        return Ok(done);
    }
    let mut changed = inputs_changed;
    for module in &plan.modules {
        changed |= services
            .enable_module(module)
            .with_context(|| format!("cannot enable Apache's {module} module"))?;
    }
    changed |= services
        .enable_site(paths::VHOST_SITE)
        .context("cannot enable Keystone's Apache site")?;
    if !services.is_running(Service::Apache2)? {
        tracing::info!("starting Apache");
        services
            .start(Service::Apache2)
            .context("cannot start Apache")?;
        done.apache_started = true;
    } else if changed {
        tracing::info!("restarting Apache: its configuration changed");
        services
            .restart(Service::Apache2)
            .context("cannot restart Apache")?;
        done.apache_restarted = true;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::Database;
    use crate::host::fs::{Entry, MemoryFiles};
    use crate::host::services::{RecordingServices, ServiceAction};
    use crate::secret::Sensitive;
    use serde_json::json;
    use std::path::Path;

    use crate::testing::config;

    fn templates() -> Templates {
        Templates::bundled()
    }

    fn database(password: &str) -> Database {
        Database {
            host: "10.0.0.5".into(),
            port: None,
            name: "keystone".into(),
            user: "keystone".into(),
            password: Sensitive::new(password.into()),
            tls: None,
        }
    }

    fn facts<'a>(config: &'a Config, db: Option<&Database>, ready: bool) -> WorkloadFacts<'a> {
        WorkloadFacts {
            config,
            database: db.map(Database::connection),
            database_files: db.map(Database::files).unwrap_or_default(),
            db_initialised: ready,
            keys_ready: ready,
            cpus: 2,
            server_name: "keystone-0".into(),
            cache: config.enable_cache.then(|| {
                let peer = |unit: &str, a: &str| crate::cache::PeerAddresses {
                    unit: unit.into(),
                    cluster: a.parse().ok(),
                    roles: Vec::new(),
                };
                SharedCache::of(
                    "keystone/1",
                    "10.0.0.2".parse().ok(),
                    &[
                        peer("keystone/2", "10.0.0.3"),
                        peer("keystone/0", "10.0.0.1"),
                    ],
                )
            }),
            policy: Policy {
                admin_role: config.admin_role.clone(),
                admin_domain_id: None,
                service_project_id: None,
            },
            token_caching: true,
            fragments: Default::default(),
            public_host: Some("keystone.example.com".into()),
            default_domain_id: None,
        }
    }

    fn text(plan: &WorkloadPlan, path: &str) -> String {
        let file = plan.files().find(|f| f.path == Path::new(path)).unwrap();
        String::from_utf8(file.content.clone()).unwrap()
    }

    #[test]
    fn keystone_names_itself_by_this_units_public_host_as_the_python_charm_has_it() {
        let plain = config(json!({}));
        let conf = text(
            &plan(&templates(), &facts(&plain, None, false)).unwrap(),
            paths::KEYSTONE_CONF,
        );
        assert!(
            conf.contains("public_endpoint = http://keystone.example.com:5000\n"),
            "{conf}"
        );
        assert!(
            !conf.contains("admin_endpoint"),
            "no option of the Keystone this charm runs"
        );
        let prefixed = config(json!({"service-port": 5010, "service-path-prefix": "/identity"}));
        let conf = text(
            &plan(&templates(), &facts(&prefixed, None, false)).unwrap(),
            paths::KEYSTONE_CONF,
        );
        assert!(
            conf.contains("public_endpoint = http://keystone.example.com:5010/identity\n"),
            "{conf}"
        );
        // Before this unit's hosts are known, Keystone names itself by the request's host.
        let mut unknown = facts(&plain, None, false);
        unknown.public_host = None;
        let conf = text(&plan(&templates(), &unknown).unwrap(), paths::KEYSTONE_CONF);
        assert!(!conf.contains("public_endpoint"), "{conf}");
    }

    #[test]
    fn before_the_database_is_initialised_only_keystones_files_are_planned() {
        let config = config(json!({}));
        let plan = plan(&templates(), &facts(&config, None, false)).unwrap();
        assert!(!plan.serve);
        assert!(plan.apache_files.is_empty());
        let conf = text(&plan, paths::KEYSTONE_CONF);
        assert!(!conf.contains("connection ="), "{conf}");
        let db = database("pw");
        let plan = plan_for(&config, Some(&db), false);
        assert!(text(&plan, paths::KEYSTONE_CONF).contains("connection = mysql+pymysql://"));
        assert!(!plan.serve, "not initialised yet");
    }

    fn plan_for(config: &Config, db: Option<&Database>, ready: bool) -> WorkloadPlan {
        plan(&templates(), &facts(config, db, ready)).unwrap()
    }

    #[test]
    fn an_initialised_database_serves_keystone_on_every_address_or_behind_haproxys_tls() {
        let db = database("pw");
        let plain = plan_for(&config(json!({})), Some(&db), true);
        assert!(plain.serve);
        assert_eq!(plain.modules, ["wsgi"]);
        assert!(text(&plain, paths::VHOST_FILE).contains("Listen 4990"));
        assert_eq!(plain.system_ca, None);

        let (cert, key) = crate::testing::tls_pair(&["keystone.example.com"]);
        let b64 = crate::testing::b64;
        let tls_config = config(json!({
            "ssl_cert": b64(&cert), "ssl_key": b64(&key), "ssl_ca": b64(&cert),
        }));
        let tls = plan_for(&tls_config, Some(&db), true);
        // haproxy holds the certificate: Apache has no TLS of its own and listens on loopback.
        assert_eq!(tls.modules, ["wsgi", "env"]);
        let vhost = text(&tls, paths::VHOST_FILE);
        assert!(vhost.contains("Listen 127.0.0.1:4990\n"), "{vhost}");
        assert!(!vhost.contains("SSL"), "{vhost}");
        assert!(vhost.contains("SetEnv HTTPS on"), "{vhost}");
        let ca = tls
            .system_ca
            .as_ref()
            .expect("the CA in the system's store");
        assert_eq!((ca.mode, &ca.owner), (0o644, &Owner::root()));
        // Printing a plan never prints a key or a password.
        let key_body = key.lines().nth(1).expect("a PEM body");
        assert!(!format!("{tls:?}").contains(key_body));
        assert!(
            !tls.files()
                .any(|f| String::from_utf8_lossy(&f.content).contains(key_body)),
            "no file of the workload holds the key"
        );
    }

    #[test]
    fn a_hostile_database_password_fails_the_plan_before_anything_is_written() {
        let db = database("pw\n[database]\nconnection = sqlite://");
        let err = plan(&templates(), &facts(&config(json!({})), Some(&db), true)).unwrap_err();
        assert!(err.to_string().contains("database"), "{err}");
    }

    #[test]
    fn files_are_written_once_with_their_owner_and_mode() {
        let fs = MemoryFiles::new();
        let db = database("pw");
        let plan = plan_for(&config(json!({})), Some(&db), true);
        let changed = write_files(&fs, &plan.directories, plan.files()).unwrap();
        let expected: Vec<PathBuf> = [
            paths::KEYSTONE_CONF,
            paths::LOGGING_CONF,
            paths::POLICY,
            paths::VHOST_FILE,
            paths::MEMCACHED_CONF,
            paths::CACHE_FIREWALL,
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(changed, expected);
        assert!(
            write_files(&fs, &plan.directories, plan.files())
                .unwrap()
                .is_empty()
        );
        let Some(Entry::File { owner, mode, .. }) = fs.entry(Path::new(paths::KEYSTONE_CONF))
        else {
            panic!("keystone.conf was not written");
        };
        assert_eq!((owner, mode), (Owner::new("root", "keystone"), 0o640));
    }

    #[test]
    fn apache_starts_when_stopped_restarts_only_on_change_and_a_paused_unit_starts_nothing() {
        let db = database("pw");
        let plan = plan_for(&config(json!({})), Some(&db), true);
        let services = RecordingServices::new();
        let paused = converge_services(&services, &plan, true, true).unwrap();
        assert_eq!(paused, ServiceChanges::default());
        assert!(services.actions().is_empty());

        let first = converge_services(&services, &plan, false, true).unwrap();
        assert!(first.apache_started && !first.apache_restarted);
        let quiet = converge_services(&services, &plan, false, false).unwrap();
        assert_eq!(quiet, ServiceChanges::default());
        let changed = converge_services(&services, &plan, false, true).unwrap();
        assert!(changed.apache_restarted);
        assert_eq!(services.count(&ServiceAction::Restart(Service::Apache2)), 1);
        assert_eq!(services.count(&ServiceAction::Reload(Service::Apache2)), 0);
        assert_eq!(services.count(&ServiceAction::Start(Service::Apache2)), 1);
    }

    #[test]
    fn keystone_caches_through_haproxy_and_memcached_listens_on_the_cluster_address_only() {
        let db = database("pw");
        let plan = plan_for(&config(json!({})), Some(&db), true);
        let conf = text(&plan, paths::KEYSTONE_CONF);
        assert!(
            conf.contains("memcache_servers = 127.0.0.1:11212\n"),
            "{conf}"
        );
        let memcached = text(&plan, paths::MEMCACHED_CONF);
        assert!(memcached.contains("\n-l 10.0.0.2\n"), "{memcached}");
        assert!(!memcached.contains("127.0.0.1"), "{memcached}");
        let firewall = text(&plan, paths::CACHE_FIREWALL);
        assert!(
            firewall.contains("elements = { 10.0.0.1, 10.0.0.2, 10.0.0.3 }"),
            "{firewall}"
        );
        assert!(
            firewall.contains("ip daddr 10.0.0.2 tcp dport 11211 ip saddr != @members_v4 drop"),
            "{firewall}"
        );
        assert!(
            firewall.contains(
                "ip daddr @members_v4 tcp dport 11211 meta skuid != { root, keystone, haproxy } reject"
            ),
            "{firewall}"
        );
        assert!(
            firewall.contains(
                "ip daddr 127.0.0.1 tcp dport 11212 meta skuid != { root, keystone } reject"
            ),
            "{firewall}"
        );
        // Without the cache: no memcached, no firewall, and Keystone caches nothing.
        let off = plan_for(&config(json!({"enable-cache": false})), Some(&db), true);
        assert!(off.cache_files.is_empty() && !off.memcached);
        assert!(text(&off, paths::KEYSTONE_CONF).contains("[cache]\nenabled = false\n"));
        // Nothing of the cache before Keystone can serve.
        let early = plan_for(&config(json!({})), Some(&db), false);
        assert!(early.cache_files.is_empty());
    }

    #[test]
    fn the_firewall_is_loaded_before_memcached_listens_and_again_after_a_boot() {
        let db = database("pw");
        let plan = plan_for(&config(json!({})), Some(&db), true);
        let services = RecordingServices::new();
        let runner = crate::host::process::ScriptedRunner::new();
        let all: Vec<PathBuf> = plan.cache_files.iter().map(|f| f.path.clone()).collect();
        let paused = converge_cache(&services, &runner, &plan, true, &all, false).unwrap();
        assert_eq!(paused, CacheChanges::default());
        assert!(runner.calls().is_empty() && services.actions().is_empty());

        let first = converge_cache(&services, &runner, &plan, false, &all, false).unwrap();
        assert!(first.firewall_loaded && first.memcached_started);
        assert_eq!(runner.count("nft", "-f"), 1);
        let quiet = converge_cache(&services, &runner, &plan, false, &[], false).unwrap();
        assert_eq!(quiet, CacheChanges::default());
        // A boot forgets the rules while memcached comes back by itself.
        let booted = converge_cache(&services, &runner, &plan, false, &[], true).unwrap();
        assert!(booted.firewall_loaded && !booted.memcached_restarted);
        let conf = [PathBuf::from(paths::MEMCACHED_CONF)];
        let moved = converge_cache(&services, &runner, &plan, false, &conf, false).unwrap();
        assert!(moved.firewall_loaded && moved.memcached_restarted);
        assert_eq!(runner.count("nft", "-f"), 3);
        assert_eq!(services.count(&ServiceAction::Start(Service::Memcached)), 1);
        assert_eq!(
            services.count(&ServiceAction::Restart(Service::Memcached)),
            1
        );
    }

    #[test]
    fn the_policy_confines_the_admin_role_to_the_cloud_admins_projects() {
        let config = config(json!({}));
        let mut facts = facts(&config, None, false);
        let early = text(&plan(&templates(), &facts).unwrap(), paths::POLICY);
        assert!(
            early
                .contains("\"cloud_admin\": \"rule:admin_required and (is_admin_project:True)\"\n"),
            "{early}"
        );
        facts.policy.admin_domain_id = Some("4e1a".into());
        facts.policy.service_project_id = Some("9c0d".into());
        let known = text(&plan(&templates(), &facts).unwrap(), paths::POLICY);
        assert!(
            known.contains(
                "\"cloud_admin\": \"rule:admin_required and (is_admin_project:True or \
                 domain_id:4e1a or project_id:9c0d)\"\n"
            ),
            "{known}"
        );
        assert!(
            known.contains("\"admin_required\": \"role:Admin\"\n"),
            "{known}"
        );
        assert!(known.contains("\"identity:create_domain\": \"rule:cloud_admin\"\n"));
        let conf = text(&plan(&templates(), &facts).unwrap(), paths::KEYSTONE_CONF);
        for line in [
            "[oslo_policy]\npolicy_file = /etc/keystone/policy.yaml\n",
            "admin_project_domain_name = admin_domain\nadmin_project_name = admin\n",
            "methods = external,password,token,oauth1,openid,totp,application_credential\n",
        ] {
            assert!(conf.contains(line), "{line} in {conf}");
        }
        // A role name that would end the check, or an id that would add one, blocks instead.
        facts.policy.admin_role = "Admin or True:True".into();
        assert!(plan(&templates(), &facts).is_err());
        facts.policy.admin_role = "Admin".into();
        facts.policy.service_project_id = Some("x)\" or \"".into());
        assert!(plan(&templates(), &facts).is_err());
    }

    #[test]
    fn token_validations_are_cached_only_where_the_release_keeps_them_coherent() {
        let db = database("pw");
        let config = config(json!({}));
        let mut on = facts(&config, Some(&db), true);
        let conf = text(&plan(&templates(), &on).unwrap(), paths::KEYSTONE_CONF);
        assert!(!conf.contains("caching = false"), "{conf}");
        on.token_caching = false;
        let conf = text(&plan(&templates(), &on).unwrap(), paths::KEYSTONE_CONF);
        assert!(conf.contains("[token]\nprovider = fernet\nexpiration = 3600\n"));
        assert!(conf.contains("\ncaching = false\n"), "{conf}");
    }

    #[test]
    fn a_new_policy_alone_restarts_nothing() {
        let policy = PathBuf::from(paths::POLICY);
        let conf = PathBuf::from(paths::KEYSTONE_CONF);
        assert!(!needs_restart(std::slice::from_ref(&policy)));
        assert!(needs_restart(&[policy, conf]));
        assert!(!needs_restart(&[]));
    }
}
