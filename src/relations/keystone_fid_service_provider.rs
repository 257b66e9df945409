//! The `keystone-fid-service-provider` relation (requires, container-scoped): a federated
//! identity subordinate (keystone-openidc, keystone-saml-mellon, keystone-kerberos) that
//! authenticates users in Apache, in front of Keystone's federation endpoints.
//!
//! This unit tells each subordinate where Keystone's public endpoint is: `hostname`, `port` and
//! `tls-enabled`, JSON-encoded as the reactive interface reads them. The subordinate writes its
//! Apache files, enables its Apache module, and sends `protocol-name`, `remote-id-attribute` and
//! `restart-nonce`, JSON-encoded too.
//!
//! With a subordinate related, the vhost includes the subordinates' Apache files (where each
//! writes them) and serves Keystone at `/krb` too, for Kerberos. Each protocol joins `[auth]
//! methods`, and `external` leaves it, as the Python charm has it: a `REMOTE_USER` that Apache
//! sets is then never read as a local user's name. `[<protocol>] remote_id_attribute` names
//! the variable that holds the identity provider's id. Keystone restarts when a subordinate
//! changes its nonce, and when one goes.
//!
//! A protocol is one Keystone has an authentication plugin for ([`PROTOCOLS`]); any other would
//! stop Keystone from loading its authentication methods. Such a protocol, or a value that
//! cannot go into keystone.conf, is refused, and the status names the unit and the key.
//!
//! What the subordinates sent, and what this unit told them, is kept on the machine: only this
//! relation's hooks, install and upgrade-charm read the relation, and only they,
//! config-changed and the certificates hooks tell it where Keystone is.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::event::{Endpoint, Event};
use crate::facts::FactName;
use crate::juju::{Databag, DatabagChanges, RelationId};
use crate::relations::consumers::Location;
use crate::relations::kept;
use crate::render::fragments::{ConfFragment, Fragments, VhostFragment};
use crate::status::Condition;
use crate::step::{Hook, Step};

pub const ENDPOINT: Endpoint = Endpoint::KeystoneFidServiceProvider;

/// Where what the subordinates sent, and what this unit told them, is kept.
const KEPT: &str = "/var/lib/keystone-charm/federation.json";
const WHAT: &str = "federated identity providers";

/// The federation protocols Keystone loads an authentication plugin for
/// (`keystone.auth.<protocol>`): the mapped ones, and Kerberos.
pub const PROTOCOLS: [&str; 5] = ["openid", "saml2", "mapped", "x509", "kerberos"];

/// The subordinates' Apache files, where each writes them: keystone-saml-mellon's,
/// keystone-openidc's and keystone-kerberos'.
pub const APACHE_FILES: [&str; 3] = [
    "/etc/apache2/mellon*/sp-location*.conf",
    "/etc/apache2/openidc*/openidc-*.conf",
    "/etc/apache2/kerberos*/apache-kerberos.conf",
];

/// Where Keystone is served too, for a Kerberos module to authenticate.
pub const KERBEROS_PATH: &str = "/krb";

/// The keystone-fid-service-provider step: [`run`].
pub const STEP: Step =
    Step::new("keystone-fid-service-provider", run).writes(&[FactName::Fragments]);

/// What the subordinates said, relation by relation, and where this unit told them Keystone is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Federation {
    /// Each relation's subordinate, by relation id.
    pub providers: BTreeMap<RelationId, Provider>,
    /// What every relation in `providers` was told last.
    pub told: Option<Told>,
    /// `<unit>'s <key>`.
    pub refused: BTreeSet<String>,
}

/// One subordinate unit (the relation is container-scoped: one per relation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub unit: String,
    /// None until it sent a usable `protocol-name`.
    pub protocol: Option<Protocol>,
    /// `restart-nonce` as sent; empty until it sent one.
    pub nonce: String,
}

/// A federation protocol, and the variable that holds the identity provider's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protocol {
    pub name: String,
    pub remote_id_attribute: Option<String>,
}

/// Where Keystone's public endpoint is, as this unit tells the subordinates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    pub hostname: String,
    pub port: u16,
    pub tls: bool,
}

impl Told {
    /// This unit's public host (os-public-hostname, else the VIP, else its address), the
    /// service port, and whether Keystone serves TLS.
    pub fn of(location: &Location) -> Told {
        Told {
            hostname: location.public_host.clone(),
            port: location.service_port,
            tls: location.protocol == "https",
        }
    }

    /// The unit bag's keys, JSON-encoded.
    pub fn changes(&self) -> DatabagChanges {
        DatabagChanges::from([
            (
                "hostname".into(),
                Some(serde_json::Value::from(self.hostname.as_str()).to_string()),
            ),
            ("port".into(), Some(self.port.to_string())),
            ("tls-enabled".into(), Some(self.tls.to_string())),
        ])
    }
}

/// Step: tells the subordinates where Keystone is, when that can have changed; each protocol's
/// options and the subordinates' Apache files become fragments; a restart when one asks.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let files = hook.machine.files.as_ref();
    let before: Federation = kept::read(files, KEPT, WHAT)?;
    let mut now = match kept::reads_juju(hook.event, ENDPOINT) {
        true => from_juju(hook)?,
        false => before.clone(),
    };
    now.told = before.told.clone();
    if !now.providers.is_empty() && tells(hook.event) {
        let told = Told::of(&Location::of(&hook.config, Some(&hook.addresses()?)));
        let untold = now
            .providers
            .keys()
            .filter(|r| before.told.as_ref() != Some(&told) || !before.providers.contains_key(*r));
        for relation in untold {
            hook.juju
                .relation_set(relation, false, &told.changes())
                .with_context(|| format!("cannot tell {relation} where Keystone is"))?;
        }
        now.told = Some(told);
    }
    if now != before {
        kept::write(files, KEPT, WHAT, &now)?;
    }
    hook.facts
        .add_fragments(fragments(&now, restart_reasons(&before, &now)));
    Ok(kept::refused_notes(ENDPOINT, &now.refused))
}

/// The hooks in which where Keystone is can have changed for a subordinate: when it comes, its
/// own; when the configuration or the certificate moves it, config-changed and certificates'.
fn tells(event: &Event) -> bool {
    kept::reads_juju(event, ENDPOINT)
        || *event == Event::ConfigChanged
        || matches!(
            event,
            Event::Relation {
                endpoint: Endpoint::Certificates,
                ..
            }
        )
}

/// The keystone.conf options and vhost lines, with a subordinate related.
pub fn fragments(federation: &Federation, restart: Vec<String>) -> Fragments {
    if federation.providers.is_empty() {
        return Fragments {
            restart,
            ..Fragments::default()
        };
    }
    let mut conf = Vec::new();
    let mut named = BTreeSet::new();
    for protocol in federation
        .providers
        .values()
        .filter_map(|p| p.protocol.as_ref())
    {
        if !named.insert(protocol.name.as_str()) {
            continue;
        }
        conf.push(ConfFragment::list_item("auth", "methods", &protocol.name));
        if let Some(attribute) = &protocol.remote_id_attribute {
            conf.push(ConfFragment::set(
                &protocol.name,
                "remote_id_attribute",
                attribute,
            ));
        }
    }
    if !named.is_empty() {
        conf.push(ConfFragment::list_removal("auth", "methods", "external"));
    }
    let mut vhost: Vec<VhostFragment> = APACHE_FILES
        .iter()
        .map(|pattern| VhostFragment::IncludeOptional((*pattern).to_owned()))
        .collect();
    vhost.push(VhostFragment::KeystoneAlias(KERBEROS_PATH.to_owned()));
    Fragments {
        conf,
        vhost,
        restart,
    }
}

/// Why Keystone must restart though its files may not have changed: a subordinate asked (its
/// Apache files changed), or went.
pub fn restart_reasons(before: &Federation, now: &Federation) -> Vec<String> {
    let mut reasons = Vec::new();
    for (relation, provider) in &now.providers {
        let old = before.providers.get(relation).map(|p| p.nonce.as_str());
        if !provider.nonce.is_empty() && old != Some(provider.nonce.as_str()) {
            reasons.push(format!("{} asked for a restart", provider.unit));
        }
    }
    for (relation, provider) in &before.providers {
        if !now.providers.contains_key(relation) {
            reasons.push(format!("{} went", provider.unit));
        }
    }
    reasons
}

/// Every subordinate unit's protocol, from Juju; a protocol two subordinates give with
/// different attributes is refused for the second.
fn from_juju(hook: &Hook<'_>) -> Result<Federation> {
    let mut federation = Federation::default();
    for (relation, unit, bag) in kept::remote_bags(hook, ENDPOINT)? {
        let mut provider = Provider {
            unit: unit.to_string(),
            ..Provider::default()
        };
        match provider_of(&bag) {
            Ok((protocol, nonce)) => {
                provider.nonce = nonce;
                let clash = protocol.as_ref().and_then(|mine| {
                    federation
                        .providers
                        .values()
                        .filter_map(|p| p.protocol.as_ref().map(|theirs| (&p.unit, theirs)))
                        .find(|(_, theirs)| theirs.name == mine.name && *theirs != mine)
                });
                match clash {
                    Some((other, _)) => {
                        let name = protocol.as_ref().map_or("", |p| p.name.as_str());
                        tracing::error!(
                            "{relation}: {unit} gives protocol {name} another \
                             remote-id-attribute than {other} does; {unit}'s is ignored"
                        );
                        federation
                            .refused
                            .insert(format!("{unit}'s remote-id-attribute"));
                    }
                    None => provider.protocol = protocol,
                }
            }
            Err(key) => {
                tracing::error!(
                    "{relation}: {unit}'s {key} is refused; its protocol is not used ({})",
                    refusal(key)
                );
                federation.refused.insert(format!("{unit}'s {key}"));
            }
        }
        federation.providers.insert(relation, provider);
    }
    Ok(federation)
}

fn refusal(key: &str) -> String {
    match key {
        "protocol-name" => format!(
            "a JSON string naming one of Keystone's federation protocols: {}",
            PROTOCOLS.join(", ")
        ),
        "remote-id-attribute" => {
            "a JSON string naming a variable: letters, digits, _, - and .".to_owned()
        }
        _ => "one line of at most 255 characters".to_owned(),
    }
}

/// A JSON-encoded string, as the reactive interface sends every value.
fn json_string(
    bag: &Databag,
    key: &'static str,
) -> std::result::Result<Option<String>, &'static str> {
    match bag.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::String(value)) => Ok(Some(value)),
            _ => Err(key),
        },
    }
}

/// A subordinate unit's protocol (None until it sent one) and restart nonce; the key that is
/// unusable, if one is.
pub fn provider_of(bag: &Databag) -> std::result::Result<(Option<Protocol>, String), &'static str> {
    let nonce = bag.get("restart-nonce").cloned().unwrap_or_default();
    if nonce.len() > 255 || nonce.chars().any(char::is_control) {
        return Err("restart-nonce");
    }
    let Some(name) = json_string(bag, "protocol-name")? else {
        return Ok((None, nonce));
    };
    if !PROTOCOLS.contains(&name.as_str()) {
        return Err("protocol-name");
    }
    let attribute = json_string(bag, "remote-id-attribute")?;
    let variable_char = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    if let Some(attribute) = &attribute
        && (attribute.is_empty() || attribute.len() > 128 || !attribute.chars().all(variable_char))
    {
        return Err("remote-id-attribute");
    }
    let protocol = Protocol {
        name,
        remote_id_attribute: attribute,
    };
    Ok((Some(protocol), nonce))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use juju_sim_fixtures::scripted::KeystoneOpenidc;
    use serde_json::json;

    use super::*;
    use crate::host::services::{Service, ServiceAction};
    use crate::testing::Sim;

    const UNITS: [&str; 2] = ["keystone/0", "keystone/1"];

    type Told = Arc<Mutex<BTreeMap<String, BTreeMap<String, String>>>>;

    fn deploy(openidc: KeystoneOpenidc) -> (Sim, u32, Arc<Mutex<u32>>, Told) {
        let mut sim = Sim::ready(2);
        let (nonce, told) = (Arc::clone(&openidc.nonce), Arc::clone(&openidc.told));
        sim.model
            .deploy_scripted("keystone-openidc", Box::new(openidc), 2)
            .unwrap();
        let id = sim.model.relate("keystone", "keystone-openidc").unwrap();
        sim.settle();
        (sim, id, nonce, told)
    }

    fn restarts(sim: &Sim, unit: &str) -> usize {
        sim.machine(unit)
            .1
            .services
            .count(&ServiceAction::Restart(Service::Apache2))
    }

    fn conf_lines(sim: &Sim, unit: &str, keys: &[&str]) -> Vec<String> {
        sim.file(unit, crate::paths::KEYSTONE_CONF)
            .lines()
            .filter(|l| keys.iter().any(|k| l.starts_with(&format!("{k} ="))))
            .map(str::to_owned)
            .collect()
    }

    fn vhost_federation_lines(sim: &Sim, unit: &str) -> Vec<String> {
        sim.file(unit, crate::paths::VHOST_FILE)
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("IncludeOptional") || l.starts_with("WSGIScriptAlias /krb"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_related_provider_is_told_where_keystone_is_and_federates_every_unit_until_it_goes() {
        let (mut sim, id, nonce, told) = deploy(KeystoneOpenidc::new("idp1"));
        let federated = [
            "methods = password,token,oauth1,openid,totp,application_credential",
            "remote_id_attribute = HTTP_OIDC_ISS",
        ];
        for (n, unit) in UNITS.iter().enumerate() {
            assert_eq!(
                conf_lines(&sim, unit, &["methods", "remote_id_attribute"]),
                federated,
                "{unit}"
            );
            let includes = vhost_federation_lines(&sim, unit);
            for pattern in APACHE_FILES {
                let line = format!("IncludeOptional {pattern}");
                // Both virtual hosts, public and admin.
                assert_eq!(includes.iter().filter(|l| **l == line).count(), 2, "{unit}");
            }
            assert_eq!(
                includes
                    .iter()
                    .filter(|l| l.starts_with("WSGIScriptAlias /krb "))
                    .count(),
                2
            );
            let address = sim.model.unit_address(unit).unwrap();
            let bag = told.lock().unwrap()[&format!("keystone-openidc/{n}")].clone();
            assert_eq!(bag["hostname"], json!(address).to_string(), "{unit}");
            assert_eq!(bag["port"], "5000");
            assert_eq!(bag["tls-enabled"], "false");
            assert_eq!(sim.status(unit), "active: Unit is ready", "{unit}");
        }

        // Nothing changed: no restart, nothing told.
        let before: Vec<usize> = UNITS.iter().map(|u| restarts(&sim, u)).collect();
        for unit in UNITS {
            for hook in ["update-status", "config-changed"] {
                assert!(sim.run(unit, hook));
                let calls = sim.tools_called(unit);
                assert!(
                    !calls.iter().any(|c| c == "relation-set"),
                    "{hook}: {calls:?}"
                );
            }
        }
        let after: Vec<usize> = UNITS.iter().map(|u| restarts(&sim, u)).collect();
        assert_eq!(after, before);

        // A new nonce restarts every unit once.
        *nonce.lock().unwrap() += 1;
        for unit in sim.model.units("keystone-openidc") {
            sim.model.queue_hook(&unit, "update-status");
        }
        sim.settle();
        let restarted: Vec<usize> = UNITS.iter().map(|u| restarts(&sim, u)).collect();
        assert_eq!(restarted, before.iter().map(|n| n + 1).collect::<Vec<_>>());

        // A public hostname moves Keystone: every subordinate is told, once.
        let hostname = serde_json::Map::from_iter([(
            "os-public-hostname".to_owned(),
            json!("keystone.example.com"),
        )]);
        sim.model.set_config("keystone", hostname).unwrap();
        sim.settle();
        for n in 0..2 {
            let bag = told.lock().unwrap()[&format!("keystone-openidc/{n}")].clone();
            assert_eq!(bag["hostname"], "\"keystone.example.com\"");
        }

        // The relation goes: the protocol, the includes and the alias with it.
        sim.model.unrelate(id).unwrap();
        sim.settle();
        for unit in UNITS {
            assert_eq!(
                conf_lines(&sim, unit, &["methods", "remote_id_attribute"]),
                ["methods = external,password,token,oauth1,openid,totp,application_credential"]
            );
            assert_eq!(vhost_federation_lines(&sim, unit), Vec::<String>::new());
        }
    }

    #[test]
    fn a_protocol_keystone_cannot_load_is_refused_by_unit_and_key() {
        let mut openidc = KeystoneOpenidc::new("idp1");
        openidc.protocol = "database".to_owned();
        let (sim, _, _, _) = deploy(openidc);
        for (n, unit) in UNITS.iter().enumerate() {
            assert_eq!(
                conf_lines(&sim, unit, &["methods", "remote_id_attribute"]),
                ["methods = external,password,token,oauth1,openid,totp,application_credential"]
            );
            assert_eq!(
                sim.status(unit),
                format!(
                    "active: Unit is ready (keystone-fid-service-provider: keystone-openidc/{n}'s \
                     protocol-name refused)"
                )
            );
        }
    }

    #[test]
    fn a_subordinates_values_are_json_strings_that_stay_names() {
        let bag = |pairs: &[(&str, &str)]| -> Databag {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(provider_of(&bag(&[])), Ok((None, String::new())));
        let saml = bag(&[
            ("protocol-name", "\"saml2\""),
            ("remote-id-attribute", "\"MELLON_IDP\""),
            ("restart-nonce", "\"4f1c\""),
        ]);
        let expected = Protocol {
            name: "saml2".to_owned(),
            remote_id_attribute: Some("MELLON_IDP".to_owned()),
        };
        assert_eq!(
            provider_of(&saml),
            Ok((Some(expected), "\"4f1c\"".to_owned()))
        );
        for (key, hostile) in [
            ("protocol-name", "saml2"),
            ("protocol-name", "\"password\""),
            ("protocol-name", "\"openid]\\n[database\""),
            ("protocol-name", "7"),
            ("remote-id-attribute", "\"HTTP_OIDC_ISS\\n[database]\""),
            ("remote-id-attribute", "\"a b\""),
            ("remote-id-attribute", "\"\""),
            ("restart-nonce", "1\n2"),
        ] {
            let mut given = bag(&[("protocol-name", "\"openid\"")]);
            given.insert(key.to_owned(), hostile.to_owned());
            assert_eq!(provider_of(&given), Err(key), "{key}: {hostile:?}");
        }

        let provider = |unit: &str, name: &str, nonce: &str| Provider {
            unit: unit.to_owned(),
            protocol: Some(Protocol {
                name: name.to_owned(),
                remote_id_attribute: None,
            }),
            nonce: nonce.to_owned(),
        };
        let relation = |n: u32| RelationId::parse(&format!("{ENDPOINT}:{n}")).unwrap();
        let federation = |providers: Vec<(u32, Provider)>| Federation {
            providers: providers
                .into_iter()
                .map(|(n, p)| (relation(n), p))
                .collect(),
            ..Federation::default()
        };
        let before = federation(vec![(1, provider("oidc/0", "openid", "\"1\""))]);
        assert_eq!(restart_reasons(&before, &before), Vec::<String>::new());
        let now = federation(vec![
            (1, provider("oidc/0", "openid", "\"2\"")),
            (2, provider("mellon/0", "saml2", "")),
        ]);
        assert_eq!(
            restart_reasons(&before, &now),
            ["oidc/0 asked for a restart"]
        );
        assert_eq!(
            restart_reasons(&now, &Federation::default()),
            ["oidc/0 went", "mellon/0 went"]
        );
        // Two providers of one protocol name it once.
        let twice = federation(vec![
            (1, provider("a/0", "openid", "")),
            (2, provider("b/0", "openid", "")),
        ]);
        let methods: Vec<_> = fragments(&twice, Vec::new())
            .conf
            .into_iter()
            .filter(|f| f.key == "methods")
            .map(|f| (f.value, f.kind))
            .collect();
        assert_eq!(
            methods,
            [
                ("openid".to_owned(), crate::render::ConfKind::ListItem),
                ("external".to_owned(), crate::render::ConfKind::ListRemoval)
            ]
        );
    }
}
