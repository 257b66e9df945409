//! The `certificates` relation (interface `tls-certificates`): this unit asks a certificate
//! authority charm for one certificate naming every host it is reached by, and serves Keystone
//! with it once issued (unless ssl_cert and ssl_key name the operator's own).
//!
//! Two generations of providers speak this interface, and one unit bag asks both ways:
//! - classic (vault, the Python charm's peer): `cert_requests` = JSON `{<common name>:
//!   {"sans": [...]}}` and `unit_name` (`keystone_0`); vault answers in its unit bag with
//!   `<unit_name>.processed_requests` = JSON `{<common name>: {"cert", "key"}}`, `ca` and
//!   `chain`. Vault makes the key.
//! - current (tls-certificates v1, e.g. self-signed-certificates, lego, vault-k8s):
//!   `certificate_signing_requests` = JSON `[{"certificate_signing_request": <PEM>, "ca":
//!   false}]`, a request made on this unit with a key that never leaves it; the provider answers
//!   in its application bag with `certificates` = JSON `[{"certificate", "certificate_signing_request",
//!   "ca", "chain"}]`.
//!
//! The names ([`wanted`]): os-public-hostname (else the machine's hostname) as the common
//! name, then every os-*-hostname, the public, internal and admin hosts of the address
//! resolver and each VIP. When they change, a new request goes out and the current certificate
//! is served until the new one comes.
//!
//! What was issued is kept on the machine ([`crate::paths::CERTIFICATE_STATE`], root 0600) and
//! served in every hook (`Hook::new` reads it); Juju is asked only in the relation's own hooks
//! and in install, start, config-changed (which Juju also runs when the unit's addresses
//! change) and upgrade-charm. haproxy serves it (`steps::haproxy`), and takes a renewed one in
//! its running process: a renewal restarts and reloads nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Deserialize;
use serde_json::json;

use crate::addresses::{Addresses, Role};
use crate::certificate::{self, Issued, KeptCertificate};
use crate::config::Config;
use crate::event::{Endpoint, Event, RelationHook};
use crate::host::fs::{DesiredFile, Owner, write_files};
use crate::juju::{Bag, Databag, DatabagChanges, RelationId, UnitName};
use crate::paths;
use crate::secret::Sensitive;
use crate::step::{Condition, Hook, Step};

pub const ENDPOINT: Endpoint = Endpoint::Certificates;

/// What this unit asks to be issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub common_name: String,
    /// Every name (the common name too), sorted, each once.
    pub names: Vec<String>,
}

/// One certificate for every name this unit is reached by (see the module documentation).
pub fn wanted(config: &Config, hosts: &Addresses, hostname: &str) -> Wanted {
    let common_name = config
        .os_public_hostname
        .clone()
        .unwrap_or_else(|| hostname.to_owned());
    let mut names = BTreeSet::from([common_name.clone(), hostname.to_owned()]);
    for role in Role::ALL {
        names.extend(role.hostname(config).map(str::to_owned));
        names.insert(hosts.host(role).to_owned());
    }
    names.extend(config.vips.iter().map(|vip| vip.to_string()));
    names.retain(|name| !name.is_empty());
    Wanted {
        common_name,
        names: names.into_iter().collect(),
    }
}

/// `keystone/0` → `keystone_0`, the classic protocol's name for a unit.
pub fn classic_unit_name(unit: &UnitName) -> String {
    unit.as_str().replace('/', "_")
}

/// This unit's bag: the request both ways.
pub fn request_settings(unit: &UnitName, wanted: &Wanted, csr_pem: &str) -> DatabagChanges {
    let classic = json!({ &wanted.common_name: { "sans": wanted.names } });
    let current = json!([{ "certificate_signing_request": csr_pem.trim(), "ca": false }]);
    DatabagChanges::from([
        ("cert_requests".to_owned(), Some(classic.to_string())),
        ("unit_name".to_owned(), Some(classic_unit_name(unit))),
        (
            "certificate_signing_requests".to_owned(),
            Some(current.to_string()),
        ),
    ])
}

/// A signing request for `wanted` with `key` (a new ECDSA P-256 key when `None`).
pub fn signing_request(
    wanted: &Wanted,
    key: Option<&Sensitive<String>>,
) -> Result<(Sensitive<String>, String)> {
    let key = match key {
        Some(pem) => rcgen::KeyPair::from_pem(pem.expose())
            .context("the kept key of this unit's certificate request is not readable")?,
        None => rcgen::KeyPair::generate().context("cannot generate a private key")?,
    };
    let mut params = rcgen::CertificateParams::new(wanted.names.clone())
        .with_context(|| format!("cannot ask for a certificate for {:?}", wanted.names))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, wanted.common_name.clone());
    let csr = params
        .serialize_request(&key)
        .and_then(|request| request.pem())
        .context("cannot write the certificate signing request")?;
    Ok((Sensitive::new(key.serialize_pem()), csr))
}

/// What a provider sent that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{who} sent {key} that cannot be used: {reason}")]
pub struct ReplyError {
    pub who: String,
    pub key: String,
    pub reason: String,
}

/// The certificate, its chain and CA, from one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub certificate: String,
    pub key: Option<Sensitive<String>>,
    pub ca: Option<String>,
}

#[derive(Deserialize)]
struct ClassicCertificate {
    cert: String,
    key: String,
}

/// The classic reply in a provider unit's bag, for this unit's common name.
pub fn classic_reply(
    bag: &Databag,
    provider: &str,
    unit_name: &str,
    common_name: &str,
) -> Result<Option<Reply>, ReplyError> {
    let key = format!("{unit_name}.processed_requests");
    let Some(text) = bag.get(&key) else {
        return Ok(None);
    };
    let refuse = |key: &str, reason: String| ReplyError {
        who: provider.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let processed: BTreeMap<String, ClassicCertificate> =
        serde_json::from_str(text).map_err(|err| refuse(&key, format!("not JSON ({err})")))?;
    let Some(issued) = processed.get(common_name) else {
        return Ok(None);
    };
    let chain = bag.get("chain").map(String::as_str).unwrap_or_default();
    Ok(Some(Reply {
        certificate: with_chain(&issued.cert, [chain]),
        key: Some(Sensitive::new(issued.key.trim().to_owned() + "\n")),
        ca: bag.get("ca").map(|ca| ca.trim().to_owned() + "\n"),
    }))
}

#[derive(Deserialize)]
struct ProvidedCertificate {
    certificate: String,
    certificate_signing_request: String,
    #[serde(default)]
    ca: Option<String>,
    #[serde(default)]
    chain: Vec<String>,
    #[serde(default)]
    revoked: bool,
}

/// The current protocol's reply in the provider's application bag, for `csr_pem`.
pub fn current_reply(
    bag: &Databag,
    provider: &str,
    csr_pem: &str,
) -> Result<Option<Reply>, ReplyError> {
    let Some(text) = bag.get("certificates") else {
        return Ok(None);
    };
    let provided: Vec<ProvidedCertificate> =
        serde_json::from_str(text).map_err(|err| ReplyError {
            who: format!("{provider} (application)"),
            key: "certificates".to_owned(),
            reason: format!("not a JSON list of certificates ({err})"),
        })?;
    let ours = provided
        .into_iter()
        .find(|p| p.certificate_signing_request.trim() == csr_pem.trim() && !p.revoked);
    Ok(ours.map(|p| {
        let chain = p
            .chain
            .iter()
            .map(String::as_str)
            .filter(|c| c.trim() != p.certificate.trim());
        Reply {
            certificate: with_chain(&p.certificate, chain),
            key: None,
            ca: p.ca.map(|ca| ca.trim().to_owned() + "\n"),
        }
    }))
}

/// The certificate followed by each chain certificate, each ending in one newline.
fn with_chain<'c>(certificate: &str, chain: impl IntoIterator<Item = &'c str>) -> String {
    let mut text = certificate.trim().to_owned() + "\n";
    for extra in chain {
        if !extra.trim().is_empty() {
            text.push_str(extra.trim());
            text.push('\n');
        }
    }
    text
}

/// Checks a reply before anything is written: a certificate Apache can read, with a key.
pub fn issue(
    reply: Reply,
    request_key: Option<&Sensitive<String>>,
    provider: &str,
) -> Result<Issued, ReplyError> {
    let refuse = |reason: String| ReplyError {
        who: provider.to_owned(),
        key: "a certificate".to_owned(),
        reason,
    };
    certificate::names(&reply.certificate).map_err(|err| refuse(err.to_string()))?;
    if let Some(ca) = &reply.ca {
        certificate::names(ca).map_err(|err| refuse(format!("its CA: {err}")))?;
    }
    let key = reply
        .key
        .or_else(|| request_key.cloned())
        .ok_or_else(|| refuse("no private key goes with it".to_owned()))?;
    if !certificate::is_private_key(key.expose()) {
        return Err(refuse("its key is not one PEM private key".to_owned()));
    }
    Ok(Issued {
        certificate: reply.certificate,
        key,
        ca: reply.ca,
        issuer: provider.to_owned(),
    })
}

/// Whether this hook asks Juju (see the module documentation).
fn asks_juju(event: &Event) -> bool {
    matches!(
        event,
        Event::Install | Event::Start | Event::ConfigChanged | Event::UpgradeCharm
    ) || matches!(event, Event::Relation { endpoint, .. } if *endpoint == ENDPOINT)
}

fn keep(hook: &Hook<'_>, kept: &KeptCertificate) -> Result<()> {
    let text = serde_json::to_vec(kept).context("cannot encode the kept certificate")?;
    let file = DesiredFile::new(paths::CERTIFICATE_STATE, text, Owner::root(), 0o600);
    write_files(hook.machine.files.as_ref(), &[], &[file])?;
    Ok(())
}

/// The status while related: waiting for the first certificate, or for a usable one.
fn condition(kept: &KeptCertificate) -> Vec<Condition> {
    match (&kept.problem, &kept.issued) {
        (Some(problem), _) => vec![Condition::Waiting(format!("certificates: {problem}"))],
        (None, None) => vec![Condition::IncompleteRelation("certificates")],
        (None, Some(_)) => Vec::new(),
    }
}

/// The certificates step: [`run`].
pub const STEP: Step = Step::new("certificates", run);

/// Step: see the module documentation.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    // Read by Hook::new, which serves the certificate in every hook.
    let kept = hook.kept_certificate.clone();
    if !asks_juju(hook.event) {
        return Ok(kept.as_ref().map(condition).unwrap_or_default());
    }
    let juju = hook.juju;
    // Juju may still list a relation in its broken hook; it is gone.
    let leaving = match hook.event {
        Event::Relation {
            hook: RelationHook::Broken,
            ..
        } => juju.relation_id(),
        _ => None,
    };
    let relation = juju
        .relation_ids(ENDPOINT.name())
        .context("cannot list the certificates relations")?
        .into_iter()
        .find(|r| Some(r) != leaving.as_ref());
    let Some(relation) = relation else {
        if kept.is_some() {
            hook.machine
                .files
                .remove(Path::new(paths::CERTIFICATE_STATE))
                .context("cannot forget the relation's certificate")?;
            hook.config.forget_issued();
            hook.kept_certificate = None;
        }
        return Ok(Vec::new());
    };
    let mut kept = kept.unwrap_or_default();
    let before = kept.clone();
    let wanted = wanted(&hook.config, &hook.addresses()?, &hook.machine.hostname);
    let request = match (&kept.request, &kept.request_key) {
        (Some(request), Some(_)) if kept.requested_names == wanted.names => request.clone(),
        _ => {
            let (key, request) = signing_request(&wanted, kept.request_key.as_ref())?;
            kept.request_key = Some(key);
            kept.request = Some(request.clone());
            kept.requested_names = wanted.names.clone();
            request
        }
    };
    let own = Bag::Unit(juju.unit().clone());
    juju.relation_data(&relation, &own)
        .context("cannot read this unit's certificates bag")?;
    juju.relation_set(
        &relation,
        false,
        &request_settings(juju.unit(), &wanted, &request),
    )
    .context("cannot ask for this unit's certificate")?;

    match read_reply(hook, &relation, &wanted, &request)? {
        Ok(Some((reply, provider))) => match issue(reply, kept.request_key.as_ref(), &provider) {
            Ok(issued) => {
                kept.issued = Some(issued);
                kept.problem = None;
            }
            Err(err) => kept.problem = Some(err.to_string()),
        },
        Ok(None) => kept.problem = None,
        Err(err) => kept.problem = Some(err.to_string()),
    }
    if let Some(problem) = &kept.problem {
        tracing::warn!("certificates: {problem}; the current certificate stays");
    }
    if kept != before {
        keep(hook, &kept)?;
        hook.kept_certificate = Some(kept.clone());
    }
    if let Some(issued) = &kept.issued {
        hook.config.serve_issued(issued);
    }
    Ok(condition(&kept))
}

/// The provider's reply, classic first (its units' bags, in order), then current.
fn read_reply(
    hook: &Hook<'_>,
    relation: &RelationId,
    wanted: &Wanted,
    request: &str,
) -> Result<Result<Option<(Reply, String)>, ReplyError>> {
    let juju = hook.juju;
    let Some(provider) = juju
        .relation_remote_app(relation)
        .context("cannot tell which application issues certificates")?
    else {
        return Ok(Ok(None));
    };
    let unit_name = classic_unit_name(juju.unit());
    let mut units = juju
        .relation_units(relation)
        .context("cannot list the certificate provider's units")?;
    units.sort();
    for unit in units {
        let bag = juju
            .relation_data(relation, &Bag::Unit(unit.clone()))
            .with_context(|| format!("cannot read {unit}'s certificates bag"))?;
        match classic_reply(&bag, unit.as_str(), &unit_name, &wanted.common_name) {
            Ok(Some(reply)) => return Ok(Ok(Some((reply, provider.to_string())))),
            Ok(None) => {}
            Err(err) => return Ok(Err(err)),
        }
    }
    let bag = juju
        .relation_data(relation, &Bag::App(provider.clone()))
        .with_context(|| format!("cannot read {provider}'s certificates bag"))?;
    Ok(current_reply(&bag, provider.as_str(), request)
        .map(|reply| reply.map(|r| (r, provider.to_string()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fs::Files as _;
    use crate::host::services::ServiceAction;
    use crate::testing::{Sim, config};
    use juju_sim_fixtures::scripted::{CertificateAuthority, CertificateProtocol};
    use serde_json::{Value, json};

    fn hosts(public: &str, internal: &str, admin: &str) -> Addresses {
        Addresses {
            public: public.into(),
            internal: internal.into(),
            admin: admin.into(),
        }
    }

    #[test]
    fn one_certificate_names_every_host_the_unit_is_reached_by() {
        let named = config(json!({
            "os-public-hostname": "keystone.example.com",
            "os-admin-hostname": "keystone-admin.example.com",
            "vip": "10.0.0.100",
        }));
        let want = wanted(
            &named,
            &hosts(
                "keystone.example.com",
                "10.0.0.100",
                "keystone-admin.example.com",
            ),
            "juju-a1-0",
        );
        assert_eq!(want.common_name, "keystone.example.com");
        assert_eq!(
            want.names,
            [
                "10.0.0.100",
                "juju-a1-0",
                "keystone-admin.example.com",
                "keystone.example.com"
            ]
        );
        let plain = wanted(
            &config(json!({})),
            &hosts("10.0.0.10", "10.0.1.10", "10.0.1.10"),
            "juju-a1-0",
        );
        assert_eq!(plain.common_name, "juju-a1-0");
        assert_eq!(plain.names, ["10.0.0.10", "10.0.1.10", "juju-a1-0"]);
    }

    #[test]
    fn the_request_asks_both_ways_and_the_signing_request_names_everything() {
        let want = Wanted {
            common_name: "keystone.example.com".into(),
            names: vec!["10.0.0.10".into(), "keystone.example.com".into()],
        };
        let (key, csr) = signing_request(&want, None).unwrap();
        assert!(certificate::is_private_key(key.expose()));
        let unit = UnitName::parse("keystone/0").unwrap();
        let bag = request_settings(&unit, &want, &csr);
        assert_eq!(bag["unit_name"].as_deref(), Some("keystone_0"));
        let classic: Value =
            serde_json::from_str(bag["cert_requests"].as_deref().unwrap()).unwrap();
        assert_eq!(
            classic,
            json!({"keystone.example.com": {"sans": ["10.0.0.10", "keystone.example.com"]}})
        );
        let current: Value =
            serde_json::from_str(bag["certificate_signing_requests"].as_deref().unwrap()).unwrap();
        assert_eq!(current[0]["ca"], false);
        // The same key signs a new request when the names change.
        let (again, _) = signing_request(&want, Some(&key)).unwrap();
        assert_eq!(again.expose(), key.expose());
    }

    #[test]
    fn replies_that_cannot_be_served_are_refused_with_who_sent_what() {
        let bag = Databag::from([(
            "keystone_0.processed_requests".to_owned(),
            "{not json".to_owned(),
        )]);
        let err = classic_reply(&bag, "vault/0", "keystone_0", "cn").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("vault/0 sent keystone_0.processed_requests"),
            "{err}"
        );
        // Another unit's reply, or none yet: nothing.
        let other = Databag::from([(
            "keystone_1.processed_requests".to_owned(),
            json!({"cn": {"cert": "x", "key": "y"}}).to_string(),
        )]);
        assert_eq!(
            classic_reply(&other, "vault/0", "keystone_0", "cn"),
            Ok(None)
        );
        // A certificate that is not one.
        let reply = Reply {
            certificate: "-----BEGIN CERTIFICATE-----\nnot\n-----END CERTIFICATE-----\n".into(),
            key: Some(Sensitive::new(
                rcgen::KeyPair::generate().unwrap().serialize_pem(),
            )),
            ca: None,
        };
        let err = issue(reply, None, "vault").unwrap_err();
        assert!(
            err.to_string().contains("vault sent a certificate"),
            "{err}"
        );
        // A current reply for another request, or revoked: nothing.
        let csr = "-----BEGIN CERTIFICATE REQUEST-----\nours\n-----END CERTIFICATE REQUEST-----";
        let provided = Databag::from([(
            "certificates".to_owned(),
            json!([
                {"certificate": "c", "certificate_signing_request": "theirs", "ca": "a"},
                {"certificate": "c", "certificate_signing_request": csr, "ca": "a", "revoked": true},
            ])
            .to_string(),
        )]);
        assert_eq!(current_reply(&provided, "ca", csr), Ok(None));
    }

    fn tls_sim(
        protocol: CertificateProtocol,
    ) -> (Sim, u32, std::sync::Arc<std::sync::Mutex<u32>>, String) {
        let mut sim = Sim::ready(1);
        let authority = CertificateAuthority::new("vault", protocol).unwrap();
        let renewals = std::sync::Arc::clone(&authority.renewals);
        let ca = authority.ca_pem();
        sim.model
            .deploy_scripted("vault", Box::new(authority), 1)
            .unwrap();
        let id = sim
            .model
            .relate("keystone:certificates", "vault:certificates")
            .unwrap();
        sim.settle();
        (sim, id, renewals, ca)
    }

    fn read(sim: &Sim, path: &str) -> Option<String> {
        sim.machine("keystone/0")
            .1
            .files
            .read(Path::new(path))
            .unwrap()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The certificate (with its chain) and the key haproxy serves.
    fn served(sim: &Sim) -> Option<(String, String)> {
        let pem = read(sim, paths::HAPROXY_TLS_PEM)?;
        let key = pem.find("-----BEGIN PRIVATE KEY-----")?;
        Some((pem[..key].trim_end().to_owned(), pem[key..].to_owned()))
    }

    #[test]
    fn both_protocols_issue_a_certificate_keystone_serves_and_consumers_are_told() {
        for protocol in [CertificateProtocol::Classic, CertificateProtocol::Current] {
            let (mut sim, _, _, ca) = tls_sim(protocol);
            assert_eq!(
                sim.status("keystone/0"),
                "active: Unit is ready",
                "{protocol:?}"
            );
            let (served_cert, key) = served(&sim).expect("the certificate is installed");
            let names = certificate::names(&served_cert).unwrap();
            assert_eq!(names.common_name.as_deref(), Some("juju-machine-0"));
            assert_eq!(names.dns_names, ["juju-machine-0"], "{protocol:?}");
            let address = sim.model.unit_address("keystone/0").unwrap();
            assert_eq!(
                names.ip_addresses,
                [address.parse::<std::net::IpAddr>().unwrap()]
            );
            assert_eq!(
                read(&sim, paths::HAPROXY_TLS_CA).as_deref(),
                Some(ca.as_str())
            );
            assert_eq!(read(&sim, paths::SYSTEM_CA).as_deref(), Some(ca.as_str()));
            // haproxy serves TLS; Apache, on loopback, tells Keystone requests came over https.
            let haproxy = read(&sim, paths::HAPROXY_CFG).unwrap();
            assert!(
                haproxy.contains(&format!(":5000 ssl crt {}", paths::HAPROXY_TLS_PEM)),
                "{protocol:?}: {haproxy}"
            );
            let vhost = read(&sim, paths::VHOST_FILE).unwrap();
            assert!(vhost.contains("SetEnv HTTPS on"), "{protocol:?}: {vhost}");
            assert!(!vhost.contains("SSLEngine"), "{protocol:?}: {vhost}");
            // The key never reaches a log.
            let body = key.lines().nth(1).unwrap().to_owned();
            for level in ["DEBUG", "INFO", "WARNING", "ERROR"] {
                assert!(
                    sim.logs("keystone/0", level)
                        .iter()
                        .all(|l| !l.contains(&body))
                );
            }
            // Keystone's endpoints move to https.
            let catalog = format!("{:?}", sim.keystone.lock().unwrap());
            assert!(catalog.contains("https://"), "{protocol:?}");
            // A hook that does not look at the relation still serves the certificate.
            assert!(sim.run("keystone/0", "update-status"));
            assert_eq!(
                sim.tools_called("keystone/0"),
                crate::testing::STEADY_UPDATE_STATUS
            );
            assert_eq!(served(&sim).map(|(cert, _)| cert), Some(served_cert));
        }
    }

    #[test]
    fn until_a_certificate_comes_keystone_serves_http_and_says_what_it_waits_for() {
        let mut sim = Sim::ready(1);
        // A provider that has not answered yet.
        let silent = juju_sim::scripted::Inert(
            "name: vault\nprovides:\n  certificates:\n    interface: tls-certificates\n".into(),
        );
        sim.model
            .deploy_scripted("vault", Box::new(silent), 1)
            .unwrap();
        sim.model
            .relate("keystone:certificates", "vault:certificates")
            .unwrap();
        sim.settle();
        assert_eq!(
            sim.status("keystone/0"),
            "waiting: Incomplete relations: certificates"
        );
        assert!(
            !read(&sim, paths::HAPROXY_CFG)
                .unwrap()
                .contains(" ssl crt ")
        );
        assert!(!read(&sim, paths::VHOST_FILE).unwrap().contains("HTTPS"));
        // Said again by hooks that do not ask Juju.
        assert!(sim.run("keystone/0", "update-status"));
        assert_eq!(
            sim.status("keystone/0"),
            "waiting: Incomplete relations: certificates"
        );
    }

    #[test]
    fn a_renewal_reaches_the_running_haproxy_alone_and_removing_the_relation_goes_back_to_http() {
        let (mut sim, id, renewals, _) = tls_sim(CertificateProtocol::Current);
        let (first, _) = served(&sim).unwrap();
        let services = std::rc::Rc::clone(&sim.machine("keystone/0").1.services);
        let before = services.actions();
        *renewals.lock().unwrap() += 1;
        sim.model.queue_hook("vault/0", "update-status");
        sim.settle();
        let (renewed, _) = served(&sim).unwrap();
        assert_ne!(renewed, first, "the renewed certificate is installed");
        // What started, stopped, restarted, reloaded or replaced something (enabling what is
        // enabled changes nothing).
        let during: Vec<ServiceAction> = services.actions()[before.len()..]
            .iter()
            .filter(|action| {
                !matches!(
                    action,
                    ServiceAction::EnableModule(_) | ServiceAction::EnableSite(_)
                )
            })
            .cloned()
            .collect();
        assert_eq!(
            during,
            [ServiceAction::ReplaceHaproxyCertificate(
                paths::HAPROXY_TLS_PEM.to_owned()
            )],
            "a renewal restarts and reloads nothing"
        );

        sim.model.unrelate(id).unwrap();
        sim.settle();
        assert!(read(&sim, paths::CERTIFICATE_STATE).is_none());
        assert!(served(&sim).is_none(), "no copy of the key stays behind");
        assert!(
            !read(&sim, paths::HAPROXY_CFG)
                .unwrap()
                .contains(" ssl crt ")
        );
        assert!(!read(&sim, paths::VHOST_FILE).unwrap().contains("HTTPS"));
        assert_eq!(sim.status("keystone/0"), "active: Unit is ready");
    }

    #[test]
    fn the_operators_certificate_wins_over_the_relations() {
        let (mut sim, _, _, _) = tls_sim(CertificateProtocol::Classic);
        let names = vec!["operator.example.com".to_owned()];
        let own = rcgen::generate_simple_self_signed(names).unwrap();
        let b64 =
            |text: String| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text);
        sim.model
            .set_config(
                "keystone",
                json!({"ssl_cert": b64(own.cert.pem()), "ssl_key": b64(own.signing_key.serialize_pem())})
                    .as_object()
                    .cloned()
                    .unwrap(),
            )
            .unwrap();
        sim.settle();
        assert_eq!(
            served(&sim).map(|(cert, _)| cert),
            Some(own.cert.pem().trim_end().to_owned())
        );
    }
}
