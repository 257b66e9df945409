//! An LDAP-backed domain on real services: two keystone units on real Keystone, Apache and
//! MariaDB, a real OpenLDAP directory (slapd) of the test's own, and a scripted keystone-ldap
//! subordinate that writes the domain's configuration on each unit's machine as the real one
//! renders it. Needs root and the packages scripts/install-deps installs.

mod support;

use juju_sim::Model;
use juju_sim_fixtures::demo::{issue_admin_token, request_token, token_status};
use juju_sim_fixtures::scripted::KeystoneLdap;
use juju_sim_fixtures::slapd::Slapd;
use serde_json::{Map, Value, json};
use support::{TempDir, settle};

const DOMAIN: &str = "corp";

fn base(model: &Model, unit: &str) -> String {
    format!("http://{}:5000/v3", model.unit_address(unit).unwrap())
}

fn admin_password(model: &mut Model) -> String {
    let task = model
        .run_action("keystone/0", "get-admin-password", Map::new())
        .unwrap();
    task.results["admin-password"].as_str().unwrap().to_owned()
}

/// `curl` as `token`, with an optional JSON body: the status and the body as JSON.
fn call(method: &str, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let (status, body) = support::call(method, url, token, body.as_ref());
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The id of the one `kind` (`domains`, `groups`, ...) that `query` finds.
fn id_of(base: &str, token: &str, kind: &str, query: &str) -> String {
    let (status, body) = call("GET", &format!("{base}/{kind}?{query}"), token, None);
    assert_eq!(status, 200, "{kind}?{query}: {body}");
    body[kind][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no {kind}?{query}: {body}"))
        .to_owned()
}

/// A token for an LDAP user of the domain, scoped to `project` when given: its status.
fn ldap_login(
    base: &str,
    user: &str,
    password: &str,
    project: Option<&str>,
) -> (u16, Option<String>) {
    let user = json!({"name": user, "domain": {"name": DOMAIN}, "password": password});
    let scope = match project {
        Some(id) => json!({"project": {"id": id}}),
        // Keystone's explicitly unscoped request.
        None => json!("unscoped"),
    };
    let reply = request_token(base, &user, &scope, &[]).unwrap();
    (reply.status, reply.subject_token)
}

/// The end of Keystone's log on `unit`, for a failure's story.
fn keystone_log(model: &Model, unit: &str) -> String {
    let log = std::fs::read_to_string(model.unit_path(unit, "/var/log/keystone/keystone.log"))
        .unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[test]
fn an_ldap_domains_users_sign_in_on_every_unit_until_its_directory_or_relation_goes() {
    let out = TempDir::new("ldap-real");
    let charm = support::pack_charm(&out);
    let mut model = support::keystone_on_mariadb(&charm, "ldap", 2, support::lean(Map::new()));
    settle(&mut model);
    let units = model.units("keystone");

    // The directory, on this host, where the units reach MariaDB too.
    let host = model
        .host_address()
        .expect("the host's address on the units' network");
    let mut slapd = Slapd::start(&out.path().join("slapd"), &host, "Ldap-admin-4711").unwrap();
    slapd.add_user("alice", "Alice-pw-1").unwrap();
    slapd.add_user("bob", "Bob-pw-1").unwrap();
    slapd.add_group("operators", &["alice"]).unwrap();

    let mut ldap = KeystoneLdap::new(DOMAIN);
    let files = units
        .iter()
        .map(|unit| {
            let n = unit.rsplit('/').next().unwrap();
            let path = model.unit_path(
                unit,
                &format!("/etc/keystone/domains/keystone.{DOMAIN}.conf"),
            );
            (format!("keystone-ldap/{n}"), path)
        })
        .collect();
    ldap.config = Some((slapd.domain_config(), files));
    model
        .deploy_scripted("keystone-ldap", Box::new(ldap), units.len())
        .unwrap();
    let relation = model.relate("keystone", "keystone-ldap").unwrap();
    settle(&mut model);
    for unit in &units {
        assert_eq!(
            model.unit_status(unit),
            Some(("active".to_owned(), "Unit is ready".to_owned())),
            "{unit}"
        );
    }

    // The leader created the domain; the operators group (from LDAP) gets a role on a project.
    let first = base(&model, &units[0]);
    let password = admin_password(&mut model);
    let admin = issue_admin_token(&first, &password, &[]).unwrap();
    let domain = id_of(&first, &admin, "domains", &format!("name={DOMAIN}"));
    let (status, project) = call(
        "POST",
        &format!("{first}/projects"),
        &admin,
        Some(json!({"project": {"name": "ldap-work", "domain_id": domain}})),
    );
    assert_eq!(status, 201, "{project}");
    let project = project["project"]["id"].as_str().unwrap().to_owned();
    let group = id_of(
        &first,
        &admin,
        "groups",
        &format!("domain_id={domain}&name=operators"),
    );
    let role = id_of(&first, &admin, "roles", "name=member");
    let grant = format!("{first}/projects/{project}/groups/{group}/roles/{role}");
    assert_eq!(call("PUT", &grant, &admin, None).0, 204);

    // Alice, through her group, on every unit; her token validates on the other units.
    for unit in &units {
        let here = base(&model, unit);
        let (status, token) = ldap_login(&here, "alice", "Alice-pw-1", Some(&project));
        assert_eq!(status, 201, "alice's project token on {unit}");
        for other in &units {
            let there = base(&model, other);
            let admin_there = issue_admin_token(&there, &password, &[]).unwrap();
            let token = token.as_deref().unwrap();
            assert_eq!(
                token_status(&there, &admin_there, token).unwrap(),
                200,
                "{other}"
            );
        }
        // A wrong password, and a user whose groups hold no role on the project.
        assert_eq!(ldap_login(&here, "alice", "wrong", None).0, 401, "{unit}");
        assert_eq!(ldap_login(&here, "bob", "Bob-pw-1", None).0, 201, "{unit}");
        assert_eq!(
            ldap_login(&here, "bob", "Bob-pw-1", Some(&project)).0,
            401,
            "{unit}"
        );
    }

    // The directory stops: its users fail, SQL users do not, and no hook fails.
    slapd.stop().unwrap();
    for unit in &units {
        let here = base(&model, unit);
        assert_ne!(
            ldap_login(&here, "alice", "Alice-pw-1", None).0,
            201,
            "{unit}"
        );
        issue_admin_token(&here, &password, &[]).unwrap();
        for hook in ["update-status", "config-changed"] {
            model.queue_hook(unit, hook);
        }
    }
    settle(&mut model);
    for unit in &units {
        let run = model
            .hook_log()
            .into_iter()
            .rev()
            .find(|r| r.unit == *unit)
            .unwrap();
        assert_eq!(run.exit_code, 0, "{unit}: {}", run.stderr);
    }
    slapd.resume().unwrap();
    assert_eq!(ldap_login(&first, "alice", "Alice-pw-1", None).0, 201);

    // The relation goes: the domain's file with it, and its users are refused everywhere.
    model.unrelate(relation).unwrap();
    settle(&mut model);
    for unit in &units {
        let file = model.unit_path(
            unit,
            &format!("/etc/keystone/domains/keystone.{DOMAIN}.conf"),
        );
        assert!(!file.exists(), "{}", file.display());
        let here = base(&model, unit);
        // No token. (Keystone answers 500: it keeps the users it saw in LDAP as non-local users,
        // and its SQL driver fails on them rather than refusing them.)
        let refused = ldap_login(&here, "alice", "Alice-pw-1", None).0;
        assert!(
            refused == 401 || refused == 500,
            "{unit}: {refused}\n{}",
            keystone_log(&model, unit)
        );
        issue_admin_token(&here, &password, &[]).unwrap();
    }
}
