//! Every hook name derivable from metadata.yaml reaches a handler, or the documented
//! "not handled" path (logged, exit 0).

use std::collections::BTreeSet;

use keystone_charm::event::{Endpoint, Event};
use keystone_charm::hook::{Route, route};

/// Hooks derivable from metadata.yaml that the charm deliberately does not handle. Each entry
/// says why. (Empty today: metadata.yaml declares no storage, containers or legacy hooks.)
const NOT_HANDLED: [&str; 0] = [];

fn metadata() -> serde_norway::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/metadata.yaml");
    let text = std::fs::read_to_string(path).expect("read metadata.yaml");
    serde_norway::from_str(&text).expect("metadata.yaml is YAML")
}

fn names_under(meta: &serde_norway::Value, key: &str) -> Vec<String> {
    meta.get(key)
        .and_then(|v| v.as_mapping())
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The hook names Juju can send a unit of this charm.
fn hook_names(meta: &serde_norway::Value) -> Vec<String> {
    let mut names: Vec<String> = [
        "install",
        "start",
        "stop",
        "remove",
        "config-changed",
        "upgrade-charm",
        "update-status",
        "leader-elected",
        "leader-settings-changed",
        // A machine charm's, around `juju upgrade-machine` (upgrade-series before Juju 3).
        "pre-series-upgrade",
        "post-series-upgrade",
        "secret-changed",
        "secret-rotate",
        "secret-remove",
        "secret-expired",
    ]
    .map(str::to_owned)
    .to_vec();
    for role in ["provides", "requires", "peers"] {
        for endpoint in names_under(meta, role) {
            for kind in ["created", "joined", "changed", "departed", "broken"] {
                names.push(format!("{endpoint}-relation-{kind}"));
            }
        }
    }
    for storage in names_under(meta, "storage") {
        names.push(format!("{storage}-storage-attached"));
        names.push(format!("{storage}-storage-detaching"));
    }
    for container in names_under(meta, "containers") {
        names.push(format!("{container}-pebble-ready"));
    }
    names
}

#[test]
fn every_metadata_hook_is_handled_or_documented() {
    let meta = metadata();
    let names = hook_names(&meta);
    assert!(
        names.len() > 13,
        "no relation endpoints found in metadata.yaml"
    );
    for name in &names {
        let event = Event::from_hook_name(name);
        let handled = route(&event) != Route::NotHandled;
        assert!(
            handled || NOT_HANDLED.contains(&name.as_str()),
            "{name} maps to {event:?}, which is not handled and not documented as such"
        );
        assert_eq!(event.name(), *name);
    }
}

#[test]
fn the_endpoint_enum_matches_metadata() {
    let meta = metadata();
    let declared: BTreeSet<String> = ["provides", "requires", "peers"]
        .iter()
        .flat_map(|role| names_under(&meta, role))
        .collect();
    let known: BTreeSet<String> = Endpoint::ALL.iter().map(|e| e.name().to_owned()).collect();
    assert_eq!(declared, known);
}

#[test]
fn the_cli_hook_list_is_exactly_the_metadata_hooks() {
    let meta = metadata();
    let from_metadata: BTreeSet<String> = hook_names(&meta)
        .into_iter()
        .filter(|n| !NOT_HANDLED.contains(&n.as_str()))
        .collect();
    let handled: BTreeSet<String> = Event::handled_hook_names().into_iter().collect();
    assert_eq!(from_metadata, handled);
}

/// The Python charm's endpoints (openstack/charm-keystone, metadata.yaml, master of 2025): role,
/// name, interface and whether it is container-scoped. A bundle of it relates these, and
/// `juju refresh --switch` keeps a relation only where the new charm declares the endpoint with
/// the same interface.
const PYTHON_CHARM_ENDPOINTS: [(&str, &str, &str, bool); 13] = [
    (
        "provides",
        "nrpe-external-master",
        "nrpe-external-master",
        true,
    ),
    ("provides", "identity-service", "keystone", false),
    (
        "provides",
        "identity-notifications",
        "keystone-notifications",
        false,
    ),
    ("provides", "identity-admin", "keystone-admin", false),
    (
        "provides",
        "identity-credentials",
        "keystone-credentials",
        false,
    ),
    ("requires", "shared-db", "mysql-shared", false),
    ("requires", "ha", "hacluster", true),
    (
        "requires",
        "domain-backend",
        "keystone-domain-backend",
        true,
    ),
    (
        "requires",
        "keystone-fid-service-provider",
        "keystone-fid-service-provider",
        true,
    ),
    (
        "requires",
        "websso-trusted-dashboard",
        "websso-trusted-dashboard",
        false,
    ),
    ("requires", "certificates", "tls-certificates", false),
    (
        "requires",
        "keystone-middleware",
        "keystone-middleware",
        true,
    ),
    ("peers", "cluster", "keystone-ha", false),
];

#[test]
fn every_endpoint_and_resource_of_the_python_charm_is_declared_alike() {
    let meta = metadata();
    for (role, name, interface, container) in PYTHON_CHARM_ENDPOINTS {
        let endpoint = meta
            .get(role)
            .and_then(|endpoints| endpoints.get(name))
            .unwrap_or_else(|| panic!("{role}: {name} is not declared"));
        let field = |key: &str| endpoint.get(key).and_then(|v| v.as_str());
        assert_eq!(field("interface"), Some(interface), "{name}");
        let scope = if container { Some("container") } else { None };
        assert_eq!(field("scope"), scope, "{name}");
    }
    let resource = meta
        .get("resources")
        .and_then(|resources| resources.get("policyd-override"))
        .expect("the policyd-override resource");
    let field = |key: &str| resource.get(key).and_then(|v| v.as_str());
    assert_eq!(field("type"), Some("file"));
    assert_eq!(field("filename"), Some("policyd-override.zip"));
}
