//! What the Juju 3.x CLI prints about the model with `--format yaml`, for tools written against
//! Juju to read: `juju show-unit` and `juju show-secret --reveal`. Fields, their order and which
//! are left out when empty follow the CLI's output structs (cmd/juju/application/showunit.go,
//! cmd/juju/secrets/list.go) and what the controller fills them with.

use sha2::{Digest, Sha256};

use crate::charm::Role;
use crate::goyaml::{self, Node, go_map};
use crate::state::{Bag, Relation, Secret, World};

/// The model keeps no times; Juju prints real ones where this stands.
pub const PLACEHOLDER_TIME: &str = "2025-01-01T00:00:00Z";

/// `juju show-unit <unit> --format yaml`. Empty for a unit the model does not have (or no
/// longer has): Juju prints only an error, on stderr.
pub fn show_unit(world: &World, unit: &str) -> String {
    let Some(u) = world.units.get(unit).filter(|u| u.alive) else {
        return String::new();
    };
    let Some(app) = world.apps.get(&u.app) else {
        return String::new();
    };
    let mut fields: Vec<(String, Node)> = Vec::new();
    let mut field = |name: &str, value: Node| fields.push((name.to_owned(), value));
    // The unit's workload version: the simulator keeps application-version-set per application.
    if !app.version.is_empty() {
        field("workload-version", Node::str(&app.version));
    }
    // As JUJU_MACHINE_ID says in the unit's hooks.
    field("machine", Node::Str(crate::unit_number(unit).to_string()));
    let ports = opened_ports(u.ports.iter().map(String::as_str));
    field(
        "opened-ports",
        Node::Seq(ports.into_iter().map(Node::Str).collect()),
    );
    if !u.address.is_empty() {
        field("public-address", Node::str(&u.address));
    }
    field("charm", Node::Str(charm_url(&app.meta.name, &app.name)));
    field("leader", Node::bool(world.is_leader(unit)));
    field("life", Node::str(if u.dying { "dying" } else { "alive" }));
    let relations: Vec<Node> = world
        .relations
        .values()
        .filter(|r| r.involves(&u.app))
        .filter_map(|r| relation_info(world, r, unit, &u.app))
        .collect();
    if !relations.is_empty() {
        field("relation-info", Node::Seq(relations));
    }
    // provider-id and address are for units in containers (Kubernetes): none here.
    goyaml::to_string(&go_map([(unit.to_owned(), Node::Map(fields))]))
}

/// A local charm's URL: its metadata name (the application's when it has none) and revision 0,
/// the first upload's.
fn charm_url(charm_name: &str, app: &str) -> String {
    let name = if charm_name.is_empty() {
        app
    } else {
        charm_name
    };
    format!("local:{name}-0")
}

/// Port ranges as the controller lists them: by protocol, then first and last port.
fn opened_ports<'a>(ports: impl Iterator<Item = &'a str>) -> Vec<String> {
    let key = |spec: &str| -> (String, i64, i64) {
        let (range, protocol) = spec.split_once('/').unwrap_or((spec, spec));
        let (from, to) = range.split_once('-').unwrap_or((range, range));
        let number = |s: &str| s.parse::<i64>().unwrap_or(-1);
        (protocol.to_owned(), number(from), number(to))
    };
    let mut sorted: Vec<String> = ports.map(str::to_owned).collect();
    sorted.sort_by_key(|spec| key(spec));
    sorted.dedup();
    sorted
}

/// One `relation-info` entry, seen from `unit`: the remote application's bag as
/// `application-data`, every unit of the remote application (the unit's peers for a peer
/// relation, itself as `local-unit`), with its bag while it is in scope. Juju leaves out an
/// entry with no data at all.
fn relation_info(world: &World, rel: &Relation, unit: &str, app: &str) -> Option<Node> {
    let end = rel.end_of(app)?;
    let remote_app = rel.remote_app(app)?;
    let related_end = if rel.is_peer() {
        end
    } else {
        rel.ends.iter().find(|e| e.app != app)?
    };
    let application_data = rel.app_data.get(remote_app).cloned().unwrap_or_default();
    let mut local: Option<(bool, Bag)> = None;
    let mut related: Vec<(String, Node)> = Vec::new();
    for other in world
        .units
        .values()
        .filter(|o| o.app == remote_app && o.alive)
    {
        // A remote unit is in scope in its own model; this model holds its data from then on.
        let in_scope = rel.in_scope.contains(&other.name)
            || (world.is_remote_app(&other.app) && rel.unit_data.contains_key(&other.name));
        let data = if in_scope {
            rel.unit_data.get(&other.name).cloned().unwrap_or_default()
        } else {
            Bag::new()
        };
        if other.name == unit {
            local = Some((in_scope, data));
        } else {
            related.push((other.name.clone(), unit_relation_data(in_scope, &data)));
        }
    }
    // `local-unit` is omitted while it is empty: out of scope with no data.
    let local = local.filter(|(in_scope, data)| *in_scope || !data.is_empty());
    let local_has_data = local.as_ref().is_some_and(|(_, data)| !data.is_empty());
    if application_data.is_empty() && related.is_empty() && !local_has_data {
        return None;
    }
    let mut fields = vec![
        ("relation-id".to_owned(), Node::int(i64::from(rel.id))),
        ("endpoint".to_owned(), Node::str(&end.endpoint)),
        (
            "related-endpoint".to_owned(),
            Node::str(&related_end.endpoint),
        ),
        ("application-data".to_owned(), bag_node(&application_data)),
    ];
    if let Some((in_scope, data)) = local {
        fields.push(("local-unit".to_owned(), unit_relation_data(in_scope, &data)));
    }
    if !related.is_empty() {
        fields.push(("related-units".to_owned(), go_map(related)));
    }
    Some(Node::Map(fields))
}

fn unit_relation_data(in_scope: bool, data: &Bag) -> Node {
    Node::Map(vec![
        ("in-scope".to_owned(), Node::bool(in_scope)),
        ("data".to_owned(), bag_node(data)),
    ])
}

fn bag_node(bag: &Bag) -> Node {
    go_map(bag.iter().map(|(k, v)| (k.clone(), Node::str(v))))
}

/// `juju show-secret <id> --reveal --format yaml` for every secret in the model, in one
/// mapping keyed by secret ID; `{}` when there are none. Copies of other models' secrets
/// granted across cross-model relations are not the model's: they are left out.
pub fn show_secrets_revealed(world: &World) -> String {
    let secrets = world
        .secrets
        .values()
        .filter(|s| world.owns_secret(s))
        .map(|s| (s.id.clone(), secret_details(world, s)));
    goyaml::to_string(&go_map(secrets))
}

fn secret_details(world: &World, secret: &Secret) -> Node {
    let mut fields: Vec<(String, Node)> = Vec::new();
    let mut field = |name: &str, value: Node| fields.push((name.to_owned(), value));
    field("revision", Node::int(i64::from(secret.latest())));
    let content = secret.revisions.last().cloned().unwrap_or_default();
    // Juju 3.6 keeps a checksum of each revision's content.
    if world.version_at_least((3, 6)) && !content.is_empty() {
        field("checksum", Node::Str(checksum(&content)));
    }
    let rotation = secret.rotate.as_deref().filter(|r| !r.is_empty());
    if let Some(policy) = rotation {
        field("rotation", Node::str(policy));
        if let Some(next) = next_rotation(policy) {
            field("rotates", Node::Plain(next.to_owned()));
        }
    }
    field("owner", Node::str(owner_id(&secret.owner)));
    if let Some(description) = secret.description.as_deref().filter(|d| !d.is_empty()) {
        field("description", Node::str(description));
    }
    if let Some(label) = secret.label.as_deref().filter(|l| !l.is_empty()) {
        field("label", Node::str(label));
    }
    field("created", Node::Plain(PLACEHOLDER_TIME.to_owned()));
    field("updated", Node::Plain(PLACEHOLDER_TIME.to_owned()));
    if !content.is_empty() {
        field("content", bag_node(&content));
    }
    let access: Vec<Node> = secret
        .grants
        .iter()
        .filter_map(|(target, relation)| {
            // A grant goes with the relation that carries it.
            let scope = relation_tag(world, world.relations.get(relation)?);
            Some(Node::Map(vec![
                ("target".to_owned(), Node::Str(entity_tag(target))),
                ("scope".to_owned(), Node::Str(scope)),
                ("role".to_owned(), Node::str("view")),
            ]))
        })
        .collect();
    if !access.is_empty() {
        field("access", Node::Seq(access));
    }
    Node::Map(fields)
}

/// `application:<app>` or `unit:<unit>` as Juju prints an owner: its name.
fn owner_id(owner: &str) -> &str {
    owner.split_once(':').map_or(owner, |(_, id)| id)
}

/// When a secret created at [`PLACEHOLDER_TIME`] next rotates under `policy`.
fn next_rotation(policy: &str) -> Option<&'static str> {
    Some(match policy {
        "hourly" => "2025-01-01T01:00:00Z",
        "daily" => "2025-01-02T00:00:00Z",
        "weekly" => "2025-01-08T00:00:00Z",
        "monthly" => "2025-02-01T00:00:00Z",
        "quarterly" => "2025-04-01T00:00:00Z",
        "yearly" => "2026-01-01T00:00:00Z",
        _ => return None,
    })
}

/// Juju's checksum of a secret revision: SHA-256 of the JSON object of its base64-encoded
/// values, keys sorted.
pub fn checksum(content: &std::collections::BTreeMap<String, String>) -> String {
    use base64::Engine as _;
    let encoded: std::collections::BTreeMap<&str, String> = content
        .iter()
        .map(|(k, v)| {
            let value = base64::engine::general_purpose::STANDARD.encode(v);
            (k.as_str(), value)
        })
        .collect();
    // Go's encoder escapes <, > and & in keys; base64 values have none.
    let json = serde_json::to_string(&encoded)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    Sha256::digest(json.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `application-<app>` or `unit-<app>-<n>`.
fn entity_tag(name: &str) -> String {
    match name.split_once('/') {
        Some((app, number)) => format!("unit-{app}-{number}"),
        None => format!("application-{name}"),
    }
}

/// A relation's tag: its key (`<app>:<endpoint>` of each end, requirer first, then provider,
/// then by name) with `:` as `.` and the space as `#`.
fn relation_tag(world: &World, rel: &Relation) -> String {
    let rank = |app: &str| match world.role_of(rel.id, app) {
        Some(Role::Requires) => 0,
        Some(Role::Provides) => 1,
        _ => 2,
    };
    let mut ends: Vec<(u8, String)> = rel
        .ends
        .iter()
        .map(|e| (rank(&e.app), format!("{}:{}", e.app, e.endpoint)))
        .collect();
    ends.sort();
    let key: Vec<String> = ends.into_iter().map(|(_, name)| name).collect();
    format!(
        "relation-{}",
        key.join(" ").replace(':', ".").replace(' ', "#")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_sort_by_protocol_then_number() {
        let ports = ["8080/tcp", "443/tcp", "53/udp", "icmp", "1000-2000/tcp"];
        assert_eq!(
            opened_ports(ports.into_iter()),
            ["icmp", "443/tcp", "1000-2000/tcp", "8080/tcp", "53/udp"]
        );
    }

    #[test]
    fn checksum_is_sha256_of_the_base64_json() {
        let content = [("password".to_owned(), "secret".to_owned())].into();
        let json = r#"{"password":"c2VjcmV0"}"#;
        let expected: String = Sha256::digest(json.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(checksum(&content), expected);
    }

    #[test]
    fn tags_name_units_applications_and_local_charms() {
        assert_eq!(entity_tag("mysql/0"), "unit-mysql-0");
        assert_eq!(entity_tag("mysql"), "application-mysql");
        assert_eq!(charm_url("webapp", "web"), "local:webapp-0");
        assert_eq!(charm_url("", "web"), "local:web-0");
        assert_eq!(owner_id("unit:mysql/0"), "mysql/0");
    }
}
