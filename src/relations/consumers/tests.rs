//! Every input of a reply re-serves the consumers: for each configuration change, the replies a
//! deployment gives after the change are the replies a deployment made with that configuration
//! gives. A reply's digest that missed an input would keep the first deployment's consumers on
//! the old reply (as once, when the hostnames and the VIP were left out).

use std::collections::BTreeMap;

use juju_sim_fixtures::scripted::{HaCluster, IdentityConsumer, IdentityInterface, Replies};
use serde_json::{Map, Value, json};

use crate::testing::{Sim, b64, tls_pair};

/// What each consumer unit saw from each keystone unit.
type Seen = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

const CONSUMERS: [(&str, IdentityInterface); 5] = [
    ("nova", IdentityInterface::Service),
    ("tempest", IdentityInterface::Credentials),
    ("operator", IdentityInterface::Admin),
    ("horizon", IdentityInterface::Dashboard),
    ("glance", IdentityInterface::Sunbeam),
];

/// hacluster, for the options that need it (a VIP, DNS records).
fn with_hacluster(sim: &mut Sim) {
    sim.model
        .deploy_scripted("hacluster", Box::new(HaCluster::default()), 2)
        .expect("deploy hacluster");
    sim.model
        .relate("keystone:ha", "hacluster:ha")
        .expect("relate hacluster");
}

fn needs_hacluster(config: &Map<String, Value>) -> bool {
    config.contains_key("vip") || config.get("dns-ha") == Some(&json!(true))
}

/// Two keystone units with a database and one consumer of each kind, with `config` (and
/// hacluster when it needs it), settled.
fn deployment(config: &Map<String, Value>) -> (Sim, Vec<Replies>) {
    let mut sim = Sim::with_database(2, Value::Object(config.clone()));
    if needs_hacluster(config) {
        with_hacluster(&mut sim);
    }
    let mut seen = Vec::new();
    for (name, interface) in CONSUMERS {
        let consumer = IdentityConsumer::new(name, interface);
        seen.push(consumer.replies.clone());
        sim.model
            .deploy_scripted(name, Box::new(consumer), 1)
            .expect("deploy a consumer");
        sim.model.relate("keystone", name).expect("relate");
    }
    sim.settle();
    (sim, seen)
}

/// What the consumers saw, with what no two deployments share made alike: generated passwords
/// (32 letters and digits), the twin Keystone's ids (`project-7`) and secret ids.
fn seen(replies: &[Replies]) -> Seen {
    let alike = |value: &str| {
        let generated = value.len() == 32 && value.chars().all(|c| c.is_ascii_alphanumeric());
        let id = value.rsplit_once('-').is_some_and(|(kind, n)| {
            !kind.is_empty()
                && kind.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
        });
        if generated {
            "<generated>".to_owned()
        } else if id {
            "<id>".to_owned()
        } else if value.starts_with("secret:") {
            "<secret>".to_owned()
        } else {
            value.to_owned()
        }
    };
    let mut all = Seen::new();
    for replies in replies {
        for (consumer, by_keystone) in replies.lock().expect("replies").iter() {
            for (keystone, reply) in by_keystone {
                let reply = reply.iter().map(|(k, v)| (k.clone(), alike(v))).collect();
                all.entry(consumer.clone())
                    .or_default()
                    .insert(keystone.clone(), reply);
            }
        }
    }
    all
}

/// One change of each option (several together where they only make sense together), and
/// the options that are expected to leave every reply as it is.
fn changes() -> Vec<Value> {
    let (cert, key) = tls_pair(&["keystone.example.com"]);
    vec![
        json!({"debug": true}),
        json!({"verbose": true}),
        json!({"audit-middleware": true}),
        json!({"log-level": "DEBUG"}),
        json!({"use-syslog": true}),
        json!({"openstack-origin": "distro"}),
        json!({"action-managed-upgrade": true}),
        json!({"harden": "os"}),
        json!({"service-port": 5010}),
        json!({"admin-port": 35360}),
        json!({"keystone-admin-role": "Admin2"}),
        json!({"keystone-service-admin-role": "ServiceAdmin2"}),
        json!({"admin-user": "cloudadmin"}),
        json!({"admin-password": "Operator-Pw-4711"}),
        json!({"admin-role": "CloudAdmin"}),
        json!({"token-provider": "fernet"}),
        json!({"token-expiration": 7200}),
        json!({"catalog-cache-expiration": 120}),
        json!({"identity-cache-expiration": 30}),
        json!({"role-cache-expiration": 30}),
        json!({"dogpile-cache-expiration": 300}),
        json!({"enable-cache": false}),
        json!({"fernet-max-active-keys": 4}),
        json!({"service-tenant": "svc"}),
        json!({"service-admin-prefix": "pre_"}),
        json!({"worker-multiplier": 1.0}),
        json!({"admin-worker-multiplier": 1.0}),
        json!({"public-worker-multiplier": 1.0}),
        json!({"preferred-api-version": 3}),
        json!({"haproxy-server-timeout": 9000}),
        json!({"haproxy-client-timeout": 9000}),
        json!({"haproxy-queue-timeout": 9000}),
        json!({"haproxy-connect-timeout": 9000}),
        json!({"database": "keystone2"}),
        json!({"database-user": "keystone2"}),
        json!({"region": "RegionTwo"}),
        json!({"identity-backend": "sql"}),
        json!({"assignment-backend": "sql"}),
        json!({"ldap-server": "ldap://10.0.0.9", "ldap-user": "cn=admin",
               "ldap-password": "ldap-pw", "ldap-suffix": "dc=example",
               "ldap-config-flags": "user_tree_dn: ou=people", "ldap-readonly": false}),
        json!({"dns-ha": true, "os-public-hostname": "keystone.example.com"}),
        json!({"vip": "10.0.0.100"}),
        json!({"vip_iface": "eth1", "vip_cidr": 16, "ha-bindiface": "eth1",
               "ha-mcastport": 5435}),
        json!({"os-admin-network": "10.0.0.0/24", "os-internal-network": "10.0.0.0/24",
               "os-public-network": "10.0.0.0/24"}),
        json!({"os-public-hostname": "public.example.com"}),
        json!({"os-internal-hostname": "internal.example.com"}),
        json!({"os-admin-hostname": "admin.example.com"}),
        json!({"prefer-ipv6": true}),
        json!({"ssl_cert": b64(&cert), "ssl_key": b64(&key), "ssl_ca": b64(&cert)}),
        json!({"nagios_context": "site-a", "nagios_servicegroups": "keystone"}),
        json!({"use-policyd-override": true}),
        json!({"password-security-compliance": "{lockout_failure_attempts: 3}"}),
        json!({"default-authorization-ttl": 10}),
        json!({"ec2-auth-ttl": 30}),
        json!({"wsgi-socket-rotation": false}),
        json!({"enable-notifications": true}),
        json!({"default-notification-opt-out": false}),
        json!({"healthcheck-timeout": 3000}),
        json!({"service-path-prefix": "/api/idm"}),
    ]
}

#[test]
fn every_option_is_changed_by_the_reserve_test() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
        .expect("config.yaml");
    let yaml: Value = serde_norway::from_str(&text).expect("config.yaml is YAML");
    let options = yaml["options"].as_object().expect("options");
    let changed: Vec<String> = changes()
        .iter()
        .flat_map(|change| {
            change
                .as_object()
                .cloned()
                .unwrap_or_default()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    for option in options.keys() {
        assert!(
            changed.contains(option),
            "{option} is not changed by every_reply_input_reserves_the_consumers: add a change"
        );
    }
}

#[test]
fn every_reply_input_reserves_the_consumers() {
    let base = Map::new();
    let (mut shared, shared_replies) = deployment(&base);
    assert_eq!(shared.status("keystone/0"), "active: Unit is ready");
    let before = seen(&shared_replies);
    assert_eq!(before.len(), CONSUMERS.len(), "every consumer was served");
    assert!(
        before
            .values()
            .all(|by_keystone| by_keystone.values().all(|r| !r.is_empty())),
        "{before:#?}"
    );
    let mut reached = Vec::new();
    let mut blocked = Vec::new();
    for change in changes() {
        let change = change.as_object().cloned().unwrap_or_default();
        let name = change.keys().cloned().collect::<Vec<_>>().join(",");
        let mut config = base.clone();
        config.extend(change.clone());
        let (fresh_sim, fresh) = deployment(&config);
        let wanted = seen(&fresh);
        let wanted_status = fresh_sim.status("keystone/0");
        // One deployment takes each change in turn and is changed back after it, which must
        // serve the first replies again. A VIP or DNS records need hacluster, related for
        // good: those changes get a deployment of their own.
        let mut own = needs_hacluster(&change).then(|| deployment(&base));
        let (changed, replies) = match &mut own {
            Some((sim, replies)) => (sim, &*replies),
            None => (&mut shared, &shared_replies),
        };
        changed
            .model
            .set_config("keystone", change.clone())
            .expect("set the config");
        if needs_hacluster(&change) {
            with_hacluster(changed);
        }
        changed.settle();
        // A configuration the charm refuses serves nobody anew: the consumers keep what they
        // had, and the unit says why.
        if wanted_status.starts_with("blocked") {
            assert_eq!(changed.status("keystone/0"), wanted_status, "{name}");
            blocked.push(name.clone());
        } else {
            assert_eq!(
                seen(replies),
                wanted,
                "after {name}, the consumers hold other replies than a deployment made with it"
            );
            if wanted != before {
                reached.push(name.clone());
            }
        }
        if own.is_none() {
            let reset = change.keys().map(|k| (k.clone(), Value::Null)).collect();
            shared
                .model
                .set_config("keystone", reset)
                .expect("reset the config");
            shared.settle();
            assert_eq!(
                seen(&shared_replies),
                before,
                "{name} changed back: the consumers hold other replies than at first"
            );
        }
    }
    // Not vacuous: the options the replies are made from changed them (catalog-cache-expiration
    // reaches only consumers that subscribe to endpoint changes, which none of these does).
    for option in [
        "service-port",
        "admin-user",
        "admin-password",
        "service-tenant",
        "service-admin-prefix",
        "region",
        "vip",
        "os-public-hostname",
        "os-internal-hostname",
        "os-admin-hostname",
        "ssl_ca,ssl_cert,ssl_key",
        "service-path-prefix",
    ] {
        assert!(
            reached.iter().any(|r| r == option),
            "{option} changed no reply: {reached:?} (blocked: {blocked:?})"
        );
    }
}
