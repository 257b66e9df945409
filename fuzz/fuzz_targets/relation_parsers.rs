//! Every relation's remote data: a bag of any keys and values (over a valid request, or alone)
//! into each parser. None panics; what is accepted is one line per value; a refusal names a key
//! of the bag; a database reply that is accepted renders keystone.conf with the same lines as a
//! benign one.

#![no_main]

use std::sync::OnceLock;

use keystone_charm::config::{Config, defaults_from_config_yaml};
use keystone_charm::key_sets::{KeyMaterial, from_python_charm_leader_setting};
use keystone_charm::juju::{Databag, RelationId, UnitName};
use keystone_charm::relations::cluster;
use keystone_charm::relations::consumers::{AppRecord, Record, recorded_users};
use keystone_charm::relations::shared_db::{
    self, DatabaseFlags, DatabaseRequest, DatabaseState, RemoteUnit,
};
use keystone_charm::relations::{identity_credentials, identity_service, keystone_service};
use keystone_charm::render::{KeystoneConf, Templates};
use keystone_charm::secret::Sensitive;
use libfuzzer_sys::fuzz_target;

struct Baseline {
    templates: Templates,
    config: Config,
}

fn baseline() -> &'static Baseline {
    static BASELINE: OnceLock<Baseline> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let defaults =
            defaults_from_config_yaml(include_str!("../../config.yaml")).expect("config.yaml");
        Baseline {
            templates: Templates::bundled(),
            config: Config::from_options(&defaults).expect("the defaults are valid"),
        }
    })
}

fn plain(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn bag(pairs: &[(&str, &str)]) -> Databag {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A refusal names one of the keys the fuzzer set.
fn names_a_key(message: &str, given: &[(String, String)]) -> bool {
    given.iter().any(|(key, _)| message.contains(key.as_str()))
}

const URL: &str = "http://10.0.0.1:8774/";

fn classic(given: &[(String, String)], base: bool) {
    let mut request = match base {
        true => bag(&[
            ("service", "nova"),
            ("region", "RegionOne"),
            ("public_url", URL),
            ("admin_url", URL),
            ("internal_url", URL),
        ]),
        false => Databag::new(),
    };
    request.extend(given.iter().cloned());
    match identity_service::parse_request(&request) {
        Ok(Some(parsed)) => {
            for endpoint in &parsed.endpoints {
                for url in [
                    &endpoint.public_url,
                    &endpoint.admin_url,
                    &endpoint.internal_url,
                ] {
                    assert!(plain(url) && !url.contains(char::is_whitespace), "{url:?}");
                }
            }
            for name in parsed
                .requested_roles
                .iter()
                .chain(&parsed.add_role_to_admin)
            {
                assert!(plain(name), "{name:?}");
            }
        }
        Ok(None) => {}
        Err(err) => assert!(names_a_key(&err.to_string(), given), "{err}"),
    }
    match keystone_service::parse_request(&request) {
        Ok(Some(parsed)) => assert!(parsed.requested_roles.iter().all(|r| plain(r))),
        Ok(None) => {}
        // A `role` is checked as requested_roles.
        Err(err) => assert!(
            names_a_key(&err.to_string(), given) || err.to_string().contains("requested_roles"),
            "{err}"
        ),
    }
}

fn sunbeam(given: &[(String, String)], base: bool) {
    let mut request = match base {
        true => bag(&[
            (
                "service-endpoints",
                r#"[{"service_name": "glance", "public_url": "http://g", "admin_url": "http://g", "internal_url": "http://g"}]"#,
            ),
            ("region", "RegionOne"),
        ]),
        false => Databag::new(),
    };
    request.extend(given.iter().cloned());
    match identity_service::parse_app_request(&request) {
        Ok(Some(parsed)) => {
            assert!(plain(&parsed.region));
            assert!(parsed.extra_roles.iter().all(|r| plain(r)));
        }
        Ok(None) => {}
        Err(err) => assert!(names_a_key(&err.to_string(), given), "{err}"),
    }
}

fn credentials(given: &[(String, String)]) {
    let mut request = bag(&[("username", "ceilometer")]);
    request.extend(given.iter().cloned());
    match identity_credentials::parse_request(&request, &baseline().config) {
        Ok(Some(parsed)) => {
            let names = [&parsed.username, &parsed.project, &parsed.domain];
            assert!(
                names
                    .into_iter()
                    .chain(&parsed.roles)
                    .chain(&parsed.grants)
                    .all(|n| plain(n))
            );
        }
        Ok(None) => {}
        Err(err) => assert!(names_a_key(&err.to_string(), given), "{err}"),
    }
}

fn database(given: &[(String, String)], base: bool) {
    let mut reply = match base {
        true => bag(&[
            ("db_host", "10.0.0.5"),
            ("password", "pw"),
            ("allowed_units", "keystone/0"),
        ]),
        false => Databag::new(),
    };
    reply.extend(given.iter().cloned());
    let remote = [RemoteUnit {
        unit: UnitName::parse("mysql/0").unwrap(),
        bag: reply,
    }];
    let _ = shared_db::access_network(&remote);
    let request = DatabaseRequest::new("keystone", "keystone").unwrap();
    let unit = UnitName::parse("keystone/0").unwrap();
    let database = match shared_db::database_state(Some(&remote), &unit, &request) {
        Err(err) => {
            assert!(names_a_key(&err.to_string(), given), "{err}");
            return;
        }
        Ok(DatabaseState::Ready(database)) => database,
        Ok(_) => return,
    };
    let base = baseline();
    let render = |db: &shared_db::Database| {
        base.templates.keystone_conf(&KeystoneConf::from_config(
            &base.config,
            Some(db.connection()),
        ))
    };
    match render(&database) {
        Err(err) => assert!(names_a_key(&err.to_string(), given), "{err}"),
        Ok(text) => {
            let twin = shared_db::Database {
                host: "10.0.0.5".into(),
                password: Sensitive::new("benign".into()),
                ..database
            };
            let twin = render(&twin).expect("a benign database renders");
            assert_eq!(text.split('\n').count(), twin.split('\n').count(), "{text}");
            for line in text.split('\n') {
                assert!(plain(line), "{line:?}");
                assert!(!line.replace("$$", "").contains('$'), "{line:?}");
            }
        }
    }
}

fn peer(given: &[(String, String)]) {
    let peer_bag: Databag = given.iter().cloned().collect();
    let _ = cluster::published(&peer_bag);
    let _ = cluster::every_unit_ready(&peer_bag, 1);
    let _ = DatabaseFlags::from_peer_bag(&peer_bag);
    for (_, value) in given {
        let _ = KeyMaterial::from_bag_value(value);
        let _ = from_python_charm_leader_setting(value);
    }
    let content = given
        .iter()
        .map(|(k, v)| (k.clone(), Sensitive::new(v.clone())))
        .collect();
    let _ = KeyMaterial::from_secret_content(&content);
    let relation = RelationId::parse("identity-service:7").unwrap();
    let _ = Record::read(identity_service::RECORDS, &relation, &peer_bag);
    let _ = AppRecord::read(identity_service::APP_RECORDS, &relation, &peer_bag);
    let users = recorded_users(
        &peer_bag,
        &[identity_service::RECORDS, identity_credentials::RECORDS],
        &[
            identity_service::APP_RECORDS,
            identity_credentials::APP_RECORDS,
        ],
    );
    drop(users);
}

/// Every key a relation parser reads (and one none does): the fuzzer picks keys from here by
/// index, so that its values reach the checks behind each key.
const KEYS: [&str; 31] = [
    "service",
    "region",
    "public_url",
    "admin_url",
    "internal_url",
    "nova_service",
    "nova_region",
    "nova_public_url",
    "nova_admin_url",
    "nova_internal_url",
    "requested_roles",
    "add_role_to_admin",
    "subscribe_ep_change",
    "role",
    "service-endpoints",
    "extra-roles",
    "username",
    "project",
    "domain",
    "requested_grants",
    "db_host",
    "password",
    "db_port",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "allowed_units",
    "access-network",
    "fernet-generation",
    "fernet-keys",
    "x-unknown",
];

fuzz_target!(|input: (u8, Vec<(u8, String)>)| {
    let (which, picked) = input;
    let given: Vec<(String, String)> = picked
        .into_iter()
        .map(|(pick, value)| {
            let key = KEYS[usize::from(pick & 0x7f) % KEYS.len()];
            // With the high bit, a URL key's value is a URL, so it reaches the checks after
            // the scheme's.
            match pick & 0x80 != 0 && key.ends_with("_url") {
                true => (key.to_owned(), format!("http://{value}")),
                false => (key.to_owned(), value),
            }
        })
        .collect();
    let base = which & 0x80 != 0;
    match which % 6 {
        0 => classic(&given, base),
        1 => sunbeam(&given, base),
        2 => credentials(&given),
        3 => database(&given, base),
        4 => peer(&given),
        _ => {
            classic(&given, base);
            sunbeam(&given, base);
            credentials(&given);
            database(&given, base);
            peer(&given);
        }
    }
});
