//! What an attacker would try against three units on real Keystone, Apache, haproxy, memcached
//! and MariaDB, each unit reached on its own Apache (bypassing haproxy), in one deployment:
//! - **the cache**: a change made through one unit is seen on the other two within 1 s, for each
//!   kind of change that Keystone caches (the table is printed first, so that it can be read
//!   for any build); only the application's units reach a memcached, and on a unit only
//!   Keystone and root;
//! - **the policy**: an ordinary project's admin is refused what only the cloud admin may do;
//!   the cloud admin, a domain admin of admin_domain and a service user are not; tokens say
//!   whether they are scoped to the admin project;
//! - **TOTP**: a user with a TOTP credential and a multi-factor rule logs in with a password and
//!   a code, and not with the password alone.
//!
//! Needs root and scripts/install-real-stack.

mod support;

use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use juju_sim_fixtures::demo::{self, HttpReply};
use serde_json::{Map, Value, json};
use support::TempDir;

/// How long a change may take to be seen on another unit.
const SEEN_WITHIN: Duration = Duration::from_secs(1);
/// How long a probe keeps asking before it says "not seen" (the old per-unit caches kept
/// entries for 600 s).
const GIVE_UP: Duration = Duration::from_secs(20);

/// One unit's Keystone, on its own Apache.
#[derive(Clone)]
struct Unit {
    name: String,
    base: String,
}

fn call(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> HttpReply {
    let mut args = vec!["-X", method, "-H", "Content-Type: application/json"];
    let auth;
    if let Some(token) = token {
        auth = format!("X-Auth-Token: {token}");
        args.extend(["-H", &auth]);
    }
    let text;
    if let Some(body) = body {
        text = body.to_string();
        args.extend(["-d", &text]);
    }
    args.push(url);
    demo::http(&args).unwrap_or_else(|e| panic!("{method} {url}: {e:#}"))
}

/// `method` on `/auth/tokens` for the token `subject` (GET validates, DELETE revokes); the status.
fn on_subject(method: &str, unit: &Unit, token: &str, subject: &str) -> u16 {
    let (auth, subject) = (
        format!("X-Auth-Token: {token}"),
        format!("X-Subject-Token: {subject}"),
    );
    let url = format!("{}/auth/tokens", unit.base);
    demo::http(&["-X", method, "-H", &auth, "-H", &subject, &url])
        .unwrap_or_else(|e| panic!("{method} {url}: {e:#}"))
        .status
}

fn json_of(reply: &HttpReply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or(Value::Null)
}

/// A password login of `user` (`{"name", "domain": {"name"}}` or `{"id"}`) with `scope`.
fn login(unit: &Unit, user: Value, password: &str, scope: Option<Value>) -> HttpReply {
    let mut user = user;
    user["password"] = json!(password);
    let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": user}}});
    if let Some(scope) = scope {
        auth["scope"] = scope;
    }
    call(
        "POST",
        &format!("{}/auth/tokens", unit.base),
        None,
        Some(&json!({ "auth": auth })),
    )
}

fn token_of(reply: &HttpReply, what: &str) -> String {
    assert_eq!(reply.status, 201, "{what}: {}", reply.body);
    reply.subject_token.clone().expect("X-Subject-Token")
}

fn project_scope(id: &str) -> Value {
    json!({"project": {"id": id}})
}

/// Creates `kind` (`users`, `projects`, ...) with `body` through `unit`; its id.
fn create(unit: &Unit, token: &str, kind: &str, singular: &str, body: Value) -> String {
    let reply = call(
        "POST",
        &format!("{}/{kind}", unit.base),
        Some(token),
        Some(&json!({ singular: body })),
    );
    assert_eq!(reply.status, 201, "create {singular}: {}", reply.body);
    json_of(&reply)[singular]["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

/// `PATCH <path>` with `body` through `unit`; it must succeed.
fn update(unit: &Unit, token: &str, path: &str, body: Value) {
    let reply = call(
        "PATCH",
        &format!("{}/{path}", unit.base),
        Some(token),
        Some(&body),
    );
    assert_eq!(reply.status, 200, "PATCH {path}: {}", reply.body);
}

/// The string at `pointer` in `GET <path>` through `unit` ("" when there is none).
fn read(unit: &Unit, token: &str, path: &str, pointer: &str) -> String {
    let reply = call("GET", &format!("{}/{path}", unit.base), Some(token), None);
    json_of(&reply)
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn grant(unit: &Unit, token: &str, project: &str, user: &str, role: &str, add: bool) {
    let url = format!("{}/projects/{project}/users/{user}/roles/{role}", unit.base);
    let reply = call(if add { "PUT" } else { "DELETE" }, &url, Some(token), None);
    assert_eq!(reply.status, 204, "{url}: {}", reply.body);
}

/// Each unit and how long it took to see a change (or what it read instead).
type Seen = Vec<(String, Result<f64, String>)>;

/// What a probe reads on a unit (a status, a value), to compare with what the change makes it.
type Probe<'a> = &'a (dyn Fn(&Unit) -> String + Sync);

/// How long after `since` `unit` first read `want`: the start of the first probe that read it
/// (so a probe's own time does not count); else what it read last.
fn seen_after(unit: &Unit, since: Instant, probe: Probe<'_>, want: &str) -> Result<f64, String> {
    loop {
        let asked = Instant::now();
        let read = probe(unit);
        if read == want {
            return Ok(asked.duration_since(since).as_secs_f64());
        }
        if since.elapsed() > GIVE_UP {
            return Err(read);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Makes `change` through `writer`, then probes every unit at once, the writer too; (unit,
/// seconds or what it read instead).
fn propagation(
    writer: &Unit,
    units: &[Unit],
    change: impl FnOnce(&Unit),
    probe: Probe<'_>,
    want: &str,
) -> Seen {
    change(writer);
    let since = Instant::now();
    std::thread::scope(|scope| {
        let probes: Vec<_> = units
            .iter()
            .map(|unit| {
                scope.spawn(move || (unit.name.clone(), seen_after(unit, since, probe, want)))
            })
            .collect();
        probes.into_iter().map(|p| p.join().unwrap()).collect()
    })
}

/// RFC 6238's code for `secret` now (30 s steps, 6 digits, HMAC-SHA-1), as Keystone checks it.
fn totp(secret: &[u8]) -> String {
    let step = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", value % 1_000_000)
}

/// RFC 4648 base32, padded, as Python's base64.b32decode reads it.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in bytes.chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = block.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(ALPHABET[((bits >> (35 - 5 * i)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base32_and_totp_match_their_rfcs() {
    assert_eq!(base32(b"foobar"), "MZXW6YTBOI======");
    assert_eq!(base32(b"fooba"), "MZXW6YTB");
    assert_eq!(totp(b"12345678901234567890").len(), 6);
}

#[test]
fn three_units_share_one_coherent_guarded_cache_confine_admins_and_accept_totp() {
    let out = TempDir::new("security");
    let charm = support::pack_charm(&out);
    let (mut model, _vip) =
        support::deploy_behind_vip(&charm, "security", 12, support::lean(Map::new()));
    let units: Vec<Unit> = model
        .units("keystone")
        .into_iter()
        .map(|name| Unit {
            base: format!(
                "http://{}:4990/v3",
                model.unit_address(&name).expect("an address")
            ),
            name,
        })
        .collect();
    assert_eq!(units.len(), 3);
    let password = model
        .run_action("keystone/0", "get-admin-password", Map::new())
        .unwrap()
        .results["admin-password"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = json!({"name": "admin", "domain": {"name": "admin_domain"}});
    let admin_project = json!({"project": {"name": "admin", "domain": {"name": "admin_domain"}}});
    let writer = &units[0];
    let cloud_admin = token_of(
        &login(
            writer,
            admin.clone(),
            &password,
            Some(admin_project.clone()),
        ),
        "the cloud admin",
    );
    let member = {
        let reply = call(
            "GET",
            &format!("{}/roles?name=member", writer.base),
            Some(&cloud_admin),
            None,
        );
        json_of(&reply)["roles"][0]["id"]
            .as_str()
            .expect("the member role")
            .to_owned()
    };
    let admin_role = {
        let reply = call(
            "GET",
            &format!("{}/roles?name=Admin", writer.base),
            Some(&cloud_admin),
            None,
        );
        json_of(&reply)["roles"][0]["id"]
            .as_str()
            .expect("the Admin role")
            .to_owned()
    };
    let new_user = |name: &str, pw: &str| {
        create(
            writer,
            &cloud_admin,
            "users",
            "user",
            json!({"name": name, "domain_id": "default", "password": pw}),
        )
    };
    let new_project = |name: &str| {
        create(
            writer,
            &cloud_admin,
            "projects",
            "project",
            json!({"name": name, "domain_id": "default"}),
        )
    };

    // ---- The cache: each change through keystone/0, seen on the others. -------------------
    let mut table: Vec<(&str, Seen)> = Vec::new();
    let scoped_login = |unit: &Unit, user: &str, pw: &str, project: &str| {
        login(unit, json!({"id": user}), pw, Some(project_scope(project))).status
    };

    let (u1, p1) = (
        new_user("sec-grantee", "Grantee-pw-1"),
        new_project("sec-p1"),
    );
    // Every unit has cached "no role" before the grant.
    for unit in &units {
        assert_eq!(scoped_login(unit, &u1, "Grantee-pw-1", &p1), 401);
    }
    table.push((
        "grant a role",
        propagation(
            writer,
            &units,
            |w| grant(w, &cloud_admin, &p1, &u1, &member, true),
            &|u| scoped_login(u, &u1, "Grantee-pw-1", &p1).to_string(),
            "201",
        ),
    ));
    table.push((
        "remove a role",
        propagation(
            writer,
            &units,
            |w| grant(w, &cloud_admin, &p1, &u1, &member, false),
            &|u| scoped_login(u, &u1, "Grantee-pw-1", &p1).to_string(),
            "401",
        ),
    ));

    let u2 = new_user("sec-disabled", "Disabled-pw-2");
    for unit in &units {
        assert_eq!(
            login(unit, json!({"id": u2}), "Disabled-pw-2", None).status,
            201
        );
    }
    table.push((
        "disable a user",
        propagation(
            writer,
            &units,
            |w| {
                update(
                    w,
                    &cloud_admin,
                    &format!("users/{u2}"),
                    json!({"user": {"enabled": false}}),
                )
            },
            &|u| {
                login(u, json!({"id": u2}), "Disabled-pw-2", None)
                    .status
                    .to_string()
            },
            "401",
        ),
    ));

    let u3 = new_user("sec-password", "Old-pw-3");
    for unit in &units {
        assert_eq!(login(unit, json!({"id": u3}), "Old-pw-3", None).status, 201);
    }
    table.push((
        "change a password",
        propagation(
            writer,
            &units,
            |w| {
                update(
                    w,
                    &cloud_admin,
                    &format!("users/{u3}"),
                    json!({"user": {"password": "New-pw-3"}}),
                )
            },
            &|u| {
                let new = login(u, json!({"id": u3}), "New-pw-3", None).status;
                let old = login(u, json!({"id": u3}), "Old-pw-3", None).status;
                format!("new {new}, old {old}")
            },
            "new 201, old 401",
        ),
    ));

    let doomed = token_of(
        &login(
            writer,
            admin.clone(),
            &password,
            Some(admin_project.clone()),
        ),
        "a token to revoke",
    );
    let validate = |unit: &Unit, token: &str| on_subject("GET", unit, &cloud_admin, token);
    for unit in &units {
        assert_eq!(validate(unit, &doomed), 200, "{} validates", unit.name);
    }
    table.push((
        "revoke a token",
        propagation(
            writer,
            &units,
            |w| assert_eq!(on_subject("DELETE", w, &cloud_admin, &doomed), 204),
            &|u| validate(u, &doomed).to_string(),
            "404",
        ),
    ));

    let (u4, p2) = (new_user("sec-tenant", "Tenant-pw-4"), new_project("sec-p2"));
    grant(writer, &cloud_admin, &p2, &u4, &member, true);
    for unit in &units {
        assert_eq!(scoped_login(unit, &u4, "Tenant-pw-4", &p2), 201);
    }
    table.push((
        "disable a project",
        propagation(
            writer,
            &units,
            |w| {
                update(
                    w,
                    &cloud_admin,
                    &format!("projects/{p2}"),
                    json!({"project": {"enabled": false}}),
                )
            },
            &|u| scoped_login(u, &u4, "Tenant-pw-4", &p2).to_string(),
            "401",
        ),
    ));

    let p3 = new_project("sec-p3");
    let description = |unit: &Unit| {
        read(
            unit,
            &cloud_admin,
            &format!("projects/{p3}"),
            "/project/description",
        )
    };
    for unit in &units {
        assert_eq!(description(unit), "");
    }
    table.push((
        "update a project",
        propagation(
            writer,
            &units,
            |w| {
                update(
                    w,
                    &cloud_admin,
                    &format!("projects/{p3}"),
                    json!({"project": {"description": "second"}}),
                )
            },
            &|u| description(u),
            "second",
        ),
    ));

    let service = create(
        writer,
        &cloud_admin,
        "services",
        "service",
        json!({"type": "sec-test", "name": "sec-test"}),
    );
    let endpoint = create(
        writer,
        &cloud_admin,
        "endpoints",
        "endpoint",
        json!({"service_id": service, "interface": "public", "region_id": "RegionOne",
               "url": "http://first.example:1/"}),
    );
    let url_of = |unit: &Unit| {
        read(
            unit,
            &cloud_admin,
            &format!("endpoints/{endpoint}"),
            "/endpoint/url",
        )
    };
    for unit in &units {
        assert_eq!(url_of(unit), "http://first.example:1/");
    }
    table.push((
        "change an endpoint",
        propagation(
            writer,
            &units,
            |w| {
                update(
                    w,
                    &cloud_admin,
                    &format!("endpoints/{endpoint}"),
                    json!({"endpoint": {"url": "http://second.example:2/"}}),
                )
            },
            &|u| url_of(u),
            "http://second.example:2/",
        ),
    ));

    println!(
        "| change (through {}) | unit | seen after (s) |",
        writer.name
    );
    println!("|---|---|---|");
    for (change, seen) in &table {
        for (unit, after) in seen {
            let after = match after {
                Ok(s) => format!("{s:.2}"),
                Err(read) => format!("not within {} s (still {read})", GIVE_UP.as_secs()),
            };
            println!("| {change} | {unit} | {after} |");
        }
    }
    for (change, seen) in &table {
        for (unit, after) in seen {
            assert!(
                after
                    .as_ref()
                    .is_ok_and(|s| *s <= SEEN_WITHIN.as_secs_f64()),
                "{change}: {unit} saw it after {after:?} s"
            );
        }
    }

    // ---- One cache, in use: every unit's haproxy leads to the same memcached, which holds
    // what Keystone cached. ---------------------------------------------------------------------
    let stats: Vec<(String, u64)> = units
        .iter()
        .map(|unit| {
            let out = model
                .exec_on_unit(
                    &unit.name,
                    &[
                        "/bin/bash",
                        "-c",
                        "exec 3<>/dev/tcp/127.0.0.1/11212 && printf 'stats\\r\\nquit\\r\\n' >&3 && timeout 2 cat <&3",
                    ],
                )
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let stat = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
                    .map(|v| v.trim().to_owned())
                    .unwrap_or_else(|| panic!("{}: no {name} in {text:?}", unit.name))
            };
            (stat("pid"), stat("curr_items").parse().unwrap())
        })
        .collect();
    println!("the cache through each unit's haproxy (memcached pid, items): {stats:?}");
    assert!(stats.iter().all(|s| s.0 == stats[0].0), "{stats:?}");
    assert!(stats[0].1 > 10, "Keystone caches in it: {stats:?}");

    // ---- Who reaches the cache. -------------------------------------------------------------
    let addresses: Vec<String> = units
        .iter()
        .map(|u| model.unit_address(&u.name).unwrap())
        .collect();
    // Asks the memcached at `address` (`host/port`) for its version, from `unit` as `user`
    // (None: from this host, outside the application).
    let ask = |from: Option<(&str, &str)>, address: &str| -> bool {
        let script = format!(
            "exec 3<>/dev/tcp/{address} && printf 'version\\r\\n' >&3 && timeout 2 head -c 7 <&3"
        );
        let output = match from {
            None => std::process::Command::new("timeout")
                .args(["3", "bash", "-c", &script])
                .output()
                .unwrap(),
            Some((unit, user)) => model
                .exec_on_unit(
                    unit,
                    &[
                        "/usr/bin/setpriv",
                        &format!("--reuid={user}"),
                        &format!("--regid={user}"),
                        "--clear-groups",
                        "timeout",
                        "3",
                        "bash",
                        "-c",
                        &script,
                    ],
                )
                .unwrap(),
        };
        String::from_utf8_lossy(&output.stdout).starts_with("VERSION")
    };
    for (i, address) in addresses.iter().enumerate() {
        let address = &format!("{address}/11211");
        let other = &units[(i + 1) % units.len()].name;
        assert!(
            ask(Some((other, "keystone")), address),
            "Keystone on {other} reaches the memcached at {address}"
        );
        assert!(
            ask(Some((other, "root")), address),
            "root on {other} reaches the memcached at {address}"
        );
        assert!(
            !ask(Some((other, "nobody")), address),
            "another user on {other} must not reach the memcached at {address}"
        );
        assert!(
            !ask(None, address),
            "a host outside the application must not reach the memcached at {address}"
        );
        let loopback = model
            .exec_on_unit(
                &units[i].name,
                &["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/11211"],
            )
            .unwrap();
        assert!(
            !loopback.status.success(),
            "memcached listens on the cluster address only"
        );
        // Keystone's way in, haproxy on loopback, is Keystone's (and root's) only.
        let unit = units[i].name.as_str();
        assert!(ask(Some((unit, "keystone")), "127.0.0.1/11212"), "{unit}");
        assert!(
            !ask(Some((unit, "nobody")), "127.0.0.1/11212"),
            "another user on {unit} must not reach the cache through haproxy"
        );
    }

    // ---- The policy, through every unit. ---------------------------------------------------
    let (padmin, sec_project) = (
        new_user("sec-project-admin", "Padmin-pw-5"),
        new_project("sec-admins-own"),
    );
    grant(
        writer,
        &cloud_admin,
        &sec_project,
        &padmin,
        &admin_role,
        true,
    );
    let service_user = create(
        writer,
        &cloud_admin,
        "users",
        "user",
        json!({"name": "sec-service", "domain": {"name": "service_domain"}, "password": "Service-pw-6"}),
    );
    // The service project consumers' users are given: `services` in service_domain.
    let lookup = |query: &str, kind: &str| {
        let r = call(
            "GET",
            &format!("{}/{kind}?{query}", writer.base),
            Some(&cloud_admin),
            None,
        );
        json_of(&r)[kind][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind}?{query}: {}", r.body))
            .to_owned()
    };
    let service_domain = lookup("name=service_domain", "domains");
    let services_project = lookup(
        &format!("name=services&domain_id={service_domain}"),
        "projects",
    );
    grant(
        writer,
        &cloud_admin,
        &services_project,
        &service_user,
        &admin_role,
        true,
    );
    for unit in &units {
        let who = &unit.name;
        let reply = login(
            unit,
            json!({"id": padmin}),
            "Padmin-pw-5",
            Some(project_scope(&sec_project)),
        );
        let project_admin = token_of(&reply, "a project admin");
        assert_eq!(
            json_of(&reply)["token"]["is_admin_project"],
            json!(false),
            "{who}"
        );
        let refused = [
            (
                "POST",
                "domains",
                json!({"domain": {"name": format!("sec-evil-{who}")}}),
            ),
            (
                "POST",
                "services",
                json!({"service": {"type": "evil", "name": "evil"}}),
            ),
        ];
        for (method, path, body) in &refused {
            let r = call(
                method,
                &format!("{}/{path}", unit.base),
                Some(&project_admin),
                Some(body),
            );
            assert_eq!(
                r.status, 403,
                "{who}: a project admin {method} /v3/{path}: {}",
                r.body
            );
        }
        for path in ["users", "users?domain_id=default", "domains"] {
            let r = call(
                "GET",
                &format!("{}/{path}", unit.base),
                Some(&project_admin),
                None,
            );
            assert_eq!(
                r.status, 403,
                "{who}: a project admin GET /v3/{path}: {}",
                r.body
            );
        }

        let reply = login(unit, admin.clone(), &password, Some(admin_project.clone()));
        let admin_token = token_of(&reply, "the cloud admin");
        assert_eq!(
            json_of(&reply)["token"]["is_admin_project"],
            json!(true),
            "{who}"
        );
        let domain = create(
            unit,
            &admin_token,
            "domains",
            "domain",
            json!({"name": format!("sec-ok-{}", who.replace('/', "-")), "enabled": false}),
        );
        let r = call(
            "DELETE",
            &format!("{}/domains/{domain}", unit.base),
            Some(&admin_token),
            None,
        );
        assert_eq!(r.status, 204, "{who}: {}", r.body);
        let r = call(
            "GET",
            &format!("{}/users", unit.base),
            Some(&admin_token),
            None,
        );
        assert_eq!(
            r.status, 200,
            "{who}: the cloud admin lists users: {}",
            r.body
        );

        // admin_domain's admin, domain-scoped: cloud-wide by the admin_domain clause.
        let reply = login(
            unit,
            admin.clone(),
            &password,
            Some(json!({"domain": {"name": "admin_domain"}})),
        );
        let domain_admin = token_of(&reply, "admin_domain's admin");
        let r = call(
            "GET",
            &format!("{}/users?domain_id=default", unit.base),
            Some(&domain_admin),
            None,
        );
        assert_eq!(
            r.status, 200,
            "{who}: admin_domain's admin lists Default's users: {}",
            r.body
        );

        // A service user (admin on the service project) registers its service, as consumers do.
        let reply = login(
            unit,
            json!({"id": service_user}),
            "Service-pw-6",
            Some(project_scope(&services_project)),
        );
        let service_token = token_of(&reply, "a service user");
        assert_eq!(
            json_of(&reply)["token"]["is_admin_project"],
            json!(false),
            "{who}"
        );
        let id = create(
            unit,
            &service_token,
            "services",
            "service",
            json!({"type": "sec-svc", "name": format!("sec-svc-{who}")}),
        );
        let r = call(
            "DELETE",
            &format!("{}/services/{id}", unit.base),
            Some(&service_token),
            None,
        );
        assert_eq!(r.status, 204, "{who}: {}", r.body);
    }

    // ---- TOTP: a password and a code, through every unit. -----------------------------------
    let secret = b"keystone-charm-totp!";
    let mfa = new_user("sec-mfa", "Mfa-pw-7");
    create(
        writer,
        &cloud_admin,
        "credentials",
        "credential",
        json!({"type": "totp", "user_id": mfa, "blob": base32(secret)}),
    );
    update(
        writer,
        &cloud_admin,
        &format!("users/{mfa}"),
        json!({"user": {"options": {
            "multi_factor_auth_enabled": true,
            "multi_factor_auth_rules": [["password", "totp"]]}}}),
    );
    for unit in &units {
        let alone = login(unit, json!({"id": mfa}), "Mfa-pw-7", None);
        assert_eq!(
            alone.status, 401,
            "{}: the password alone: {}",
            unit.name, alone.body
        );
        let body = json!({"auth": {"identity": {
            "methods": ["password", "totp"],
            "password": {"user": {"id": mfa, "password": "Mfa-pw-7"}},
            "totp": {"user": {"id": mfa, "passcode": totp(secret)}}}}});
        let both = call(
            "POST",
            &format!("{}/auth/tokens", unit.base),
            None,
            Some(&body),
        );
        assert_eq!(
            both.status, 201,
            "{}: a password and a code: {}",
            unit.name, both.body
        );
    }

    // ---- Policy overrides: a rule the resource denies is denied on every unit, until the
    // option is off again. -------------------------------------------------------------------
    let list_projects = |unit: &Unit| {
        call(
            "GET",
            &format!("{}/projects", unit.base),
            Some(&cloud_admin),
            None,
        )
        .status
    };
    for unit in &units {
        assert_eq!(list_projects(unit), 200, "{}", unit.name);
    }
    let zip = out.path().join("policyd-override.zip");
    std::fs::write(
        out.path().join("deny.yaml"),
        "identity:list_projects: \"!\"\n",
    )
    .unwrap();
    let zipped = std::process::Command::new("zip")
        .args(["-j", "-q"])
        .arg(&zip)
        .arg(out.path().join("deny.yaml"))
        .status()
        .unwrap();
    assert!(zipped.success());
    let policyd = |model: &mut juju_sim::Model, on: bool| {
        let option = json!({"use-policyd-override": on});
        model
            .set_config("keystone", option.as_object().cloned().unwrap())
            .unwrap();
        support::settle(model);
    };
    policyd(&mut model, true);
    model
        .attach_resource(
            "keystone",
            "policyd-override",
            &std::fs::read(&zip).unwrap(),
        )
        .unwrap();
    support::settle(&mut model);
    for unit in &units {
        assert_eq!(
            model.unit_status(&unit.name),
            Some(("active".to_owned(), "PO: Unit is ready".to_owned()))
        );
        assert_eq!(list_projects(unit), 403, "{}: the override", unit.name);
    }
    policyd(&mut model, false);
    for unit in &units {
        assert_eq!(
            list_projects(unit),
            200,
            "{}: without the override",
            unit.name
        );
    }
    support::secrets::assert_no_leaks(&model);
}
