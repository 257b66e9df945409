//! Sites in several models of one controller (juju-sim's Controller), the charm in-process.

use serde_json::json;

use crate::key_sets::KeyMaterial;
use crate::testing::Sites;

const LEADER: &str = "keystone/0";

/// `central` (2 units) is the source of `edge` (1 unit), related and settled.
fn central_and_edge() -> Sites {
    let mut s = Sites::new("3.6.1", &[("central", 2), ("edge", 1)]);
    s.relate("central", "edge");
    s.settle();
    s
}

/// A scheduled rotation falls due at `site`, and its leader's update-status comes.
fn rotation_falls_due(s: &mut Sites, site: &str) {
    s.make_rotation_due(site);
    s.run(site, LEADER, "update-status");
}

fn generation(s: &Sites, site: &str) -> u64 {
    s.peer_app_bag(site)["fernet-generation"].parse().unwrap()
}

fn same_keys(a: &KeyMaterial, b: &KeyMaterial) -> bool {
    a.fingerprint() == b.fingerprint()
}

/// Whether a site's keys are the source's (the source's staged key and primary, and every key
/// of the source's), with perhaps its own former keys as extra secondaries.
fn holds_source(site: &KeyMaterial, source: &KeyMaterial) -> bool {
    [
        (&site.fernet, &source.fernet),
        (&site.credential, &source.credential),
    ]
    .into_iter()
    .all(|(site, source)| {
        let values = key_values(site);
        site.keys()[&0] == source.keys()[&0]
            && site.keys()[&site.primary_index()] == source.keys()[&source.primary_index()]
            && key_values(source).iter().all(|k| values.contains(k))
    })
}

fn key_values(set: &crate::key_sets::KeySet) -> Vec<String> {
    set.keys().values().map(|k| k.expose().to_owned()).collect()
}

#[test]
fn an_edge_adopts_the_sources_keys_and_says_where_they_come_from() {
    let s = central_and_edge();
    let central = s.keys("central", LEADER);
    assert!(holds_source(&s.keys("edge", LEADER), &central));
    assert!(same_keys(&s.keys("central", "keystone/1"), &central));
    assert_eq!(
        s.status("edge", LEADER),
        "active: Unit is ready (keys from central-keystone, generation 1)"
    );
    assert_eq!(s.status("central", LEADER), "active: Unit is ready");
    // The keys travelled in a secret: neither bag holds them.
    let link = s.controller.cross_model_relations()[0].clone();
    let offered = s
        .model("central")
        .relation_data(link.offer.relation, "keystone");
    assert!(offered.contains_key("secret-id"), "{offered:?}");
    assert!(!offered.contains_key("keys"));
    assert_eq!(offered["source"], "central.keystone");
    // The edge acknowledged, under its own name.
    let answered = s
        .model("edge")
        .relation_data(link.consumer.relation, "keystone");
    assert_eq!(answered["site"], "edge.keystone");
    assert_eq!(answered["acknowledged-generation"], "1");
}

#[test]
fn an_edge_never_runs_db_sync_on_the_shared_database() {
    let mut s = central_and_edge();
    let manage = |s: &Sites, site: &str, command: &str| {
        s.machine(site, LEADER)
            .1
            .runner
            .count("keystone-manage", command)
    };
    assert_eq!(manage(&s, "central", "db_sync"), 1);
    // The edge initialised its database before it was related (it was a site of its own);
    // once related it never runs either again.
    let (sync, boot) = (
        manage(&s, "edge", "db_sync"),
        manage(&s, "edge", "bootstrap"),
    );
    s.run("edge", LEADER, "config-changed");
    assert_eq!(manage(&s, "edge", "db_sync"), sync);
    assert_eq!(manage(&s, "edge", "bootstrap"), boot);
}

#[test]
fn an_edge_never_rotates_and_rotate_fernet_names_the_source() {
    let mut s = central_and_edge();
    let before = generation(&s, "edge");
    rotation_falls_due(&mut s, "edge");
    assert_eq!(generation(&s, "edge"), before);
    let task = s.action("edge", LEADER, "rotate-fernet", json!({"force": true}));
    assert_eq!(task.status, "failed");
    let message = task.message.unwrap_or_default();
    assert!(
        message.starts_with(
            "not rotating: this application takes its fernet keys from central-keystone"
        ),
        "{message}"
    );
    assert_eq!(generation(&s, "edge"), before);
}

#[test]
fn a_source_rotation_reaches_every_edge_and_each_acknowledges() {
    let mut s = Sites::new("3.6.1", &[("central", 2), ("edge-a", 1), ("edge-b", 2)]);
    s.relate("central", "edge-a");
    s.relate("central", "edge-b");
    s.settle();
    rotation_falls_due(&mut s, "central");
    assert_eq!(generation(&s, "central"), 2);
    let central = s.keys("central", LEADER);
    for (site, unit) in [
        ("edge-a", LEADER),
        ("edge-b", LEADER),
        ("edge-b", "keystone/1"),
    ] {
        assert!(holds_source(&s.keys(site, unit), &central), "{site} {unit}");
        assert_eq!(
            s.status(site, unit),
            "active: Unit is ready (keys from central-keystone, generation 2)"
        );
    }
}

#[test]
fn a_lagging_edge_holds_back_the_sources_rotation_and_is_named() {
    let mut s = central_and_edge();
    rotation_falls_due(&mut s, "central");
    assert_eq!(generation(&s, "central"), 2);
    // The edge is cut off: it cannot take generation 2, so it never acknowledges it.
    s.controller.cut("edge").unwrap();
    rotation_falls_due(&mut s, "central");
    // Generation 2 reached central before the cut? Rotate once more: it must wait.
    rotation_falls_due(&mut s, "central");
    let g = generation(&s, "central");
    assert!(g <= 3, "rotated past the cut edge: {g}");
    assert_eq!(
        s.status("central", LEADER),
        "active: Unit is ready (fernet rotation waiting for site edge.keystone)"
    );
    // The cut edge keeps serving with the keys it has.
    assert!(
        s.status("edge", LEADER)
            .starts_with("active: Unit is ready (keys from central-keystone")
    );
    let task = s.action("central", LEADER, "rotate-fernet", json!({}));
    assert_eq!(task.status, "failed");
    assert!(
        task.message
            .unwrap_or_default()
            .starts_with("not rotating: site edge.keystone has not acknowledged"),
    );
    // Force names the site it leaves behind.
    let task = s.action("central", LEADER, "rotate-fernet", json!({"force": true}));
    assert_eq!(task.status, "completed", "{task:?}");
    assert_eq!(task.results["forced-past"], "site edge.keystone");
    // Back on the network, the edge catches up and acknowledges.
    s.controller.restore("edge").unwrap();
    s.settle();
    assert!(holds_source(
        &s.keys("edge", LEADER),
        &s.keys("central", LEADER)
    ));
}

#[test]
fn removing_a_lagging_edge_unblocks_the_source() {
    let mut s = central_and_edge();
    s.controller.cut("edge").unwrap();
    rotation_falls_due(&mut s, "central");
    rotation_falls_due(&mut s, "central");
    let waiting = generation(&s, "central");
    assert!(
        s.status("central", LEADER)
            .contains("waiting for site edge.keystone")
    );
    let link = s.controller.cross_model_relations()[0].clone();
    s.controller.restore("edge").unwrap();
    s.controller
        .remove_relation("central", link.offer.relation)
        .unwrap();
    // Nothing waits for the edge any more. Its tokens signed with the key before the primary
    // may still be out there, and when every other holder took the primary is not known: the
    // rotation that was due waits one token lifetime, then happens.
    s.settle();
    assert_eq!(s.status("central", LEADER), "active: Unit is ready");
    assert_eq!(generation(&s, "central"), waiting);
    rotation_falls_due(&mut s, "central");
    assert_eq!(generation(&s, "central"), waiting + 1);
    assert_eq!(s.status("central", LEADER), "active: Unit is ready");
}

#[test]
fn a_source_cannot_take_keys_from_another_source() {
    let mut s = Sites::new("3.6.1", &[("central", 1), ("edge", 1), ("other", 1)]);
    s.relate("central", "edge");
    s.settle();
    // central is a source: relating it to another source is refused.
    s.relate("other", "central");
    s.settle();
    let status = s.status("central", LEADER);
    assert!(
        status.starts_with("blocked: fernet-keys-source: this application shares its keys"),
        "{status}"
    );
    assert!(status.contains("other-keystone"), "{status}");
    // Every unit says so, and central still offers its keys to the edge it had.
    s.run("central", LEADER, "update-status");
    assert_eq!(s.status("central", LEADER), status);
    assert!(
        s.status("edge", LEADER)
            .starts_with("active: Unit is ready (keys from central-keystone")
    );
}

#[test]
fn an_edge_that_leaves_keeps_its_keys_and_rotates_on_its_own() {
    let mut s = central_and_edge();
    let held = s.keys("edge", LEADER);
    let id = s.controller.cross_model_relations()[0].consumer.relation;
    s.controller.remove_relation("edge", id).unwrap();
    s.settle();
    assert!(same_keys(&s.keys("edge", LEADER), &held));
    assert!(
        s.logs("edge", LEADER, "WARNING")
            .iter()
            .any(|l| l.contains("fernet-keys-source: the relation to central-keystone is gone")),
        "{:?}",
        s.logs("edge", LEADER, "WARNING")
    );
    assert_eq!(
        s.status("edge", LEADER),
        "active: Unit is ready (keys were from central-keystone; rotating on its own now)"
    );
    let before = generation(&s, "edge");
    rotation_falls_due(&mut s, "edge");
    assert_eq!(generation(&s, "edge"), before + 1);
    assert_eq!(s.status("edge", LEADER), "active: Unit is ready");
}

#[test]
fn relating_again_merges_so_that_no_key_a_live_token_needs_is_dropped() {
    let mut s = central_and_edge();
    let id = s.controller.cross_model_relations()[0].consumer.relation;
    s.controller.remove_relation("edge", id).unwrap();
    s.settle();
    // On its own, the edge rotates: its tokens are now signed by a key central never had.
    rotation_falls_due(&mut s, "edge");
    let own = s.keys("edge", LEADER);
    s.relate("central", "edge");
    s.settle();
    let merged = s.keys("edge", LEADER);
    let central = s.keys("central", LEADER);
    let values = key_values(&merged.fernet);
    for (index, key) in own.fernet.keys() {
        if *index != 0 {
            assert!(
                values.contains(&key.expose().to_owned()),
                "key {index} dropped"
            );
        }
    }
    for key in key_values(&central.fernet) {
        assert!(values.contains(&key));
    }
    assert_eq!(merged.fernet.keys()[&0], central.fernet.keys()[&0]);
    assert_eq!(
        merged.fernet.keys()[&merged.fernet.primary_index()],
        central.fernet.keys()[&central.fernet.primary_index()]
    );
    assert_eq!(
        s.status("edge", LEADER),
        "active: Unit is ready (keys from central-keystone, generation 1)"
    );
}

#[test]
fn without_cross_model_secrets_the_keys_travel_in_the_bag_and_the_status_says_so() {
    let mut s = Sites::new("3.2.4", &[("central", 1), ("edge", 1)]);
    s.relate("central", "edge");
    s.settle();
    assert!(holds_source(
        &s.keys("edge", LEADER),
        &s.keys("central", LEADER)
    ));
    assert_eq!(
        s.status("central", LEADER),
        "active: Unit is ready (keys shared with other sites in the relation data: whoever can read the relation can read them)"
    );
}

#[test]
fn a_hook_that_changes_nothing_only_reads_the_relations_own_bags() {
    let mut s = Sites::new("3.6.1", &[("central", 2), ("edge", 1), ("plain", 2)]);
    s.relate("central", "edge");
    s.settle();
    let steady: Vec<String> = crate::testing::STEADY_UPDATE_STATUS
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    let extra = |s: &Sites, site: &str, unit: &str| {
        let mut called = s.tools_called(site, unit);
        for tool in &steady {
            if let Some(at) = called.iter().position(|c| c == tool) {
                called.remove(at);
            }
        }
        called
    };
    // The source's leader: each site's name and acknowledgement, and its own offer.
    s.run("central", LEADER, "update-status");
    assert_eq!(
        extra(&s, "central", LEADER),
        ["relation-list", "relation-get", "relation-get"]
    );
    // The edge's leader: the source's offer and its own answer; nothing is written.
    s.run("edge", LEADER, "update-status");
    assert_eq!(extra(&s, "edge", LEADER), ["relation-get", "relation-get"]);
    // A unit that is not the leader: what it does on a site with no other site.
    s.run("central", "keystone/1", "update-status");
    s.run("plain", "keystone/1", "update-status");
    assert_eq!(
        s.tools_called("central", "keystone/1"),
        s.tools_called("plain", "keystone/1")
    );
}

#[test]
fn a_new_edge_leaves_the_database_to_the_source_and_registers_its_own_region() {
    let mut s = Sites::unsettled("3.6.1", &[("central", 1), ("edge", 2)]);
    s.relate_database("central");
    // As Juju deploys a bundle: the edge's relations exist before its units run any hook.
    s.relate("central", "edge");
    s.relate_database("edge");
    s.settle();
    let manage = |s: &Sites, site: &str, command: &str| {
        s.machine(site, LEADER)
            .1
            .runner
            .count("keystone-manage", command)
    };
    assert_eq!(manage(&s, "central", "db_sync"), 1);
    assert_eq!(manage(&s, "central", "bootstrap"), 1);
    assert_eq!(manage(&s, "edge", "db_sync"), 0);
    assert_eq!(manage(&s, "edge", "bootstrap"), 0);
    // The edge's peer relation came first, so its leader made keys before it knew of the
    // source: they are kept as secondaries (they never signed a token, but nothing says so).
    let central = s.keys("central", LEADER);
    for unit in [LEADER, "keystone/1"] {
        assert!(holds_source(&s.keys("edge", unit), &central), "{unit}");
        assert_eq!(
            s.status("edge", unit),
            "active: Unit is ready (keys from central-keystone, generation 1)"
        );
    }
    let regions = s.keystone.lock().unwrap().regions.clone();
    assert!(
        regions.contains("central") && regions.contains("edge"),
        "{regions:?}"
    );
}

/// `central` (1 unit) and `edge` (`edge_units`) as Juju deploys a bundle, except that the edge
/// has no password of the Python charm's to adopt: its leader would make its own.
fn edge_with_its_own_passwords(version: &str, edge_units: usize) -> Sites {
    let mut s = Sites::unsettled(version, &[("central", 1), ("edge", edge_units)]);
    s.controller
        .model_mut("edge")
        .unwrap()
        .world()
        .apps
        .get_mut("keystone")
        .unwrap()
        .leader_settings
        .clear();
    s.relate_database("central");
    s.relate("central", "edge");
    s.relate_database("edge");
    s.settle();
    s
}

fn admin_password(s: &mut Sites, site: &str, unit: &str) -> String {
    let task = s.action(site, unit, "get-admin-password", json!({}));
    assert_eq!(task.status, "completed", "{:?}", task.message);
    task.results["admin-password"].as_str().unwrap().to_owned()
}

#[test]
fn an_edge_logs_in_with_the_sources_admin_credentials() {
    for version in ["3.6.1", "3.2.4"] {
        let mut s = edge_with_its_own_passwords(version, 2);
        // The edge's leader reached the shared Keystone as the charm's admin: its region is
        // registered, and every unit is ready.
        let regions = s.keystone.lock().unwrap().regions.clone();
        assert!(regions.contains("edge"), "{version}: {regions:?}");
        for unit in [LEADER, "keystone/1"] {
            assert!(
                s.status("edge", unit)
                    .starts_with("active: Unit is ready (keys from"),
                "{version} {unit}: {}",
                s.status("edge", unit)
            );
        }
        // One admin password for the one admin user, on every unit of every site.
        let central = admin_password(&mut s, "central", LEADER);
        assert_eq!(
            admin_password(&mut s, "edge", "keystone/1"),
            central,
            "{version}"
        );
        let link = s.controller.cross_model_relations()[0].clone();
        let offered = s
            .model("central")
            .relation_data(link.offer.relation, "keystone");
        assert_eq!(offered["admin-digest"].len(), 64);
        // In a secret granted to the relation where Juju has cross-model secrets, else in the
        // relation data (whose readers the status already warns about).
        match version {
            "3.6.1" => {
                assert!(offered.contains_key("admin-secret-id"), "{offered:?}");
                assert!(!offered.contains_key("admin-credentials"));
            }
            _ => {
                assert!(offered.contains_key("admin-credentials"), "{offered:?}");
                assert!(!offered.contains_key("admin-secret-id"));
            }
        }
    }
}

#[test]
fn the_sources_admin_password_wins_at_the_edge_and_a_rotation_reaches_it() {
    let mut s = edge_with_its_own_passwords("3.6.1", 1);
    // An admin-password set at the edge would change the one admin user for every site: the
    // source's stays in force.
    s.controller
        .model_mut("edge")
        .unwrap()
        .set_config(
            "keystone",
            json!({"admin-password": "edge-only"})
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap();
    s.settle();
    let central = admin_password(&mut s, "central", LEADER);
    assert_eq!(admin_password(&mut s, "edge", LEADER), central);
    // The edge cannot rotate it; the source can, and the edge adopts the new one.
    let task = s.action("edge", LEADER, "rotate-admin-password", json!({}));
    assert_eq!(task.status, "failed");
    let message = task.message.unwrap_or_default();
    assert!(
        message.starts_with("this site takes its admin credentials from central-keystone"),
        "{message}"
    );
    let task = s.action("central", LEADER, "rotate-admin-password", json!({}));
    assert_eq!(task.status, "completed", "{:?}", task.message);
    s.settle();
    let rotated = admin_password(&mut s, "central", LEADER);
    assert_ne!(rotated, central);
    assert_eq!(admin_password(&mut s, "edge", LEADER), rotated);
    // After leaving, the credentials are the edge's own again: its admin-password applies.
    let id = s.controller.cross_model_relations()[0].consumer.relation;
    s.controller.remove_relation("edge", id).unwrap();
    s.settle();
    assert_eq!(admin_password(&mut s, "edge", LEADER), "edge-only");
}

/// A scripted `service` consumer of `site`'s keystone:identity-service, related (not settled).
fn relate_consumer(s: &mut Sites, site: &str, service: &str) {
    use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};
    let model = s.controller.model_mut(site).unwrap();
    model
        .deploy_scripted(
            service,
            Box::new(IdentityConsumer::new(service, IdentityInterface::Service)),
            1,
        )
        .unwrap();
    model
        .relate(
            "keystone:identity-service",
            &format!("{service}:identity-service"),
        )
        .unwrap();
}

/// What `site`'s keystone leader sent `service`: its user and password.
fn credentials_sent(s: &Sites, site: &str, service: &str) -> (String, String) {
    let bag = {
        let world = s.model(site).world();
        world
            .relations
            .values()
            .find(|r| r.remote_app("keystone") == Some(service))
            .and_then(|r| r.unit_data.get(LEADER))
            .cloned()
            .unwrap_or_default()
    };
    let get = |key: &str| {
        bag.get(key).cloned().unwrap_or_else(|| {
            panic!(
                "{site}'s {service} has no {key}: {}",
                s.status(site, LEADER)
            )
        })
    };
    (get("service_username"), get("service_password"))
}

fn logs_in(s: &Sites, user: &str, password: &str) -> bool {
    use crate::keystone_api::KeystoneApi as _;
    let credentials = crate::keystone_api::PasswordCredentials {
        user_name: user.to_owned(),
        user_domain: crate::keystone_api::DomainRef::Name("service_domain".to_owned()),
        password: crate::secret::Sensitive::new(password.to_owned()),
    };
    s.keystone
        .lock()
        .unwrap()
        .authenticate(&credentials, &crate::keystone_api::Scope::Unscoped)
        .is_ok()
}

#[test]
fn a_service_user_has_one_password_at_every_site() {
    let mut s = Sites::unsettled("3.6.1", &[("central", 1), ("edge", 1)]);
    s.relate_database("central");
    relate_consumer(&mut s, "central", "nova");
    s.settle();
    // The edge's own nova and glance: nova exists at the centre already, glance does not.
    s.relate("central", "edge");
    s.relate_database("edge");
    relate_consumer(&mut s, "edge", "nova");
    relate_consumer(&mut s, "edge", "glance");
    s.settle();
    let (user, password) = credentials_sent(&s, "central", "nova");
    assert_eq!(
        credentials_sent(&s, "edge", "nova"),
        (user.clone(), password.clone())
    );
    assert!(logs_in(&s, &user, &password));
    let (glance, edge_password) = credentials_sent(&s, "edge", "glance");
    assert!(logs_in(&s, &glance, &edge_password));
    // The centre's glance, made later, gets the password the edge gave it: neither site
    // changes the other's user.
    relate_consumer(&mut s, "central", "glance");
    s.settle();
    assert_eq!(
        credentials_sent(&s, "central", "glance"),
        (glance.clone(), edge_password.clone())
    );
    assert_eq!(credentials_sent(&s, "edge", "glance").1, edge_password);
    assert!(logs_in(&s, &glance, &edge_password));
    // Rotated at the source, the new password reaches the edge's consumer; the edge cannot
    // rotate it on its own.
    let task = s.action(
        "edge",
        LEADER,
        "rotate-service-user-password",
        json!({"service-user": "nova"}),
    );
    assert_eq!(task.status, "failed");
    assert!(
        task.message
            .unwrap_or_default()
            .contains("run rotate-service-user-password on central-keystone's leader")
    );
    let task = s.action(
        "central",
        LEADER,
        "rotate-service-user-password",
        json!({"service-user": "nova"}),
    );
    assert_eq!(task.status, "completed", "{:?}", task.message);
    s.settle();
    let (_, rotated) = credentials_sent(&s, "central", "nova");
    assert_ne!(rotated, password);
    assert_eq!(credentials_sent(&s, "edge", "nova").1, rotated);
    assert!(logs_in(&s, &user, &rotated));
}

/// Regression (the soak, on a loaded machine): a unit applied a rotation 20 s late and signed
/// tokens with the key before the new primary until then; the next scheduled rotation, on
/// time by the leader's clock, retired that key and those tokens failed everywhere. The leader
/// now counts from when it saw every unit hold the primary.
#[test]
fn a_scheduled_rotation_waits_a_token_lifetime_after_the_last_unit_took_the_primary() {
    let mut s = Sites::new("3.6.1", &[("central", 3)]);
    s.settle();
    // Two rotations, so that the next one retires a key that was primary.
    rotation_falls_due(&mut s, "central");
    s.settle();
    rotation_falls_due(&mut s, "central");
    s.settle();
    let bag = s.peer_app_bag("central");
    let times = |key: &str| -> std::collections::BTreeMap<u32, u64> {
        serde_json::from_str(&bag[key]).unwrap()
    };
    let primary = *times("fernet-primary-since").keys().max().unwrap();
    // Noted as the last unit acknowledged, in the leader's hook that followed.
    let everywhere = times("fernet-primary-everywhere");
    assert!(everywhere.contains_key(&primary), "{everywhere:?}");
    let held = generation(&s, "central");

    // By the schedule and the leader's own clock the rotation is due; but the units took the
    // primary just now.
    let model = s.model("central");
    let id = model.relation_id("keystone", "cluster").unwrap();
    {
        let mut world = model.world();
        let app = world
            .relations
            .get_mut(&id)
            .unwrap()
            .app_data
            .entry("keystone".into())
            .or_default();
        app.insert("fernet-last-rotation".into(), "1000".into());
        let aged: std::collections::BTreeMap<u32, u64> = times("fernet-primary-since")
            .into_keys()
            .map(|k| (k, 1000))
            .collect();
        app.insert(
            "fernet-primary-since".into(),
            serde_json::to_string(&aged).unwrap(),
        );
    }
    s.run("central", LEADER, "update-status");
    assert_eq!(generation(&s, "central"), held, "rotated too soon");
    assert_eq!(s.status("central", LEADER), "active: Unit is ready");
    // A token lifetime after they all held it, it rotates.
    rotation_falls_due(&mut s, "central");
    assert_eq!(generation(&s, "central"), held + 1);
}
