//! Users from outside Keystone's database, on real services: two keystone units on real
//! Keystone, Apache and MariaDB, in one deployment for both of
//! - federation: an OpenID Connect provider of the test's own signs bearer tokens, and a
//!   scripted keystone-openidc subordinate configures Debian's mod_auth_openidc in front of
//!   Keystone's federation endpoint as the real one does;
//! - an LDAP-backed domain: a real OpenLDAP directory (slapd) of the test's own, and a scripted
//!   keystone-ldap subordinate that writes the domain's configuration on each unit's machine as
//!   the real one renders it.
//!
//! Needs root and the packages scripts/install-deps installs.

mod support;

use juju_sim::Model;
use juju_sim_fixtures::demo::{http, issue_admin_token, request_token, token_status};
use juju_sim_fixtures::oidc::OidcProvider;
use juju_sim_fixtures::scripted::{KeystoneLdap, KeystoneOpenidc, OpenidcProvider};
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
    log_tail(model, unit, "/var/log/keystone/keystone.log")
}

/// The end of Apache's error log for Keystone on `unit` (mod_auth_openidc's say).
fn apache_log(model: &Model, unit: &str) -> String {
    log_tail(model, unit, "/var/log/apache2/keystone_error.log")
}

fn log_tail(model: &Model, unit: &str, path: &str) -> String {
    let log = std::fs::read_to_string(model.unit_path(unit, path)).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[test]
fn federated_and_ldap_users_sign_in_on_every_unit_until_their_relation_goes() {
    let out = TempDir::new("external-identity-real");
    let charm = support::pack_charm(&out);
    let mut model = support::keystone_on_mariadb(&charm, "extid", 2, support::lean(Map::new()));
    settle(&mut model);
    let password = admin_password(&mut model);
    openid_federation(&mut model, &out, &password);
    ldap_domain(&mut model, &out, &password);
}

/// A bearer token presented at the identity provider's federation endpoint on `base`: the
/// status, and the token Keystone issued.
fn federated_login(base: &str, extra: &[&str]) -> (u16, Option<String>) {
    let url = format!("{base}/OS-FEDERATION/identity_providers/{IDP}/protocols/openid/auth");
    let mut args = extra.to_vec();
    args.push(&url);
    let reply = http(&args).unwrap();
    (reply.status, reply.subject_token)
}

const IDP: &str = "corp-oidc";

/// mod_auth_openidc verifies the provider's bearer tokens on every unit, Keystone maps their
/// subject to a federated user, and the tokens Keystone issues validate everywhere; a forged,
/// an expired or a missing token gets nothing, however the request dresses up as the module's
/// claims.
fn openid_federation(model: &mut Model, out: &TempDir, password: &str) {
    let units = model.units("keystone");
    let host = model
        .host_address()
        .expect("the host's address on the units' network");
    let provider = OidcProvider::start(&host, &out.path().join("oidc")).unwrap();
    let mut openidc = KeystoneOpenidc::new(IDP);
    openidc.provider = Some(OpenidcProvider {
        metadata_url: provider.metadata_url(),
        jwks_url: provider.jwks_url(),
        ca_file: Some(provider.ca_file().to_path_buf()),
    });
    openidc.apache_dirs = units
        .iter()
        .map(|unit| {
            let n = unit.rsplit('/').next().unwrap();
            (
                format!("keystone-openidc/{n}"),
                model.unit_path(unit, "/etc/apache2"),
            )
        })
        .collect();
    let told = std::sync::Arc::clone(&openidc.told);
    model
        .deploy_scripted("keystone-openidc", Box::new(openidc), units.len())
        .unwrap();
    let relation = model.relate("keystone", "keystone-openidc").unwrap();
    settle(model);
    support::assert_ready(model);
    for (n, unit) in units.iter().enumerate() {
        let bag = told.lock().unwrap()[&format!("keystone-openidc/{n}")].clone();
        let address = model.unit_address(unit).unwrap();
        assert_eq!(bag["hostname"], json!(address).to_string(), "{unit}");
        assert_eq!(
            (bag["port"].as_str(), bag["tls-enabled"].as_str()),
            ("5000", "false")
        );
    }

    // The identity provider, its mapping (the token's subject, in a group with a role on a
    // project) and the protocol, made on the first unit. Keystone finds the provider by the
    // issuer, in the variable `[openid] remote_id_attribute` names.
    let first = base(model, &units[0]);
    let admin = issue_admin_token(&first, password, &[]).unwrap();
    let (status, group) = call(
        "POST",
        &format!("{first}/groups"),
        &admin,
        Some(json!({"group": {"name": "federated", "domain_id": "default"}})),
    );
    assert_eq!(status, 201, "{group}");
    let group = group["group"]["id"].as_str().unwrap().to_owned();
    let (status, project) = call(
        "POST",
        &format!("{first}/projects"),
        &admin,
        Some(json!({"project": {"name": "federated-work", "domain_id": "default"}})),
    );
    assert_eq!(status, 201, "{project}");
    let project = project["project"]["id"].as_str().unwrap().to_owned();
    let role = id_of(&first, &admin, "roles", "name=member");
    let grant = format!("{first}/projects/{project}/groups/{group}/roles/{role}");
    assert_eq!(call("PUT", &grant, &admin, None).0, 204);
    let rules = json!([{
        "local": [{"user": {"name": "{0}"}}, {"group": {"id": group}}],
        "remote": [{"type": "HTTP_OIDC_SUB"}]
    }]);
    let federation = format!("{first}/OS-FEDERATION");
    for (url, body) in [
        (
            format!("{federation}/mappings/corp-oidc"),
            json!({"mapping": {"rules": rules}}),
        ),
        (
            format!("{federation}/identity_providers/{IDP}"),
            json!({"identity_provider": {"remote_ids": [provider.issuer()], "enabled": true}}),
        ),
        (
            format!("{federation}/identity_providers/{IDP}/protocols/openid"),
            json!({"protocol": {"mapping_id": "corp-oidc"}}),
        ),
    ] {
        let (status, reply) = call("PUT", &url, &admin, Some(body));
        assert_eq!(status, 201, "{url}: {reply}");
    }

    // On every unit: an unscoped token for the provider's user, then a project-scoped one; both
    // validate on every unit.
    let admins: Vec<String> = units
        .iter()
        .map(|unit| issue_admin_token(&base(model, unit), password, &[]).unwrap())
        .collect();
    for unit in &units {
        let here = base(model, unit);
        let bearer = format!(
            "Authorization: Bearer {}",
            provider.token("carol", 300).unwrap()
        );
        let (status, unscoped) = federated_login(&here, &["-H", &bearer]);
        assert_eq!(
            status,
            201,
            "carol's federated login on {unit}
{}",
            keystone_log(model, unit)
        );
        let unscoped = unscoped.unwrap();
        let body = json!({"auth": {
            "identity": {"methods": ["token"], "token": {"id": unscoped}},
            "scope": {"project": {"id": project}}
        }});
        let scoped = support::post_auth(&here, &body);
        assert_eq!(
            scoped.status, 201,
            "carol's project token on {unit}: {}",
            scoped.body
        );
        let scoped = scoped.subject_token.unwrap();
        for (other, admin) in units.iter().zip(&admins) {
            let there = base(model, other);
            for token in [&unscoped, &scoped] {
                assert_eq!(token_status(&there, admin, token).unwrap(), 200, "{other}");
            }
        }

        // What an attacker might present instead gets no token: a token signed with a key the
        // provider does not publish, or an expired one.
        let forged = format!(
            "Authorization: Bearer {}",
            provider.forged_token("carol").unwrap()
        );
        let expired = format!(
            "Authorization: Bearer {}",
            provider.token("carol", -60).unwrap()
        );
        for (what, header) in [("forged", &forged), ("expired", &expired)] {
            let (status, token) = federated_login(&here, &["-H", header]);
            assert_eq!(
                (status, token),
                (401, None),
                "{what} on {unit}\n{}",
                apache_log(model, unit)
            );
        }
        // Nor does a request with no token and the module's claim headers set by hand: the
        // module sends it to the provider's login page. (Asked of this unit's Apache itself:
        // the module sends a browser only to a redirect URI on the host it asked, and each
        // unit names its own address when neither a VIP nor os-public-hostname names one.)
        let address = model.unit_address(unit).unwrap();
        let apache = format!("http://{address}:4990/v3");
        let url = format!("{apache}/OS-FEDERATION/identity_providers/{IDP}/protocols/openid/auth");
        let issuer = format!("OIDC-iss: {}", provider.issuer());
        let reply = http(&["-H", &issuer, "-H", "OIDC-sub: carol", &url]).unwrap();
        assert_eq!(
            (reply.status, reply.subject_token),
            (302, None),
            "claims by hand on {unit}\n{}",
            apache_log(model, unit)
        );
        let login_page = format!("{}/authorize?", provider.issuer());
        assert!(reply.body.contains(&login_page), "{}", reply.body);
    }

    // The relation goes: the federation endpoint is Keystone's own again, and it refuses
    // what the module would have let through.
    model.unrelate(relation).unwrap();
    settle(model);
    support::assert_ready(model);
    for unit in &units {
        let here = base(model, unit);
        let bearer = format!(
            "Authorization: Bearer {}",
            provider.token("carol", 300).unwrap()
        );
        assert_eq!(federated_login(&here, &["-H", &bearer]).0, 401, "{unit}");
        issue_admin_token(&here, password, &[]).unwrap();
    }
}

/// An LDAP domain's users sign in on every unit until the directory or the relation goes.
fn ldap_domain(model: &mut Model, out: &TempDir, password: &str) {
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
    settle(model);
    support::assert_ready(model);

    // The leader created the domain; the operators group (from LDAP) gets a role on a project.
    let first = base(model, &units[0]);
    let admin = issue_admin_token(&first, password, &[]).unwrap();
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
        let here = base(model, unit);
        let (status, token) = ldap_login(&here, "alice", "Alice-pw-1", Some(&project));
        assert_eq!(status, 201, "alice's project token on {unit}");
        for other in &units {
            let there = base(model, other);
            let admin_there = issue_admin_token(&there, password, &[]).unwrap();
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
        let here = base(model, unit);
        assert_ne!(
            ldap_login(&here, "alice", "Alice-pw-1", None).0,
            201,
            "{unit}"
        );
        issue_admin_token(&here, password, &[]).unwrap();
        for hook in ["update-status", "config-changed"] {
            model.queue_hook(unit, hook);
        }
    }
    settle(model);
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
    settle(model);
    for unit in &units {
        let file = model.unit_path(
            unit,
            &format!("/etc/keystone/domains/keystone.{DOMAIN}.conf"),
        );
        assert!(!file.exists(), "{}", file.display());
        let here = base(model, unit);
        // No token. (Keystone answers 500: it keeps the users it saw in LDAP as non-local users,
        // and its SQL driver fails on them rather than refusing them.)
        let refused = ldap_login(&here, "alice", "Alice-pw-1", None).0;
        assert!(
            refused == 401 || refused == 500,
            "{unit}: {refused}\n{}",
            keystone_log(model, unit)
        );
        issue_admin_token(&here, password, &[]).unwrap();
    }
}
