//! The `domain-backend` relation (requires, container-scoped; keystone-ldap is the subordinate):
//! a domain whose users and groups come from its own identity driver, LDAP or Active
//! Directory. Each subordinate unit sends `domain-name` and `restart-nonce`, and writes the
//! domain's driver configuration itself, as `/etc/keystone/domains/keystone.<domain>.conf`.
//!
//! With a domain related, keystone.conf gets `[identity] domain_specific_drivers_enabled = True`
//! and `domain_config_dir = /etc/keystone/domains` ([`OBSERVE`]). Keystone restarts when a
//! domain comes, when its nonce changes, and when it goes; a domain that goes takes its file
//! with it, so its users are refused from then on. The leader creates each domain in Keystone
//! once the database is initialised ([`CREATE`]); a domain stays in Keystone when its relation
//! goes, as the Python charm leaves it.
//!
//! Keystone reads the domains' files once per process, on its first identity request, and
//! skips a file whose domain does not exist yet. So every unit restarts Keystone once more
//! when the leader has created a domain: the leader at once, the others when the peer bag
//! says so.
//!
//! What the subordinates sent is kept on the machine: only this relation's hooks, install and
//! upgrade-charm ask Juju. A domain name that cannot name a file is refused, named in the
//! status.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::event::Endpoint;
use crate::facts::{Answering, DatabaseFlags, FactName};
use crate::host::fs::Owner;
use crate::host::services::Service;
use crate::juju::Databag;
use crate::keystone_api::{Change, ensure_domain};
use crate::peer_keys;
use crate::relations::{consumers, kept};
use crate::render::fragments::{ConfFragment, Fragments};
use crate::status::Condition;
use crate::step::{Hook, Step};

pub const ENDPOINT: Endpoint = Endpoint::DomainBackend;

/// Where each domain's driver configuration is, as the subordinates write it.
pub const DOMAINS_DIR: &str = "/etc/keystone/domains";

/// Where what the subordinates last sent is kept.
const KEPT: &str = "/var/lib/keystone-charm/domain-backends.json";

/// The domain-backend step: [`observe`].
pub const OBSERVE: Step = Step::new("domain-backend", observe).writes(&[FactName::Fragments]);

/// The domain-backend-create step: [`create`].
pub const CREATE: Step = Step::new("domain-backend-create", create)
    .reads(&[FactName::DatabaseFlags, FactName::Answering]);

/// What the subordinates said: each domain with its restart nonce, and what was refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domains {
    pub nonces: BTreeMap<String, String>,
    /// Those the leader had created in Keystone, as this unit last saw the peer bag.
    #[serde(default)]
    pub created: BTreeSet<String>,
    /// `<unit>'s <key>`.
    pub refused: BTreeSet<String>,
}

/// Step: the domains' keystone.conf options, and a restart when a domain came, went, or asked
/// for one; a domain that went loses its file.
pub fn observe(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let files = hook.machine.files.as_ref();
    let before: Domains = kept::read(files, KEPT, "domain backends")?;
    let mut domains = match kept::reads_juju(hook.event, ENDPOINT) {
        true => from_juju(hook)?,
        false => before.clone(),
    };
    let recorded = created(&hook.peer_app());
    domains.created = domains
        .nonces
        .keys()
        .filter(|d| recorded.contains(*d))
        .cloned()
        .collect();
    let restart = restart_reasons(&before, &domains);
    if domains != before {
        for gone in before
            .nonces
            .keys()
            .filter(|d| !domains.nonces.contains_key(*d))
        {
            let file = domain_file(gone);
            if files
                .remove(Path::new(&file))
                .with_context(|| format!("cannot remove {file}"))?
            {
                tracing::info!("removed {file}: the {gone} domain's backend is gone");
            }
        }
        kept::write(files, KEPT, "domain backends", &domains)?;
    }
    if !domains.nonces.is_empty() {
        files
            .ensure_dir(Path::new(DOMAINS_DIR), &Owner::keystone(), 0o750)
            .with_context(|| format!("cannot make {DOMAINS_DIR}"))?;
    }
    hook.facts.add_fragments(fragments(&domains, restart));
    Ok(kept::refused_notes(ENDPOINT, &domains.refused))
}

/// The keystone.conf options, with a domain related, and why Keystone restarts.
pub fn fragments(domains: &Domains, restart: Vec<String>) -> Fragments {
    let conf = match domains.nonces.is_empty() {
        true => Vec::new(),
        false => vec![
            ConfFragment::set("identity", "domain_specific_drivers_enabled", "True"),
            ConfFragment::set("identity", "domain_config_dir", DOMAINS_DIR),
        ],
    };
    Fragments {
        conf,
        vhost: Vec::new(),
        restart,
    }
}

/// Why Keystone must restart to read the domains' files again: a domain came, went, was
/// created in Keystone, or its subordinate changed the nonce.
pub fn restart_reasons(before: &Domains, now: &Domains) -> Vec<String> {
    let mut reasons = Vec::new();
    for domain in now.created.difference(&before.created) {
        reasons.push(format!("the {domain} domain was created in Keystone"));
    }
    for (domain, nonce) in &now.nonces {
        match before.nonces.get(domain) {
            None => reasons.push(format!("the {domain} domain's backend came")),
            Some(old) if old != nonce => {
                reasons.push(format!("the {domain} domain's backend asked for a restart"))
            }
            Some(_) => {}
        }
    }
    for domain in before
        .nonces
        .keys()
        .filter(|d| !now.nonces.contains_key(*d))
    {
        reasons.push(format!("the {domain} domain's backend went"));
    }
    reasons
}

/// `/etc/keystone/domains/keystone.<domain>.conf`, as Keystone looks for it.
pub fn domain_file(domain: &str) -> String {
    format!("{DOMAINS_DIR}/keystone.{domain}.conf")
}

/// Every subordinate unit's domain, from Juju.
fn from_juju(hook: &Hook<'_>) -> Result<Domains> {
    let mut domains = Domains::default();
    for (relation, unit, bag) in kept::remote_bags(hook, ENDPOINT)? {
        match domain(&bag) {
            Ok(Some((name, nonce))) => {
                domains.nonces.insert(name, nonce);
            }
            Ok(None) => {}
            Err(key) => {
                tracing::error!("{relation}: {unit}'s {key} is refused; its domain is ignored");
                domains.refused.insert(format!("{unit}'s {key}"));
            }
        }
    }
    Ok(domains)
}

/// A subordinate unit's domain and restart nonce: None until it sent the domain's name; the key
/// that is unusable, if one is. A name names a file, so it is letters, digits, `_`, `-` and
/// `.` (not first), as a Juju application name is.
pub fn domain(bag: &Databag) -> std::result::Result<Option<(String, String)>, &'static str> {
    let Some(name) = bag.get("domain-name").filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let name_char = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    if name.len() > 64 || name.starts_with('.') || !name.chars().all(name_char) {
        return Err("domain-name");
    }
    let nonce = bag.get("restart-nonce").cloned().unwrap_or_default();
    if nonce.len() > 255 || nonce.chars().any(char::is_control) {
        return Err("restart-nonce");
    }
    Ok(Some((name.clone(), nonce)))
}

/// Step, after admin-identity: the leader creates the related domains Keystone does not have
/// yet, once it answers; the peer bag records which it created, so a hook with nothing new
/// calls no API.
pub fn create(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    if !hook.leader {
        return Ok(Vec::new());
    }
    let Some(peer_bag) = hook.peers.as_ref().map(|p| p.app()) else {
        return Ok(Vec::new());
    };
    let recorded = created(&peer_bag);
    let flags = hook
        .facts
        .get::<DatabaseFlags>()
        .copied()
        .unwrap_or_default();
    // A new database holds none of them.
    if flags.reset && !recorded.is_empty() {
        hook.peers()?
            .set_shared(&[(peer_keys::DOMAINS_CREATED, None)])?;
        return Ok(Vec::new());
    }
    let files = hook.machine.files.as_ref();
    let mut wanted: Domains = kept::read(files, KEPT, "domain backends")?;
    let missing: Vec<&String> = wanted
        .nonces
        .keys()
        .filter(|d| !recorded.contains(*d))
        .collect();
    if missing.is_empty() || !flags.bootstrapped || hook.facts.get::<Answering>().is_none() {
        return Ok(Vec::new());
    }
    let credentials = consumers::charm_admin(hook, &peer_bag)?;
    let api = hook.keystone_as(&credentials)?;
    for domain in &missing {
        let (_, change) = ensure_domain(api, domain)
            .with_context(|| format!("cannot create the {domain} domain in Keystone"))?;
        if change != Change::Unchanged {
            tracing::info!("Keystone: domain {domain} {change:?}");
        }
    }
    let missing: Vec<String> = missing.into_iter().cloned().collect();
    let mut all = recorded;
    all.extend(missing.iter().cloned());
    let text = serde_json::to_string(&all).context("cannot encode the created domains")?;
    hook.peers()?
        .set_shared(&[(peer_keys::DOMAINS_CREATED, Some(text))])?;
    // This unit's Keystone read the domains' files when the charm logged in, before the
    // domains existed: read them again.
    wanted.created.extend(missing.iter().cloned());
    kept::write(files, KEPT, "domain backends", &wanted)?;
    let services = hook.machine.services.as_ref();
    if !hook.paused && services.is_running(Service::Apache2)? {
        tracing::info!(
            "restarting Apache: Keystone reads the new domains' files ({})",
            missing.join(", ")
        );
        services
            .restart(Service::Apache2)
            .context("cannot restart Apache")?;
    }
    Ok(Vec::new())
}

/// The domains the leader created, as the peer bag records them.
fn created(peer_bag: &Databag) -> BTreeSet<String> {
    peer_bag
        .get(peer_keys::DOMAINS_CREATED)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use juju_sim_fixtures::scripted::KeystoneLdap;

    use super::*;
    use crate::host::fs::Files as _;
    use crate::host::services::{Service, ServiceAction};
    use crate::keystone_api::KeystoneApi as _;
    use crate::testing::Sim;

    const UNITS: [&str; 2] = ["keystone/0", "keystone/1"];

    fn deploy(domain: &'static str) -> (Sim, u32, Arc<Mutex<String>>) {
        let mut sim = Sim::ready(2);
        let ldap = KeystoneLdap::new(domain);
        let nonce = Arc::clone(&ldap.nonce);
        sim.model
            .deploy_scripted("keystone-ldap", Box::new(ldap), 2)
            .unwrap();
        let id = sim.model.relate("keystone", "keystone-ldap").unwrap();
        sim.settle();
        (sim, id, nonce)
    }

    fn restarts(sim: &Sim, unit: &str) -> usize {
        sim.machine(unit)
            .1
            .services
            .count(&ServiceAction::Restart(Service::Apache2))
    }

    fn domain_options(sim: &Sim, unit: &str) -> Vec<String> {
        sim.file(unit, crate::paths::KEYSTONE_CONF)
            .lines()
            .filter(|l| l.starts_with("domain_"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_related_domain_is_created_and_read_by_every_unit_until_its_relation_goes() {
        let (mut sim, id, nonce) = deploy("ldap");
        let expected = [
            "domain_specific_drivers_enabled = True",
            "domain_config_dir = /etc/keystone/domains",
        ];
        for unit in UNITS {
            assert_eq!(domain_options(&sim, unit), expected, "{unit}");
            assert_eq!(sim.status(unit), "active: Unit is ready", "{unit}");
        }
        let names = |sim: &Sim| -> Vec<String> {
            let keystone = sim.keystone.lock().unwrap();
            keystone.domains.iter().map(|d| d.name.clone()).collect()
        };
        assert!(
            names(&sim).contains(&"ldap".to_owned()),
            "{:?}",
            names(&sim)
        );

        // Nothing changed: no restart, and no call to Keystone but update-status's readiness
        // check.
        let before: Vec<usize> = UNITS.iter().map(|u| restarts(&sim, u)).collect();
        for unit in UNITS {
            assert!(sim.run(unit, "update-status"));
        }
        let requests = sim.keystone.lock().unwrap().request_count();
        for unit in UNITS {
            assert!(sim.run(unit, "config-changed"));
        }
        let after: Vec<usize> = UNITS.iter().map(|u| restarts(&sim, u)).collect();
        assert_eq!(after, before);
        assert_eq!(sim.keystone.lock().unwrap().request_count(), requests);

        // A new nonce restarts every unit once.
        *nonce.lock().unwrap() = "2".to_owned();
        for unit in sim.model.units("keystone-ldap") {
            sim.model.queue_hook(&unit, "update-status");
        }
        sim.settle();
        let restarted: Vec<usize> = UNITS.iter().map(|u| restarts(&sim, u)).collect();
        assert_eq!(restarted, before.iter().map(|n| n + 1).collect::<Vec<_>>());

        // The relation goes: the domain's file with it, and the options; the domain stays.
        for unit in UNITS {
            let files = &sim.machine(unit).1.files;
            let file = domain_file("ldap");
            files
                .write(Path::new(&file), b"[ldap]\n", &Owner::keystone(), 0o640)
                .unwrap();
        }
        sim.model.unrelate(id).unwrap();
        sim.settle();
        for unit in UNITS {
            assert_eq!(domain_options(&sim, unit), Vec::<String>::new(), "{unit}");
            let files = &sim.machine(unit).1.files;
            assert_eq!(files.read(Path::new(&domain_file("ldap"))).unwrap(), None);
        }
        assert!(names(&sim).contains(&"ldap".to_owned()));
    }

    #[test]
    fn a_domain_name_that_cannot_name_its_file_is_refused_by_unit_and_key() {
        let (sim, _, _) = deploy("../../etc/passwd");
        for (n, unit) in UNITS.iter().enumerate() {
            assert_eq!(domain_options(&sim, unit), Vec::<String>::new(), "{unit}");
            assert_eq!(
                sim.status(unit),
                format!(
                    "active: Unit is ready (domain-backend: keystone-ldap/{n}'s domain-name \
                     refused)"
                )
            );
        }
        let keystone = sim.keystone.lock().unwrap();
        assert!(keystone.domains.iter().all(|d| !d.name.contains('/')));
    }

    #[test]
    fn a_domain_is_named_and_a_restart_asked_for_as_the_subordinate_says() {
        let bag = |pairs: &[(&str, &str)]| -> Databag {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(domain(&bag(&[])), Ok(None));
        assert_eq!(
            domain(&bag(&[("domain-name", "corp.ad"), ("restart-nonce", "a1")])),
            Ok(Some(("corp.ad".to_owned(), "a1".to_owned())))
        );
        for hostile in ["a/b", ".hidden", "a b", "a\nb", &"x".repeat(65)] {
            assert_eq!(
                domain(&bag(&[("domain-name", hostile)])),
                Err("domain-name")
            );
        }
        let nonce = bag(&[("domain-name", "ldap"), ("restart-nonce", "1\n2")]);
        assert_eq!(domain(&nonce), Err("restart-nonce"));

        let domains = |pairs: &[(&str, &str)]| Domains {
            nonces: pairs
                .iter()
                .map(|(d, n)| ((*d).to_owned(), (*n).to_owned()))
                .collect(),
            refused: BTreeSet::new(),
            created: BTreeSet::new(),
        };
        let before = domains(&[("a", "1"), ("b", "1")]);
        assert_eq!(restart_reasons(&before, &before), Vec::<String>::new());
        assert_eq!(
            restart_reasons(&before, &domains(&[("a", "2"), ("c", "1")])),
            [
                "the a domain's backend asked for a restart",
                "the c domain's backend came",
                "the b domain's backend went",
            ]
        );
        let mut made = before.clone();
        made.created.insert("a".to_owned());
        assert_eq!(
            restart_reasons(&before, &made),
            ["the a domain was created in Keystone"]
        );
        assert_eq!(restart_reasons(&made, &made), Vec::<String>::new());
    }
}
