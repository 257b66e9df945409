use super::*;
use crate::identity;
use crate::keystone_api::memory::MemoryKeystone;
use crate::keystone_api::{DomainRef, PasswordCredentials};
use crate::keystone_api::{KeystoneApi as _, Scope};
use crate::testing::Sim;
use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};
use serde_json::json;

fn bag(pairs: &[(&str, &str)]) -> Databag {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn single(service: &str) -> Databag {
    bag(&[
        ("service", service),
        ("region", "RegionOne"),
        ("public_url", "http://10.0.0.9:8774/v2.1"),
        ("admin_url", "http://10.0.0.9:8774/v2.1"),
        ("internal_url", "http://10.0.0.9:8774/v2.1"),
        ("private-address", "10.0.0.9"),
    ])
}

fn settings() -> Settings {
    Settings {
        service_tenant: "services".into(),
        admin_role: "Admin".into(),
        admin_user: "admin".into(),
        regions: vec!["RegionOne".into(), "RegionTwo".into()],
        user_prefix: None,
    }
}

#[test]
fn the_single_form_names_one_service_and_its_user() {
    let request = parse_request(&single("nova")).unwrap().unwrap();
    assert_eq!(request.endpoints.len(), 1);
    assert_eq!(request.endpoints[0].service, "nova");
    assert_eq!(request.service_type_of.as_deref(), Some("nova"));
    assert_eq!(service_user(&request, &settings()).as_deref(), Some("nova"));
}

#[test]
fn the_multi_form_registers_every_complete_group_under_one_sorted_user() {
    let mut data = Databag::new();
    for service in ["s3", "nova", "ec2"] {
        for (field, value) in [
            ("service", service.to_owned()),
            ("region", "RegionOne".to_owned()),
            ("public_url", format!("http://10.0.0.9/{service}")),
            ("admin_url", format!("http://10.0.0.9/{service}")),
            ("internal_url", format!("http://10.0.0.9/{service}")),
        ] {
            data.insert(format!("{service}_{field}"), value);
        }
    }
    // Juju's own keys and the modifiers are not groups.
    data.insert("private-address".into(), "10.0.0.9".into());
    data.insert("requested_roles".into(), "ResellerAdmin, member".into());
    let request = parse_request(&data).unwrap().unwrap();
    let names: Vec<&str> = request
        .endpoints
        .iter()
        .map(|e| e.service.as_str())
        .collect();
    assert_eq!(names, ["ec2", "nova", "s3"]);
    assert_eq!(request.requested_roles, ["ResellerAdmin", "member"]);
    assert_eq!(
        service_user(&request, &settings()).as_deref(),
        Some("ec2_nova_s3")
    );
    let prefixed = Settings {
        user_prefix: Some("svc_".into()),
        ..settings()
    };
    assert_eq!(
        service_user(&request, &prefixed).as_deref(),
        Some("svc_ec2_nova_s3")
    );
}

#[test]
fn the_none_form_asks_for_no_user_and_no_catalog_entry() {
    let mut horizon = bag(&[
        ("service", "None"),
        ("region", "None"),
        ("public_url", "None"),
        ("admin_url", "None"),
        ("internal_url", "None"),
        ("requested_roles", "member"),
    ]);
    let request = parse_request(&horizon).unwrap().unwrap();
    assert!(request.endpoints.is_empty());
    assert_eq!(request.service_type_of, None);
    assert_eq!(service_user(&request, &settings()), None);
    assert_eq!(request.requested_roles, ["member"]);
    // A known service with None URLs still names its type.
    horizon.insert("service".into(), "glance".into());
    let request = parse_request(&horizon).unwrap().unwrap();
    assert_eq!(request.service_type_of.as_deref(), Some("glance"));
}

#[test]
fn incomplete_unknown_and_hostile_requests() {
    let mut partial = single("nova");
    partial.remove("internal_url");
    assert_eq!(parse_request(&partial).unwrap(), None);
    assert_eq!(
        parse_request(&bag(&[("private-address", "10.0.0.9")])).unwrap(),
        None
    );
    assert_eq!(
        parse_request(&single("frobnicator")).unwrap_err(),
        RequestError::UnknownService {
            key: "service".into(),
            service: "frobnicator".into()
        }
    );
    let mut hostile = single("nova");
    hostile.insert("public_url".into(), "http://x\n[database]".into());
    assert!(matches!(
        parse_request(&hostile).unwrap_err(),
        RequestError::Invalid { key, .. } if key == "public_url"
    ));
    hostile.insert("public_url".into(), "ftp://x".into());
    assert!(parse_request(&hostile).is_err());
    let mut roles = single("nova");
    roles.insert("requested_roles".into(), "a\nb".into());
    assert!(parse_request(&roles).is_err());
}

fn location() -> Location {
    Location {
        public_host: "10.0.0.100".into(),
        internal_host: "10.0.0.100".into(),
        admin_host: "10.0.0.100".into(),
        service_port: 5000,
        admin_port: 35357,
        protocol: "http",
        region: "RegionOne RegionTwo".into(),
        ca_cert: None,
        path_prefix: String::new(),
    }
}

/// A bootstrapped Keystone with the admin identity.
fn keystone() -> MemoryKeystone {
    let mut api = MemoryKeystone::bootstrapped();
    let settings = identity::IdentitySettings {
        admin_user: "admin".into(),
        admin_role: "Admin".into(),
        service_tenant: "services".into(),
        regions: vec!["RegionOne".into()],
        endpoint_urls: identity::EndpointUrls::of(
            &crate::config::Config::from_options(&serde_json::Map::new()).unwrap(),
            &crate::addresses::Addresses {
                public: "10.0.0.100".into(),
                internal: "10.0.0.100".into(),
                admin: "10.0.0.100".into(),
            },
        ),
    };
    let password = Sensitive::new("admin-pw".to_owned());
    identity::ensure_objects(&mut api, &identity::admin_identity(&settings, &password)).unwrap();
    api
}

#[test]
fn the_objects_make_a_user_that_gets_a_project_token_and_endpoints_in_every_region() {
    let mut api = keystone();
    let request = parse_request(&single("nova")).unwrap().unwrap();
    let password = Sensitive::new("nova-pw".to_owned());
    let objects = objects(&request, &settings(), Some(("nova", &password)));
    let ensured = identity::ensure_objects(&mut api, &objects).unwrap();
    // Twice: the second run writes nothing.
    let writes = api.request_count().writes;
    identity::ensure_objects(&mut api, &objects).unwrap();
    assert_eq!(api.request_count().writes, writes);

    let inputs = ReplyInputs {
        request: &request,
        settings: &settings(),
        user: Some("nova"),
        password: None,
        at: &location(),
        changes: None,
    };
    let reply = reply(&inputs, &ensured);
    let get = |key: &str| reply.get(key).cloned().flatten().unwrap_or_default();
    assert_eq!(get("service_username"), "nova");
    assert_eq!(get("service_tenant"), "services");
    assert_eq!(get("service_domain"), "service_domain");
    assert_eq!(get("api_version"), "3");
    assert_eq!(get("auth_port"), "35357");
    assert_eq!(get("service_port"), "5000");
    assert_eq!(get("service_type"), "compute");
    assert_eq!(get("admin_role"), "Admin");
    for key in [
        "service_user_id",
        "service_domain_id",
        "service_tenant_id",
        "admin_domain_id",
        "admin_project_id",
        "admin_user_id",
    ] {
        assert!(!get(key).is_empty(), "{key}: {reply:?}");
    }
    assert_eq!(reply.get("ca_cert"), Some(&None), "unset without TLS");
    // A service account: password expiry and forced changes never lock it out.
    let user_id = get("service_user_id");
    assert_eq!(
        api.user_options[&user_id],
        BTreeSet::from([
            "ignore_change_password_upon_first_use".to_owned(),
            "ignore_password_expiry".to_owned()
        ])
    );
    assert!(
        !reply.contains_key("service_password"),
        "added by each unit"
    );

    // The user authenticates with a token scoped to the service project.
    let credentials = PasswordCredentials {
        user_name: "nova".into(),
        user_domain: DomainRef::Name(SERVICE_DOMAIN.into()),
        password,
    };
    let scope = Scope::Project {
        domain: DomainRef::Name(SERVICE_DOMAIN.into()),
        name: "services".into(),
    };
    api.authenticate(&credentials, &scope).unwrap();
    // Endpoints in both regions.
    let service = api.find_service("nova", "compute").unwrap().unwrap();
    let regions: BTreeSet<String> = api
        .list_endpoints(&service.id)
        .unwrap()
        .into_iter()
        .map(|e| e.region_id)
        .collect();
    assert_eq!(
        regions,
        BTreeSet::from(["RegionOne".into(), "RegionTwo".into()])
    );
}

#[test]
fn the_none_form_gets_the_reduced_reply_and_its_role() {
    let mut api = keystone();
    let horizon = bag(&[
        ("service", "None"),
        ("region", "None"),
        ("public_url", "None"),
        ("admin_url", "None"),
        ("internal_url", "None"),
        ("requested_roles", "Member"),
    ]);
    let request = parse_request(&horizon).unwrap().unwrap();
    let ensured =
        identity::ensure_objects(&mut api, &objects(&request, &settings(), None)).unwrap();
    let inputs = ReplyInputs {
        request: &request,
        settings: &settings(),
        user: None,
        password: None,
        at: &location(),
        changes: None,
    };
    let reply = reply(&inputs, &ensured);
    let keys: BTreeSet<&str> = reply
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "admin_domain_id",
            "api_version",
            "auth_host",
            "auth_port",
            "auth_protocol",
            "created_roles",
            "internal_host",
            "internal_port",
            "internal_protocol",
            "region",
            "service_host",
            "service_port",
            "service_protocol",
        ])
    );
    // The role exists, spelled as Keystone has it ("member", made by the admin identity).
    assert_eq!(reply["created_roles"].as_deref(), Some("member"));
    assert_eq!(reply["region"].as_deref(), Some("RegionOne RegionTwo"));
}

/// The reply nova's unit saw from each keystone unit (without the keys Juju sets itself).
fn replies(nova: &juju_sim_fixtures::scripted::Replies) -> BTreeMap<String, Databag> {
    let juju_keys = ["private-address", "ingress-address", "egress-subnets"];
    nova.lock()
        .unwrap()
        .get("nova/0")
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|(unit, mut bag)| {
            bag.retain(|k, _| !juju_keys.contains(&k.as_str()));
            (unit, bag)
        })
        .collect()
}

fn relate_nova(sim: &mut Sim) -> juju_sim_fixtures::scripted::Replies {
    let nova = IdentityConsumer::new("nova", IdentityInterface::Service);
    let replies = nova.replies.clone();
    sim.model
        .deploy_scripted("nova", Box::new(nova), 1)
        .unwrap();
    sim.model.relate("keystone", "nova").unwrap();
    sim.settle();
    replies
}

#[test]
fn every_unit_publishes_the_same_working_credentials() {
    let mut sim = Sim::ready(2);
    let seen = relate_nova(&mut sim);
    let replies = replies(&seen);
    assert_eq!(replies.len(), 2, "{replies:?}");
    let leader = &replies["keystone/0"];
    assert_eq!(leader, &replies["keystone/1"]);
    assert_eq!(leader["service_username"], "nova");
    let password = leader["service_password"].clone();
    assert_eq!(password.len(), identity::GENERATED_PASSWORD_LENGTH);
    let credentials = PasswordCredentials {
        user_name: "nova".into(),
        user_domain: DomainRef::Id(leader["service_domain_id"].clone()),
        password: Sensitive::new(password.clone()),
    };
    let scope = Scope::Project {
        domain: DomainRef::Name(SERVICE_DOMAIN.into()),
        name: leader["service_tenant"].clone(),
    };
    sim.keystone
        .lock()
        .unwrap()
        .authenticate(&credentials, &scope)
        .unwrap();
    // The password is in the shared secret, never in the peer bag.
    assert!(!format!("{:?}", sim.peer_app_bag()).contains(&password));
}

#[test]
fn nothing_is_served_before_the_database_is_initialised() {
    let mut sim = Sim::keystone(1, json!({}));
    sim.settle();
    let seen = relate_nova(&mut sim);
    let replies = replies(&seen);
    assert!(
        replies
            .values()
            .all(|r| !r.contains_key("service_password")),
        "{replies:?}"
    );
}

#[test]
fn an_unknown_service_is_refused_and_the_others_are_served() {
    let mut sim = Sim::ready(1);
    let bogus = IdentityConsumer::new("frobnicator", IdentityInterface::Service);
    sim.model
        .deploy_scripted("frobnicator", Box::new(bogus), 1)
        .unwrap();
    sim.model.relate("keystone", "frobnicator").unwrap();
    let seen = relate_nova(&mut sim);
    assert!(replies(&seen)["keystone/0"].contains_key("service_password"));
    let id = sim
        .model
        .relation_id("keystone", "identity-service")
        .unwrap();
    let errors = sim.logs("keystone/0", "ERROR");
    assert!(
        errors.iter().any(
            |line| line.contains("request refused: unknown service \"frobnicator\"")
                && line.starts_with("identity-service:")
        ),
        "{errors:?} (nova is {id})"
    );
    assert_eq!(sim.status("keystone/0"), "active: Unit is ready");
}

#[test]
fn a_hook_in_which_nothing_changed_costs_the_same_with_one_or_many_consumers() {
    let calls = |consumers: usize| {
        let mut sim = Sim::ready(1);
        for n in 0..consumers {
            let app = format!("glance{n}");
            let consumer = IdentityConsumer::new("glance", IdentityInterface::Service);
            sim.model
                .deploy_scripted(&app, Box::new(consumer), 1)
                .unwrap();
            sim.model.relate("keystone", &app).unwrap();
        }
        sim.settle();
        let requests = sim.keystone.lock().unwrap().request_count();
        assert!(sim.run("keystone/0", "config-changed"));
        let after = sim.keystone.lock().unwrap().request_count();
        assert_eq!(after.total, requests.total, "no Keystone request");
        let tools = sim.tools_called("keystone/0");
        assert!(!tools.contains(&"relation-set".to_owned()), "{tools:?}");
        tools.len()
    };
    assert_eq!(calls(1), calls(5));
}

#[test]
fn a_new_leader_serves_the_same_passwords_and_ids() {
    let mut sim = Sim::ready(2);
    let seen = relate_nova(&mut sim);
    let before = replies(&seen)["keystone/0"].clone();
    sim.model.set_leader("keystone/1").unwrap();
    sim.settle();
    assert!(sim.run("keystone/1", "config-changed"));
    assert!(sim.run("keystone/0", "config-changed"));
    let after = replies(&seen);
    // Without a VIP the hosts are the new leader's address; passwords and ids stay.
    let hosts = ["auth_host", "service_host", "internal_host"];
    let without_hosts = |bag: &Databag| {
        let mut bag = bag.clone();
        bag.retain(|k, _| !hosts.contains(&k.as_str()));
        bag
    };
    let new_leader = sim.model.unit_address("keystone/1").unwrap_or_default();
    for unit in ["keystone/0", "keystone/1"] {
        assert_eq!(
            without_hosts(&after[unit]),
            without_hosts(&before),
            "{unit}"
        );
        assert_eq!(after[unit]["service_host"], new_leader, "{unit}");
    }
}

#[test]
fn a_rotated_service_password_works_in_keystone_and_reaches_every_unit() {
    let mut sim = Sim::ready(2);
    let seen = relate_nova(&mut sim);
    let before = replies(&seen)["keystone/0"]["service_password"].clone();
    let task = sim.action("keystone/1", "list-service-usernames", json!({}));
    assert_eq!(task.results["usernames"], "nova");
    let task = sim.action(
        "keystone/0",
        "rotate-service-user-password",
        json!({"service-user": "glance"}),
    );
    assert_eq!(
        task.message.as_deref(),
        Some("there is no service-user \"glance\"; the service users are: nova")
    );
    let task = sim.action(
        "keystone/0",
        "rotate-service-user-password",
        json!({"service-user": "nova"}),
    );
    assert_eq!(task.status, "completed", "{task:?}");
    assert!(!format!("{task:?}").contains(&before));
    sim.settle();
    let after = replies(&seen);
    let password = after["keystone/0"]["service_password"].clone();
    assert_ne!(password, before);
    assert_eq!(after["keystone/1"]["service_password"], password);
    let service_domain = || DomainRef::Name(SERVICE_DOMAIN.into());
    assert!(logs_in(&sim, "nova", service_domain(), &password));
    assert!(!logs_in(&sim, "nova", service_domain(), &before));
}

/// A Sunbeam-style consumer: its leader asks in its application bag; it keeps the keystone
/// application's reply and the content of the credentials secret.
struct SunbeamGlance {
    seen: std::sync::Arc<std::sync::Mutex<Option<(Databag, Databag)>>>,
}

impl juju_sim::scripted::ScriptedCharm for SunbeamGlance {
    fn metadata(&self) -> &str {
        "name: glance-k8s\nrequires:\n  identity-service:\n    interface: keystone\n"
    }

    fn handle(&mut self, hook: &mut juju_sim::scripted::ScriptedHook<'_>) -> anyhow::Result<()> {
        let Some(relation) = hook.relation() else {
            return Ok(());
        };
        if hook.hook_name() == "identity-service-relation-joined" && hook.is_leader()? {
            let endpoints = json!([{
                "service_name": "glance", "type": "image", "description": "Image service",
                "internal_url": "http://glance.internal:9292", "public_url": "http://glance.public:9292",
                "admin_url": "http://glance.admin:9292"
            }])
            .to_string();
            hook.relation_set(
                &relation,
                true,
                &[("service-endpoints", &endpoints), ("region", "RegionTwo")],
            )?;
        }
        if hook.hook_name() == "identity-service-relation-changed" {
            let reply: Databag = hook
                .relation_get(&relation, "keystone", true)?
                .into_iter()
                .collect();
            if let Some(id) = reply.get("service-credentials") {
                let out = hook.tool("secret-get", &["--format=json", id])?;
                let content: Databag = serde_json::from_str(&out)?;
                *self.seen.lock().unwrap() = Some((reply, content));
            }
        }
        Ok(())
    }
}

/// Deploys [`SunbeamGlance`] (not related yet); what it will see.
fn deploy_sunbeam_glance(
    sim: &mut Sim,
) -> std::sync::Arc<std::sync::Mutex<Option<(Databag, Databag)>>> {
    let seen = std::sync::Arc::default();
    let charm = SunbeamGlance {
        seen: std::sync::Arc::clone(&seen),
    };
    sim.model
        .deploy_scripted("glance-k8s", Box::new(charm), 1)
        .unwrap();
    seen
}

#[test]
fn a_sunbeam_consumer_gets_its_reply_in_the_app_bag_and_credentials_in_a_secret() {
    let mut sim = Sim::ready(2);
    let seen = deploy_sunbeam_glance(&mut sim);
    sim.model.relate("keystone", "glance-k8s").unwrap();
    sim.settle();
    let (reply, secret) = seen
        .lock()
        .unwrap()
        .clone()
        .expect("glance-k8s saw a reply");
    assert_eq!(reply["api-version"], "3");
    assert_eq!(secret["username"], "glance");
    assert_eq!(reply["service-user-name"], "glance");
    assert_eq!(reply["service-project-name"], "services");
    assert_eq!(reply["service-domain-name"], "service_domain");
    for key in [
        "service-project-id",
        "service-domain-id",
        "service-user-id",
        "admin-domain-id",
        "internal-auth-url",
        "public-auth-url",
    ] {
        assert!(
            reply.get(key).is_some_and(|v| !v.is_empty()),
            "{key}: {reply:?}"
        );
    }
    // The credentials work; the endpoints are in the consumer's region.
    let credentials = PasswordCredentials {
        user_name: secret["username"].clone(),
        user_domain: DomainRef::Id(reply["service-domain-id"].clone()),
        password: Sensitive::new(secret["password"].clone()),
    };
    let scope = Scope::Project {
        domain: DomainRef::Name(SERVICE_DOMAIN.into()),
        name: reply["service-project-name"].clone(),
    };
    let mut keystone = sim.keystone.lock().unwrap();
    keystone.authenticate(&credentials, &scope).unwrap();
    let service = keystone.find_service("glance", "image").unwrap().unwrap();
    let endpoints = keystone.list_endpoints(&service.id).unwrap();
    assert!(!endpoints.is_empty());
    assert!(
        endpoints.iter().all(|e| e.region_id == "RegionTwo"),
        "{endpoints:?}"
    );
}

/// The latest content of the credentials secret a Sunbeam-style reply names.
fn latest_secret(sim: &mut Sim, reply: &Databag) -> Databag {
    let id = reply["service-credentials"].trim_start_matches("secret:");
    let world = sim.model.world();
    let secret = &world.secrets[id];
    secret
        .revisions
        .last()
        .unwrap()
        .clone()
        .into_iter()
        .collect()
}

#[test]
fn a_sunbeam_consumers_rotated_password_reaches_its_secret_and_the_secret_goes_with_it() {
    let mut sim = Sim::ready(2);
    let seen = deploy_sunbeam_glance(&mut sim);
    sim.model.relate("keystone", "glance-k8s").unwrap();
    sim.settle();
    let (reply, before) = seen.lock().unwrap().clone().unwrap();
    let task = sim.action("keystone/1", "list-service-usernames", json!({}));
    assert_eq!(task.results["usernames"], "glance");
    let task = sim.action(
        "keystone/0",
        "rotate-service-user-password",
        json!({"service-user": "glance"}),
    );
    assert_eq!(task.status, "completed", "{task:?}");
    sim.settle();
    let after = latest_secret(&mut sim, &reply);
    assert_eq!(after["username"], "glance");
    assert_ne!(after["password"], before["password"]);
    let login = |sim: &Sim, password: &str| {
        let domain = DomainRef::Id(reply["service-domain-id"].clone());
        logs_in(sim, "glance", domain, password)
    };
    assert!(login(&sim, &after["password"]));
    assert!(!login(&sim, &before["password"]));

    // The relation goes: nobody may read the credentials any more, so the secret goes too.
    let id = sim
        .model
        .relation_id("glance-k8s", "identity-service")
        .unwrap();
    sim.model.unrelate(id).unwrap();
    sim.settle();
    let secret_id = reply["service-credentials"].trim_start_matches("secret:");
    assert!(!sim.model.world().secrets.contains_key(secret_id));
    assert!(sim.logs("keystone/0", "WARNING").is_empty());
    let task = sim.action("keystone/0", "list-service-usernames", json!({}));
    assert_eq!(task.results["usernames"], "", "{task:?}");
}

#[test]
fn malformed_sunbeam_requests_are_refused() {
    let bag = |endpoints: &str, roles: Option<&str>| {
        let mut bag = Databag::from([
            ("service-endpoints".to_owned(), endpoints.to_owned()),
            ("region".to_owned(), "RegionOne".to_owned()),
        ]);
        if let Some(roles) = roles {
            bag.insert("extra-roles".into(), roles.into());
        }
        bag
    };
    let good = r#"[{"service_name":"glance","internal_url":"http://g:9292","public_url":"http://g:9292","admin_url":"http://g:9292"}]"#;
    let request = parse_app_request(&bag(good, Some(r#"["reader"]"#)))
        .unwrap()
        .unwrap();
    assert_eq!(request.extra_roles, ["reader"]);
    assert!(parse_app_request(&bag("not json", None)).is_err());
    assert!(parse_app_request(&bag(good, Some("reader"))).is_err());
    assert!(parse_app_request(&bag(good, Some(r#"["a\nb"]"#))).is_err());
    let unknown = good.replace("glance", "frobnicator");
    assert!(matches!(
        parse_app_request(&bag(&unknown, None)),
        Err(RequestError::UnknownService { key, .. }) if key == "service-endpoints[0].service"
    ));
    assert_eq!(parse_app_request(&Databag::new()).unwrap(), None);
}

/// The benchmark of the issue, in memory: 100 identity relations of mixed forms. Prints its
/// figures (`cargo test scale -- --nocapture`).
#[test]
fn at_scale_a_no_op_hook_costs_nothing_and_one_changed_url_costs_that_consumer_only() {
    let deploy = |consumers: usize| {
        let mut sim = Sim::ready(1);
        for n in 0..consumers {
            let app = format!("svc{n}");
            let (service, interface) = match n % 3 {
                0 => ("glance", IdentityInterface::Service),
                1 => ("cinder", IdentityInterface::Service),
                _ => (app.as_str(), IdentityInterface::Credentials),
            };
            let consumer = IdentityConsumer::new(service, interface);
            sim.model
                .deploy_scripted(&app, Box::new(consumer), 1)
                .unwrap();
            sim.model.relate("keystone", &app).unwrap();
        }
        sim.settle();
        sim
    };
    let no_op = |sim: &mut Sim| {
        let before = sim.keystone.lock().unwrap().request_count();
        assert!(sim.run("keystone/0", "config-changed"));
        let after = sim.keystone.lock().unwrap().request_count();
        let tools = sim.tools_called("keystone/0");
        (after.total - before.total, tools)
    };
    let mut one = deploy(1);
    let (_, small) = no_op(&mut one);
    let mut many = deploy(100);
    let (requests, tools) = no_op(&mut many);
    println!(
        "config-changed, nothing changed: 1 relation {} tool calls; 100 relations {} tool calls, \
         {requests} Keystone requests, {} relation-set",
        small.len(),
        tools.len(),
        tools.iter().filter(|t| *t == "relation-set").count()
    );
    assert_eq!(tools.len(), small.len(), "{tools:?}");
    assert_eq!(
        requests, 0,
        "Keystone answered in the last hook and nothing changed"
    );
    assert!(!tools.contains(&"relation-set".to_owned()));

    // One consumer's URL changes: only its objects are looked at in Keystone.
    let id = many.model.relation_id("svc0", "identity-service").unwrap();
    many.model
        .world()
        .relations
        .get_mut(&id)
        .unwrap()
        .unit_data
        .get_mut("svc0/0")
        .unwrap()
        .insert("public_url".into(), "http://glance.example.com:9292".into());
    let mut event = juju_sim::state::HookEvent::simple("identity-service-relation-changed");
    event.relation = Some(id);
    event.remote_unit = Some("svc0/0".into());
    event.remote_app = Some("svc0".into());
    let before = many.keystone.lock().unwrap().request_count();
    many.model.world().queue("keystone/0", event);
    many.model.settle_unit("keystone/0").unwrap();
    let after = many.keystone.lock().unwrap().request_count();
    let single = {
        let mut api = keystone();
        let request = parse_request(&single("glance")).unwrap().unwrap();
        let password = Sensitive::new("pw".to_owned());
        let objects = objects(&request, &settings(), Some(("glance", &password)));
        identity::ensure_objects(&mut api, &objects).unwrap();
        let first = api.request_count().total;
        identity::ensure_objects(&mut api, &objects).unwrap();
        api.request_count().total - first
    };
    println!(
        "one consumer's URL changed, 100 relations: {} Keystone requests ({} writes); one \
         consumer's objects take {single} requests to check",
        after.total - before.total,
        after.writes - before.writes
    );
    // The login, that consumer's objects (checked in two regions above,
    // one in the deployment) and the endpoint's update: one consumer's cost, not a hundred's.
    assert!(
        after.total - before.total <= single + 3,
        "{after:?} {before:?}"
    );
    assert!(after.writes - before.writes >= 1);
    let service = many
        .keystone
        .lock()
        .unwrap()
        .find_service("glance", "image")
        .unwrap()
        .unwrap();
    let urls: Vec<String> = many
        .keystone
        .lock()
        .unwrap()
        .list_endpoints(&service.id)
        .unwrap()
        .into_iter()
        .map(|e| e.url)
        .collect();
    assert!(
        urls.contains(&"http://glance.example.com:9292".to_owned()),
        "{urls:?}"
    );
}

/// Whether `user` of `domain` gets an unscoped token with `password` from the Keystone twin.
fn logs_in(sim: &Sim, user: &str, domain: DomainRef, password: &str) -> bool {
    let credentials = PasswordCredentials {
        user_name: user.to_owned(),
        user_domain: domain,
        password: Sensitive::new(password.to_owned()),
    };
    sim.keystone
        .lock()
        .unwrap()
        .authenticate(&credentials, &Scope::Unscoped)
        .is_ok()
}

/// Changes a remote unit's bag and tells keystone/0, as Juju does.
fn remote_changes(sim: &mut Sim, app: &str, key: &str, value: &str) {
    let id = sim.model.relation_id(app, "identity-service").unwrap();
    let unit = format!("{app}/0");
    sim.model
        .world()
        .relations
        .get_mut(&id)
        .unwrap()
        .unit_data
        .get_mut(&unit)
        .unwrap()
        .insert(key.into(), value.into());
    let mut event = juju_sim::state::HookEvent::simple("identity-service-relation-changed");
    event.relation = Some(id);
    event.remote_unit = Some(unit);
    event.remote_app = Some(app.into());
    sim.model.world().queue("keystone/0", event);
    sim.settle();
}

#[test]
fn subscribers_hear_of_endpoint_changes_and_only_then() {
    let mut sim = Sim::ready(1);
    let glance = IdentityConsumer::new("glance", IdentityInterface::Service);
    let seen = glance.replies.clone();
    sim.model
        .deploy_scripted("glance", Box::new(glance), 1)
        .unwrap();
    sim.model.relate("keystone", "glance").unwrap();
    sim.settle();
    remote_changes(&mut sim, "glance", "subscribe_ep_change", "nova");
    let heard = |seen: &juju_sim_fixtures::scripted::Replies| {
        seen.lock().unwrap()["glance/0"]["keystone/0"]
            .get("ep_changed")
            .cloned()
    };
    assert_eq!(
        heard(&seen).as_deref(),
        Some("{}"),
        "nova is not registered yet"
    );
    let _ = relate_nova(&mut sim);
    let first = heard(&seen).unwrap();
    let changed: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        changed["nova"]["public"], "http://127.0.1.4:8774/v2.1",
        "{first}"
    );
    assert_eq!(
        seen.lock().unwrap()["glance/0"]["keystone/0"]["catalog_ttl"],
        "60"
    );
    // An unrelated change tells the subscriber nothing new.
    assert!(sim.run("keystone/0", "config-changed"));
    assert_eq!(heard(&seen).unwrap(), first);
    // nova moves: glance hears it in the same hook.
    remote_changes(
        &mut sim,
        "nova",
        "public_url",
        "http://nova.example.com:8774/v2.1",
    );
    let moved: serde_json::Value = serde_json::from_str(&heard(&seen).unwrap()).unwrap();
    assert_eq!(moved["nova"]["public"], "http://nova.example.com:8774/v2.1");
    // In the keystone application's bag too.
    let id = sim.model.relation_id("glance", "identity-service").unwrap();
    let app_bag = sim.model.relation_data(id, "keystone");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&app_bag["ep_changed"]).unwrap(),
        moved
    );
}

#[test]
fn replacing_the_python_charm_keeps_the_consumers_users_and_passwords() {
    let mut sim = Sim::ready(1);
    // What the Python charm left: nova's user in both domains with its password, and that
    // password in its leader settings.
    let python_password = Sensitive::new("python-generated-password".to_owned());
    let ids: Vec<String> = {
        let mut keystone = sim.keystone.lock().unwrap();
        let service_domain = keystone.find_domain(SERVICE_DOMAIN).unwrap().unwrap().id;
        [DEFAULT_DOMAIN_ID.to_owned(), service_domain]
            .iter()
            .map(|domain| {
                keystone
                    .create_user(domain, "nova", &python_password, &[])
                    .unwrap()
                    .id
            })
            .collect()
    };
    sim.model
        .set_leader_setting("keystone", "nova_passwd", python_password.expose())
        .unwrap();
    let writes = sim.keystone.lock().unwrap().request_count().writes;
    let seen = relate_nova(&mut sim);
    let reply = &replies(&seen)["keystone/0"];
    assert_eq!(reply["service_password"], *python_password.expose());
    assert_eq!(
        reply["service_user_id"], ids[1],
        "the same user, not a new one"
    );
    // The user's password was not touched; only the catalog entry and grants were written.
    let credentials = PasswordCredentials {
        user_name: "nova".into(),
        user_domain: DomainRef::Name(SERVICE_DOMAIN.into()),
        password: python_password,
    };
    let mut keystone = sim.keystone.lock().unwrap();
    keystone
        .authenticate(&credentials, &Scope::Unscoped)
        .unwrap();
    assert!(keystone.request_count().writes > writes);
    assert_eq!(
        keystone.users.iter().filter(|u| u.name == "nova").count(),
        2
    );
}

#[test]
fn a_password_the_python_charm_kept_only_in_its_peer_copies_is_adopted() {
    let mut sim = Sim::ready(1);
    let python_password = "python-peer-copy-password";
    sim.keystone
        .lock()
        .unwrap()
        .create_user(
            DEFAULT_DOMAIN_ID,
            "glance",
            &Sensitive::new(python_password.into()),
            &[],
        )
        .unwrap();
    {
        let mut world = sim.model.world();
        let settings = &mut world.apps.get_mut("keystone").unwrap().leader_settings;
        settings.insert(
            "identity-service:12_service_username".into(),
            "glance".into(),
        );
        settings.insert(
            "identity-service:12_service_password".into(),
            python_password.into(),
        );
    }
    let glance = IdentityConsumer::new("glance", IdentityInterface::Service);
    let seen = glance.replies.clone();
    sim.model
        .deploy_scripted("glance", Box::new(glance), 1)
        .unwrap();
    sim.model.relate("keystone", "glance").unwrap();
    sim.settle();
    let reply = seen.lock().unwrap()["glance/0"]["keystone/0"].clone();
    assert_eq!(reply["service_password"], python_password);
    let default_domain = DomainRef::Id(DEFAULT_DOMAIN_ID.into());
    assert!(logs_in(&sim, "glance", default_domain, python_password));
}

#[test]
fn an_address_change_reaches_every_reply_and_keystones_own_endpoints() {
    let mut sim = Sim::ready(2);
    let seen = relate_nova(&mut sim);
    let before = replies(&seen);
    assert_ne!(before["keystone/0"]["service_host"], "keystone.example.com");
    sim.model
        .set_config(
            "keystone",
            json!({"os-public-hostname": "keystone.example.com"})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .unwrap();
    sim.settle();
    let after = replies(&seen);
    for unit in ["keystone/0", "keystone/1"] {
        assert_eq!(
            after[unit]["service_host"], "keystone.example.com",
            "{unit}"
        );
        assert_eq!(after[unit]["internal_host"], before[unit]["internal_host"]);
        assert_eq!(
            after[unit]["service_password"],
            before[unit]["service_password"]
        );
    }
    let mut keystone = sim.keystone.lock().unwrap();
    let identity = keystone
        .find_service("keystone", "identity")
        .unwrap()
        .unwrap();
    let public: Vec<String> = keystone
        .list_endpoints(&identity.id)
        .unwrap()
        .into_iter()
        .filter(|e| e.interface == crate::keystone_api::Interface::Public)
        .map(|e| e.url)
        .collect();
    assert_eq!(public, ["http://keystone.example.com:5000/v3"]);
}

#[test]
fn with_tls_the_reply_says_https_and_carries_the_ca() {
    use crate::testing::b64;
    let (cert, key) = crate::testing::tls_pair(&["keystone.example.com"]);
    let mut sim = Sim::with_database(
        1,
        json!({"ssl_cert": b64(&cert), "ssl_key": b64(&key), "ssl_ca": b64(&cert)}),
    );
    sim.settle();
    let seen = relate_nova(&mut sim);
    let reply = &replies(&seen)["keystone/0"];
    assert_eq!(reply["https_keystone"], "True");
    assert_eq!(reply["ca_cert"], b64(&cert));
    assert_eq!(reply["service_protocol"], "https");
    assert_eq!(reply["auth_protocol"], "https");
}

#[test]
fn no_credentials_while_a_peer_cannot_serve_and_they_come_once_it_can() {
    let mut sim = Sim::ready(2);
    let task = sim.action("keystone/1", "pause", json!({}));
    assert_eq!(task.status, "completed", "{task:?}");
    sim.settle();
    let seen = relate_nova(&mut sim);
    assert!(
        replies(&seen)
            .values()
            .all(|r| !r.contains_key("service_password")),
        "{:?}",
        replies(&seen)
    );
    let task = sim.action("keystone/1", "resume", json!({}));
    assert_eq!(task.status, "completed", "{task:?}");
    sim.settle();
    let after = replies(&seen);
    assert!(
        after["keystone/0"].contains_key("service_password"),
        "{after:?}"
    );
    assert_eq!(
        after["keystone/1"].get("service_password"),
        after["keystone/0"].get("service_password")
    );
}

#[test]
fn before_juju_3_1_the_status_names_the_sunbeam_relations_it_cannot_serve() {
    let mut sim = Sim::with_database_on("2.9.49", 1, json!({}));
    sim.settle();
    assert_eq!(sim.status("keystone/0"), "active: Unit is ready");
    let seen = deploy_sunbeam_glance(&mut sim);
    let id = sim.model.relate("keystone", "glance-k8s").unwrap();
    sim.settle();
    assert_eq!(
        sim.status("keystone/0"),
        format!(
            "active: Unit is ready (identity-service:{id} need Juju secrets (Juju 3.1 or later))"
        )
    );
    assert!(seen.lock().unwrap().is_none());
    assert!(
        sim.logs("keystone/0", "WARNING")
            .iter()
            .any(|l| l.contains("needs Juju 3.1 or later"))
    );
}

/// Regression: on a single unit, every-unit-ready was worked out again only in peer hooks, which
/// a lone unit never gets, so after its first rotation it never served a new consumer.
#[test]
fn a_lone_unit_serves_a_new_consumer_after_a_rotation() {
    let mut sim = Sim::ready(1);
    let task = sim.action("keystone/0", "rotate-fernet", json!({"force": true}));
    assert_eq!(task.status, "completed", "{:?}", task.message);
    sim.settle();
    let nova = IdentityConsumer::new("nova", IdentityInterface::Service);
    sim.model
        .deploy_scripted("nova", Box::new(nova), 1)
        .unwrap();
    let id = sim.model.relate("keystone", "nova").unwrap();
    sim.settle();
    let sent = sim.model.relation_data(id, "keystone/0");
    assert_eq!(
        sent.get("service_username").map(String::as_str),
        Some("nova"),
        "{sent:?}"
    );
}
