//! The identity relations on real Keystone, Apache and MariaDB, for the forms the demo's bundle
//! does not have: a multi-endpoint consumer (cinder's two services under one user), Horizon's
//! keystone-service role request, identity-credentials asked Sunbeam's way, a subscriber to another service's endpoint changes and an
//! identity-notifications listener, with endpoints in two regions; and a dashboard's WebSSO
//! URL, which Keystone trusts, and no other. A consumer's URL change
//! reaches the subscriber and the listener, and a hook in which nothing changed sends neither
//! anything new nor a single request to Keystone. Needs root and scripts/install-real-stack.

mod support;

use std::collections::BTreeMap;

use juju_sim::Model;
use juju_sim::scripted::{ScriptedCharm, ScriptedHook};
use juju_sim::state::{Bag, HookEvent};
use juju_sim_fixtures::demo;
use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};
use serde_json::{Map, Value, json};
use support::{TempDir, settle};

/// A consumer that asks with a fixed request when it joins `endpoint`: in its unit bag, or as
/// a Sunbeam charm does, in its application bag (its leader).
struct Asks {
    metadata: String,
    endpoint: &'static str,
    request: Vec<(String, String)>,
    in_app_bag: bool,
}

impl Asks {
    fn new(app: &str, endpoint: &'static str, interface: &str, request: &[(&str, &str)]) -> Asks {
        Asks {
            metadata: format!(
                "name: {app}\nrequires:\n  {endpoint}:\n    interface: {interface}\n"
            ),
            endpoint,
            request: request
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            in_app_bag: false,
        }
    }
}

impl ScriptedCharm for Asks {
    fn metadata(&self) -> &str {
        &self.metadata
    }

    fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> anyhow::Result<()> {
        let joined = format!("{}-relation-joined", self.endpoint);
        if hook.hook_name() == joined
            && !self.request.is_empty()
            && let Some(relation) = hook.relation()
            && (!self.in_app_bag || hook.is_leader()?)
        {
            let pairs: Vec<(&str, &str)> = self
                .request
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            hook.relation_set(&relation, self.in_app_bag, &pairs)?;
        }
        Ok(())
    }
}

/// cinder's request in the multi-endpoint form: one group of keys per service.
fn cinder_request() -> Vec<(String, String)> {
    let mut request = Vec::new();
    for service in ["cinderv2", "cinderv3"] {
        let url = format!("http://10.9.0.7:8776/{service}");
        for (field, value) in [
            ("service", service),
            ("region", "RegionOne"),
            ("public_url", &url),
            ("admin_url", &url),
            ("internal_url", &url),
        ] {
            request.push((format!("{service}_{field}"), value.to_owned()));
        }
    }
    request
}

fn deploy(charm: &std::path::Path) -> Model {
    let options = json!({"region": "RegionOne RegionTwo", "audit-middleware": true});
    let mut model = support::keystone_on_mariadb(
        charm,
        "relations",
        1,
        support::lean(options.as_object().cloned().unwrap()),
    );

    let nova = IdentityConsumer::new("nova", IdentityInterface::Service);
    model.deploy_scripted("nova", Box::new(nova), 1).unwrap();
    let mut cinder = Asks::new("cinder", "identity-service", "keystone", &[]);
    cinder.request = cinder_request();
    let glance = Asks::new(
        "glance",
        "identity-service",
        "keystone",
        &[
            ("service", "glance"),
            ("region", "RegionOne"),
            ("public_url", "http://10.9.0.8:9292"),
            ("admin_url", "http://10.9.0.8:9292"),
            ("internal_url", "http://10.9.0.8:9292"),
            ("subscribe_ep_change", "nova"),
        ],
    );
    let dashboard = Asks::new(
        "dashboard",
        "identity-service",
        "keystone",
        &[("requested_roles", "dashboard_operator")],
    );
    dashboard_endpoint(&mut model, dashboard);
    let listener = Asks::new(
        "listener",
        "identity-notifications",
        "keystone-notifications",
        &[],
    );
    let mut octavia = Asks::new(
        "octavia",
        "identity-credentials",
        "keystone-credentials",
        &[("username", "octavia")],
    );
    octavia.in_app_bag = true;
    // openstack-dashboard's WebSSO URL, which Keystone requires.
    let mut horizon = Asks::new(
        "horizon",
        "websso-trusted-dashboard",
        "websso-trusted-dashboard",
        &[
            ("scheme", "http://"),
            ("hostname", "dashboard.test"),
            ("path", "/auth/websso/"),
        ],
    );
    horizon.metadata = "name: horizon\nprovides:\n  websso-trusted-dashboard:\n    \
                        interface: websso-trusted-dashboard\n"
        .into();
    for (app, charm) in [
        ("cinder", cinder),
        ("glance", glance),
        ("listener", listener),
        ("octavia", octavia),
        ("horizon", horizon),
    ] {
        model.deploy_scripted(app, Box::new(charm), 1).unwrap();
    }
    for app in [
        "nova",
        "cinder",
        "glance",
        "dashboard",
        "listener",
        "octavia",
        "horizon",
    ] {
        model.relate("keystone", app).unwrap();
    }
    settle(&mut model);
    model
}

/// Horizon of old: its role request on the keystone-service endpoint.
fn dashboard_endpoint(model: &mut Model, mut dashboard: Asks) {
    dashboard.endpoint = "keystone-service";
    dashboard.metadata =
        "name: dashboard\nrequires:\n  keystone-service:\n    interface: keystone-service\n".into();
    model
        .deploy_scripted("dashboard", Box::new(dashboard), 1)
        .unwrap();
}

fn base(model: &Model) -> String {
    format!(
        "http://{}:5000/v3",
        model.unit_address("keystone/0").unwrap()
    )
}

/// The reply keystone/0 gives `app` on its `endpoint`.
fn reply(model: &Model, app: &str, endpoint: &str) -> Bag {
    let id = model.relation_id(app, endpoint).expect(app);
    model.relation_data(id, "keystone/0")
}

fn every_region(urls: &BTreeMap<(String, String), String>) -> bool {
    ["RegionOne", "RegionTwo"].iter().all(|region| {
        ["public", "admin", "internal"]
            .iter()
            .all(|interface| urls.contains_key(&((*region).to_owned(), (*interface).to_owned())))
    })
}

/// Every request the charm made to Keystone on its unit (its client says `keystone-charm`),
/// readiness checks too; haproxy's health checks are not the charm's.
fn charm_requests(model: &Model) -> usize {
    let log = model.unit_path("keystone/0", "/var/log/apache2/keystone_access.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with("\"keystone-charm\""))
        .count()
}

/// What the subscriber and the listener were told: glance's `ep_changed` and the
/// notification checksums.
fn told(model: &Model) -> (String, Bag) {
    let ep_changed = reply(model, "glance", "identity-service")
        .get("ep_changed")
        .cloned()
        .unwrap_or_default();
    let mut checksums = reply(model, "listener", "identity-notifications");
    checksums.retain(|k, _| k.ends_with("-endpoint-changed"));
    (ep_changed, checksums)
}

#[test]
fn every_identity_form_works_on_real_keystone_and_endpoint_changes_are_told_only_when_they_happen()
{
    let out = TempDir::new("relations-real");
    let charm = support::pack_charm(&out);
    let mut model = deploy(&charm);
    assert_eq!(
        model.unit_status("keystone/0"),
        Some(("active".to_owned(), "Unit is ready".to_owned()))
    );
    let base = base(&model);

    // The multi-endpoint form: one user for both services; its token's catalog lists both,
    // in both regions.
    let cinder = reply(&model, "cinder", "identity-service");
    assert_eq!(cinder["service_username"], "cinderv2_cinderv3");
    let catalog = support::catalog_of(&base, &cinder);
    for service_type in ["volumev2", "volumev3"] {
        let urls = support::endpoints(&catalog, service_type);
        assert!(every_region(&urls), "{service_type}: {urls:?}");
    }
    let nova = reply(&model, "nova", "identity-service");
    assert!(every_region(&support::endpoints(
        &support::catalog_of(&base, &nova),
        "compute"
    )));

    // identity-credentials asked Sunbeam's way: the reply in keystone's application bag, the
    // credentials in a secret granted to the relation; they get a token for the project named.
    let id = model
        .relation_id("octavia", "identity-credentials")
        .unwrap();
    let app_reply = model.relation_data(id, "keystone");
    let secret = {
        let world = model.world();
        let secret_id = app_reply["credentials"].trim_start_matches("secret:");
        world.secrets[secret_id].revisions.last().cloned().unwrap()
    };
    assert_eq!(secret["username"], "octavia");
    let user = json!({
        "name": secret["username"],
        "domain": {"id": app_reply["user-domain-id"]},
        "password": secret["password"]});
    let scope = json!({"project": {"id": app_reply["project-id"]}});
    let answer = demo::request_token(&base, &user, &scope, &[]).unwrap();
    assert_eq!(answer.status, 201, "octavia: {}", answer.body);

    // keystone-service: the dashboard's role exists in Keystone; the reply says where Keystone
    // is, with no token and no user.
    let dashboard = reply(&model, "dashboard", "keystone-service");
    assert_eq!(
        dashboard["created_roles"], "dashboard_operator",
        "{dashboard:?}"
    );
    assert_eq!(dashboard["api_version"], "3");
    assert!(!dashboard.contains_key("admin_token"));
    assert!(!dashboard.contains_key("service_password"));
    let password = {
        let task = model
            .run_action("keystone/0", "get-admin-password", Map::new())
            .unwrap();
        task.results["admin-password"].as_str().unwrap().to_owned()
    };
    let admin = demo::issue_admin_token(&base, &password, &[]).unwrap();
    assert!(support::role_exists(&base, &admin, "dashboard_operator"));

    websso_trusts_only_the_related_dashboard(&model, &base, &admin);

    // audit-middleware: the admin's authentication is in Keystone's log as a CADF event.
    let log =
        std::fs::read_to_string(model.unit_path("keystone/0", "/var/log/keystone/keystone.log"))
            .unwrap_or_default();
    let audited = log.lines().any(|line| {
        line.contains("\"identity.authenticate\"")
            && line.contains("http://schemas.dmtf.org/cloud/audit/1.0/event")
            && line.contains("\"outcome\": \"success\"")
    });
    assert!(audited, "no CADF authentication event in keystone.log");

    // The subscriber was told nova's endpoints; the listener has a checksum per service.
    let (ep_changed, checksums) = told(&model);
    let heard: Value = serde_json::from_str(&ep_changed).expect("ep_changed is JSON");
    assert_eq!(heard["nova"]["public"], nova_url(&model), "{ep_changed}");
    for service in ["nova", "glance", "cinderv2", "cinderv3"] {
        assert!(
            checksums.contains_key(&format!("{service}-endpoint-changed")),
            "{service}: {checksums:?}"
        );
    }

    // Hooks in which nothing changed: nothing new told, not one request to Keystone.
    let requests = charm_requests(&model);
    for hook in ["config-changed", "update-status", "config-changed"] {
        model.queue_hook("keystone/0", hook);
        settle(&mut model);
    }
    assert_eq!(told(&model), (ep_changed.clone(), checksums.clone()));
    let health_checks = 1; // update-status asks whether Keystone answers
    assert_eq!(charm_requests(&model), requests + health_checks);

    // nova's public URL changes: the catalog, the subscriber and the listener learn it; the
    // other services' checksums stay.
    let moved = "http://nova.example.com:8774/v2.1";
    let id = model.relation_id("nova", "identity-service").unwrap();
    {
        let mut world = model.world();
        let bag = world
            .relations
            .get_mut(&id)
            .unwrap()
            .unit_data
            .get_mut("nova/0")
            .unwrap();
        bag.insert("public_url".into(), moved.into());
        let mut event = HookEvent::simple("identity-service-relation-changed");
        event.relation = Some(id);
        event.remote_unit = Some("nova/0".into());
        event.remote_app = Some("nova".into());
        world.queue("keystone/0", event);
    }
    settle(&mut model);
    let urls = support::endpoints(&support::catalog_of(&base, &nova), "compute");
    for region in ["RegionOne", "RegionTwo"] {
        assert_eq!(urls[&(region.to_owned(), "public".to_owned())], moved);
    }
    let (after, after_checksums) = told(&model);
    let heard: Value = serde_json::from_str(&after).unwrap();
    assert_eq!(heard["nova"]["public"], moved, "{after}");
    assert_ne!(
        after_checksums["nova-endpoint-changed"],
        checksums["nova-endpoint-changed"]
    );
    for service in ["glance", "cinderv2", "cinderv3"] {
        let key = format!("{service}-endpoint-changed");
        assert_eq!(after_checksums[&key], checksums[&key], "{service}");
    }
}

/// `curl` as the admin, with a JSON body; the reply's status and body.
fn admin_call(method: &str, url: &str, token: &str, body: Value) -> (u16, String) {
    support::call(method, url, token, Some(&body))
}

/// Keystone's WebSSO hands a token to the related dashboard's URL and to no other. A test
/// identity provider whose entity id and user arrive in request headers (the test's stand-in
/// for an Apache authentication module) gets a WebSSO login as far as the origin check, and
/// with the trusted origin on to Keystone's callback page carrying the token.
fn websso_trusts_only_the_related_dashboard(model: &Model, base: &str, admin: &str) {
    // Keystone tells why it refused only in its log.
    let log = || {
        std::fs::read_to_string(model.unit_path("keystone/0", "/var/log/keystone/keystone.log"))
            .unwrap_or_default()
    };
    let errors = |log: &str| -> String {
        log.lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARNING"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (status, body) = admin_call(
        "POST",
        &format!("{base}/groups"),
        admin,
        json!({"group": {"name": "websso-users", "domain_id": "default"}}),
    );
    assert_eq!(status, 201, "group: {body}");
    let group: Value = serde_json::from_str(&body).unwrap();
    let rules = json!([{
        "local": [{"user": {"name": "{0}"}}, {"group": {"id": group["group"]["id"]}}],
        "remote": [{"type": "HTTP_X_TEST_USER"}]
    }]);
    let federation = format!("{base}/OS-FEDERATION");
    for (url, body) in [
        (
            format!("{federation}/mappings/websso"),
            json!({"mapping": {"rules": rules}}),
        ),
        (
            format!("{federation}/identity_providers/testidp"),
            json!({"identity_provider": {"remote_ids": ["https://idp.test"], "enabled": true}}),
        ),
        (
            format!("{federation}/identity_providers/testidp/protocols/openid"),
            json!({"protocol": {"mapping_id": "websso", "remote_id_attribute": "HTTP_X_TEST_IDP"}}),
        ),
    ] {
        let (status, reply) = admin_call("PUT", &url, admin, body);
        assert_eq!(status, 201, "{url}: {reply}");
    }
    let login = |origin: &str| {
        let url = format!(
            "{base}/auth/OS-FEDERATION/websso/openid?origin={}",
            origin.replace(':', "%3A").replace('/', "%2F")
        );
        demo::http(&[
            "-H",
            "X-Test-Idp: https://idp.test",
            "-H",
            "X-Test-User: alice",
            &url,
        ])
        .unwrap()
    };
    // Once in six runs on a loaded machine the first try was refused (401) and the next runs
    // could not show why; tried again for a while, each refusal printed with Keystone's reason.
    let mut trusted = login("http://dashboard.test/auth/websso/");
    for _ in 0..20 {
        if trusted.status != 401 {
            break;
        }
        println!("websso refused the trusted dashboard: {}", errors(&log()));
        std::thread::sleep(std::time::Duration::from_secs(1));
        trusted = login("http://dashboard.test/auth/websso/");
    }
    assert_eq!(trusted.status, 200, "{}\n{}", trusted.body, errors(&log()));
    assert!(
        trusted.body.contains("http://dashboard.test/auth/websso/"),
        "the callback page posts to the dashboard: {}",
        trusted.body
    );
    let before = log().len();
    let other = login("http://evil.test/auth/websso/");
    assert_eq!(other.status, 401, "{}", other.body);
    let said = log().get(before..).unwrap_or_default().to_owned();
    assert!(
        said.contains("http://evil.test/auth/websso/ is not a trusted dashboard host"),
        "{said}"
    );
}

/// The URL nova asked for (IdentityConsumer's: its own address, port 8774).
fn nova_url(model: &Model) -> String {
    let id = model.relation_id("nova", "identity-service").unwrap();
    model.relation_data(id, "nova/0")["public_url"].clone()
}
