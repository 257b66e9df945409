//! The `ha` relation (interface `hacluster`): this unit tells its hacluster subordinate which
//! Pacemaker resources to run, exactly as the Python charm (charmhelpers'
//! `generate_ha_relation_data('ks')`) does, so that replacing it changes nothing in Pacemaker.
//!
//! - Sent, in this unit's bag, each value JSON with sorted keys and no spaces between items:
//!   `json_resources`, `json_resource_params`, `json_groups`, `json_init_services`,
//!   `json_clones` and, with VIPs, `json_delete_resources` ([`cluster_resources`]).
//! - Always haproxy: `res_ks_haproxy` (`lsb:haproxy`), cloned as `cl_ks_haproxy`.
//! - VIP mode (`vip`): one `res_ks_<sha1(vip)[:7]>_vip` per address (IPaddr2, or IPv6addr) in
//!   group `grp_ks_vips`. When an interface of this unit is in the VIP's subnet, Pacemaker finds
//!   the NIC and netmask itself; otherwise `vip_iface` and `vip_cidr` name them (the fallback).
//!   The old-style names `res_ks_<interface>_vip` are listed for deletion.
//! - DNS HA (`dns-ha`): one `res_ks_<admin|int|public>_hostname` (`ocf:maas:dns`) per
//!   os-*-hostname set, registering this unit's address on that binding (or in os-*-network),
//!   in group `grp_ks_hostnames`.
//! - Received: `clustered` (any value): written as the [`Clustered`] fact for the steps after this one.
//! - A `json_*` key of [`KEYS`] this unit no longer sends (`json_delete_resources` after a switch
//!   to DNS HA) is unset; the Python charm left it in the bag.
//!
//! Stricter than the Python charm, each as a blocked status that says what to change, with
//! nothing sent: a VIP listed twice; a VIP the fallback cannot place (no subnet of this unit
//! holds it and `vip_iface` is not an interface of this unit, or `vip_cidr` is too long for its
//! address family; a `vip_cidr` whose network holds none of this unit's addresses is the
//! fallback working as meant); a value with a space or a quote (hacluster splits its commands
//! on whitespace); an os-*-network that holds no address of this unit in DNS HA (the Python
//! charm registered another address). hacluster related with neither vip nor dns-ha set blocks
//! too, as it does the Python charm.
//!
//! What the step learns from Juju is kept on the machine ([`crate::paths::HA_STATE`]) and
//! asked again only in the hooks that can change it (ha's own, config-changed, upgrade-charm,
//! start, or when nothing is kept), so every other hook costs no hook-tool call for ha. (An ha
//! hook in which an earlier step blocked leaves it as it was until one of those hooks runs.)

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha1::{Digest as _, Sha1};

use crate::addresses::Role;
use crate::config::Config;
use crate::event::{Endpoint, Event, RelationHook};
use crate::facts::{Clustered, FactName};
use crate::host::fs::Owner;
use crate::host::net::Interface;
use crate::juju::{Bag, Databag, DatabagChanges, RelationId};
use crate::paths;
use crate::step::{Condition, Hook, Step};

pub const ENDPOINT: Endpoint = Endpoint::Ha;
/// The service name in every resource name (`res_ks_haproxy`), as the Python charm.
pub const SERVICE: &str = "ks";
/// The keys this charm owns in its ha bag; any of them it does not send is unset.
pub const KEYS: [&str; 6] = [
    "json_resources",
    "json_resource_params",
    "json_groups",
    "json_init_services",
    "json_clones",
    "json_delete_resources",
];

const HAPROXY_RESOURCE: &str = "res_ks_haproxy";
const HAPROXY_AGENT: &str = "lsb:haproxy";
const HAPROXY_PARAMS: &str =
    r#"meta migration-threshold="INFINITY" failure-timeout="5s" op monitor interval="5s""#;
const HAPROXY_CLONE: &str = "cl_ks_haproxy";
const VIP_GROUP: &str = "grp_ks_vips";
const VIP_MONITOR: &str = r#"op monitor timeout="20s" interval="10s" depth="0""#;
const HOSTNAME_GROUP: &str = "grp_ks_hostnames";
const DNS_AGENT: &str = "ocf:maas:dns";

/// One entry of the `vip` option: the address, and its text as the operator wrote it (the
/// resource's name is a hash of that text, and Pacemaker is given that text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub written: String,
    pub address: IpAddr,
}

impl Vip {
    /// A `vip` entry as written; None when it is not an IP address.
    pub fn new(text: &str) -> Option<Vip> {
        Some(Vip {
            written: text.to_owned(),
            address: text.parse().ok()?,
        })
    }
}

/// The roles in the Python charm's order, which is the DNS HA group's order.
const DNS_ORDER: [Role; 3] = [Role::Admin, Role::Internal, Role::Public];

/// The endpoint type in the DNS resource's name (`res_ks_int_hostname`).
fn resource_part(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Internal => "int",
        Role::Public => "public",
    }
}

fn hostname_option(role: Role) -> &'static str {
    match role {
        Role::Admin => "os-admin-hostname",
        Role::Internal => "os-internal-hostname",
        Role::Public => "os-public-hostname",
    }
}

fn network_option(role: Role) -> &'static str {
    match role {
        Role::Admin => "os-admin-network",
        Role::Internal => "os-internal-network",
        Role::Public => "os-public-network",
    }
}

/// What this unit knows of its network: the machine's interfaces, and the primary address of
/// each extra binding that DNS HA registers (see [`bindings_to_resolve`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitNetwork {
    pub interfaces: Vec<Interface>,
    pub bindings: BTreeMap<Role, IpAddr>,
}

/// Why this unit cannot send its resources; each says what the operator should change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HaError {
    #[error(
        "ha: hacluster is related but neither vip nor dns-ha is set; set vip to the virtual IP(s) Pacemaker should manage (or dns-ha with an os-*-hostname), or remove the ha relation"
    )]
    NotConfigured,
    #[error("ha: vip lists {0} more than once; list each virtual IP once")]
    DuplicateVip(String),
    #[error(
        "ha: vip {vip} is in no subnet of this unit and vip_iface {iface:?} is not one of its interfaces ({known}); set vip_iface to the interface that should carry it, or give the unit an address in the VIP's subnet"
    )]
    VipWithoutInterface {
        vip: String,
        iface: String,
        known: String,
    },
    #[error(
        "ha: vip {vip} is in no subnet of this unit and vip_cidr {cidr} is too long for an IPv4 address; set vip_cidr to the VIP subnet's prefix length (at most 32)"
    )]
    VipCidrTooLong { vip: String, cidr: u8 },
    #[error(
        "ha: {what} {value:?} cannot be sent to hacluster, which splits its commands on spaces; use a value of letters, digits and punctuation without spaces or quotes"
    )]
    UnsafeValue { what: String, value: String },
    #[error(
        "ha: DNS HA cannot register {option}: this unit has no address in {network_option} {network}; give the unit an address there or change {network_option}"
    )]
    NoAddressInNetwork {
        option: &'static str,
        network_option: &'static str,
        network: String,
    },
    #[error(
        "ha: DNS HA cannot register {option}: this unit has no address on the {binding} binding; bind {binding} to a space this machine is in"
    )]
    NoBindingAddress {
        option: &'static str,
        binding: &'static str,
    },
    #[error(
        "ha: dns-ha is set but no os-admin-hostname, os-internal-hostname or os-public-hostname"
    )]
    NoHostname,
}

/// The Pacemaker resources this unit asks hacluster for, before JSON encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterResources {
    /// Resource name → agent (`ocf:heartbeat:IPaddr2`).
    pub resources: BTreeMap<String, String>,
    /// Resource name → its crm parameters.
    pub resource_params: BTreeMap<String, String>,
    /// Group name → space-separated members, in order.
    pub groups: BTreeMap<String, String>,
    /// Resource name → the init service it manages.
    pub init_services: BTreeMap<String, String>,
    /// Clone name → the resource it clones.
    pub clones: BTreeMap<String, String>,
    /// Resources hacluster deletes (names from older charm versions).
    pub delete_resources: Vec<String>,
}

impl ClusterResources {
    /// The `json_*` settings, as the Python charm encodes them: sorted keys, no spaces between
    /// items, and only the non-empty ones.
    pub fn settings(&self) -> Databag {
        let object = |map: &BTreeMap<String, String>| {
            // Built from the sorted map, so sorted whatever serde_json's map keeps.
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        };
        let list = Value::Array(
            self.delete_resources
                .iter()
                .cloned()
                .map(Value::String)
                .collect(),
        );
        [
            ("json_resources", object(&self.resources)),
            ("json_resource_params", object(&self.resource_params)),
            ("json_groups", object(&self.groups)),
            ("json_init_services", object(&self.init_services)),
            ("json_clones", object(&self.clones)),
            ("json_delete_resources", list),
        ]
        .into_iter()
        .filter(|(_, value)| match value {
            Value::Object(map) => !map.is_empty(),
            Value::Array(items) => !items.is_empty(),
            _ => true,
        })
        .map(|(key, value)| (key.to_owned(), value.to_string()))
        .collect()
    }

    /// haproxy, cloned on every unit: what every mode starts with.
    fn haproxy() -> ClusterResources {
        let owned = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        ClusterResources {
            resources: owned(&[(HAPROXY_RESOURCE, HAPROXY_AGENT)]),
            resource_params: owned(&[(HAPROXY_RESOURCE, HAPROXY_PARAMS)]),
            init_services: owned(&[(HAPROXY_RESOURCE, "haproxy")]),
            clones: owned(&[(HAPROXY_CLONE, HAPROXY_RESOURCE)]),
            ..ClusterResources::default()
        }
    }
}

/// The bindings whose primary address [`cluster_resources`] needs: in DNS HA, those with a
/// hostname and no os-*-network.
pub fn bindings_to_resolve(config: &Config) -> Vec<Role> {
    if !config.dns_ha {
        return Vec::new();
    }
    DNS_ORDER
        .into_iter()
        .filter(|b| b.hostname(config).is_some() && b.network_text(config).is_none())
        .collect()
}

/// The resources this unit asks hacluster for, given the config, the `vip` entries as written
/// (the same addresses as `config.vips`) and this unit's network; or what the operator must
/// change first.
pub fn cluster_resources(
    config: &Config,
    vips: &[Vip],
    network: &UnitNetwork,
) -> Result<ClusterResources, HaError> {
    let mut resources = ClusterResources::haproxy();
    if config.dns_ha {
        add_hostnames(config, network, &mut resources)?;
    } else if !vips.is_empty() {
        add_vips(config, vips, &network.interfaces, &mut resources)?;
    } else {
        return Err(HaError::NotConfigured);
    }
    Ok(resources)
}

/// A value hacluster can put in a crm command: one word, printable ASCII, no quotes or
/// backslashes (it is written between double quotes and the command is split on whitespace).
fn plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\'))
}

/// Ok when hacluster can take `value` (see [`plain`]), else what to change.
fn checked(what: impl Into<String>, value: &str) -> Result<(), HaError> {
    if plain(value) {
        Ok(())
    } else {
        Err(HaError::UnsafeValue {
            what: what.into(),
            value: value.to_owned(),
        })
    }
}

/// VIP mode: one IPaddr2 (IPv6addr) resource per `vip` entry, in `grp_ks_vips`.
fn add_vips(
    config: &Config,
    vips: &[Vip],
    interfaces: &[Interface],
    out: &mut ClusterResources,
) -> Result<(), HaError> {
    let mut seen = BTreeSet::new();
    for vip in vips {
        if !seen.insert(vip.address) {
            return Err(HaError::DuplicateVip(vip.written.clone()));
        }
    }
    let mut group = Vec::new();
    for vip in vips {
        checked("vip", &vip.written)?;
        let (agent, param) = match vip.address {
            IpAddr::V4(_) => ("ocf:heartbeat:IPaddr2", "ip"),
            IpAddr::V6(_) => ("ocf:heartbeat:IPv6addr", "ipv6addr"),
        };
        let detected = interface_for(vip.address, interfaces);
        let iface = match detected {
            Some(name) => {
                checked("the interface name", name)?;
                name
            }
            None => {
                checked("vip_iface", &config.vip_iface)?;
                if !interfaces.iter().any(|i| i.name == config.vip_iface) {
                    let known: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
                    return Err(HaError::VipWithoutInterface {
                        vip: vip.written.clone(),
                        iface: config.vip_iface.clone(),
                        known: known.join(", "),
                    });
                }
                if vip.address.is_ipv4() && config.vip_cidr > 32 {
                    return Err(HaError::VipCidrTooLong {
                        vip: vip.written.clone(),
                        cidr: config.vip_cidr,
                    });
                }
                &config.vip_iface
            }
        };
        // The names older charm versions gave VIPs, per interface: hacluster deletes them.
        // As the Python charm: a name already listed gets `_<param>` (once; a third VIP on the
        // same interface repeats that name).
        let mut old = format!("res_{SERVICE}_{iface}_vip");
        if out.delete_resources.contains(&old) {
            old = format!("{old}_{param}");
        }
        out.delete_resources.push(old);

        let name = format!("res_{SERVICE}_{}_vip", short_sha1(&vip.written));
        let params = match detected {
            // Pacemaker finds the NIC and netmask, which need not be named alike on every unit.
            Some(_) => format!(r#"params {param}="{}" {VIP_MONITOR}"#, vip.written),
            None => format!(
                r#"params {param}="{}" cidr_netmask="{}" nic="{iface}" {VIP_MONITOR}"#,
                vip.written, config.vip_cidr
            ),
        };
        out.resources.insert(name.clone(), agent.to_owned());
        out.resource_params.insert(name.clone(), params);
        group.push(name);
    }
    out.groups.insert(VIP_GROUP.to_owned(), group.join(" "));
    Ok(())
}

/// DNS HA: one `ocf:maas:dns` resource per os-*-hostname, in `grp_ks_hostnames`.
fn add_hostnames(
    config: &Config,
    network: &UnitNetwork,
    out: &mut ClusterResources,
) -> Result<(), HaError> {
    let mut group = Vec::new();
    for binding in DNS_ORDER {
        let Some(fqdn) = binding.hostname(config) else {
            continue;
        };
        checked(hostname_option(binding), fqdn)?;
        let address = match binding.network_text(config) {
            Some(cidr) => address_in_network(cidr, &network.interfaces).ok_or_else(|| {
                HaError::NoAddressInNetwork {
                    option: hostname_option(binding),
                    network_option: network_option(binding),
                    network: cidr.to_owned(),
                }
            })?,
            None => network
                .bindings
                .get(&binding)
                .copied()
                .ok_or(HaError::NoBindingAddress {
                    option: hostname_option(binding),
                    binding: binding.binding(),
                })?,
        };
        let name = format!("res_{SERVICE}_{}_hostname", resource_part(binding));
        out.resources.insert(name.clone(), DNS_AGENT.to_owned());
        out.resource_params.insert(
            name.clone(),
            format!(r#"params fqdn="{fqdn}" ip_address="{address}""#),
        );
        group.push(name);
    }
    if group.is_empty() {
        return Err(HaError::NoHostname);
    }
    out.groups
        .insert(HOSTNAME_GROUP.to_owned(), group.join(" "));
    Ok(())
}

/// The first 7 hex digits of the text's SHA-1: the VIP resource's name.
fn short_sha1(text: &str) -> String {
    let digest = Sha1::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex.chars().take(7).collect()
}

/// Whether `ip` is in the subnet `network/prefix`.
fn in_subnet(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// IPv6 addresses the Python charm never matches: link-local (`fe80…`) and `::1`.
fn ignored_v6(address: IpAddr) -> bool {
    match address {
        IpAddr::V6(v6) => v6.segments()[0] == 0xfe80 || v6.is_loopback(),
        IpAddr::V4(_) => false,
    }
}

/// The interface whose subnet holds `vip`, as the Python charm finds it: interfaces in the
/// kernel's order; of each, only its first IPv4 address (a VIP Pacemaker added is a later
/// one), or any IPv6 address but link-local and `::1`.
fn interface_for(vip: IpAddr, interfaces: &[Interface]) -> Option<&str> {
    interfaces
        .iter()
        .find(|interface| match vip {
            IpAddr::V4(_) => interface
                .addresses
                .iter()
                .find(|a| a.address.is_ipv4())
                .is_some_and(|a| in_subnet(vip, a.address, a.prefix)),
            IpAddr::V6(_) => interface.addresses.iter().any(|a| {
                a.address.is_ipv6() && !ignored_v6(a.address) && in_subnet(vip, a.address, a.prefix)
            }),
        })
        .map(|interface| interface.name.as_str())
}

/// This unit's first address whose subnet lies inside `cidr` (an os-*-network), as the Python
/// charm's `get_address_in_network` finds it.
fn address_in_network(cidr: &str, interfaces: &[Interface]) -> Option<IpAddr> {
    let (network, prefix) = cidr.split_once('/')?;
    let (network, prefix): (IpAddr, u8) = (network.parse().ok()?, prefix.parse().ok()?);
    interfaces
        .iter()
        .flat_map(|interface| interface.addresses.iter())
        .find(|a| {
            a.address.is_ipv4() == network.is_ipv4()
                && !ignored_v6(a.address)
                && a.prefix >= prefix
                && in_subnet(a.address, network, prefix)
        })
        .map(|a| a.address)
}

/// What a unit's ha bag must change to hold `wanted`: the keys that differ, and this charm's
/// keys it no longer sends, unset.
pub fn changes(own: &Databag, wanted: &Databag) -> DatabagChanges {
    KEYS.iter()
        .filter_map(|key| {
            let want = wanted.get(*key);
            (own.get(*key) != want).then(|| ((*key).to_owned(), want.cloned()))
        })
        .collect()
}

/// The `vip` entries as the operator wrote them, with their parsed addresses (config-get's
/// text, which the validated config no longer holds).
fn vips_as_written(options: &serde_json::Map<String, Value>, parsed: &[IpAddr]) -> Vec<Vip> {
    let written: Vec<Vip> = options
        .get("vip")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(Vip::new)
        .collect();
    let same =
        written.len() == parsed.len() && written.iter().zip(parsed).all(|(w, p)| w.address == *p);
    if same {
        written
    } else {
        // The config was validated from the same text, so this is not expected; the canonical
        // text is the safe answer.
        parsed
            .iter()
            .map(|address| Vip {
                written: address.to_string(),
                address: *address,
            })
            .collect()
    }
}

/// What the step learned from Juju, kept on the machine between hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Kept {
    /// An ha relation exists.
    related: bool,
    /// hacluster said `clustered`.
    clustered: bool,
    /// Why nothing could be sent, when something blocks.
    blocked: Option<String>,
}

/// Whether this hook asks Juju again rather than trusting what is kept: the hooks in which the
/// relation, its data, the config or the network can have changed.
fn asks_juju(event: &Event) -> bool {
    matches!(
        event,
        Event::ConfigChanged
            | Event::UpgradeCharm
            | Event::Start
            | Event::Relation {
                endpoint: ENDPOINT,
                ..
            }
    )
}

fn read_kept(hook: &Hook<'_>) -> Result<Option<Kept>> {
    let bytes = hook
        .machine
        .files
        .read(Path::new(paths::HA_STATE))
        .context("cannot read the kept ha state")?;
    // Unreadable content is as good as none: it is asked again.
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

fn write_kept(hook: &Hook<'_>, kept: &Kept) -> Result<()> {
    let text = serde_json::to_vec(kept).context("cannot encode the ha state")?;
    hook.machine
        .files
        .write(Path::new(paths::HA_STATE), &text, &Owner::root(), 0o644)
        .context("cannot keep the ha state")?;
    Ok(())
}

/// Reads the ha relations (relation-ids, relation-list, relation-get) and sends this unit's
/// resources on each where they differ from its bag (relation-get, relation-set).
fn ask_juju(hook: &Hook<'_>) -> Result<Kept> {
    let juju = hook.juju;
    // Juju may still list a relation in its broken hook; it is gone.
    let leaving = match hook.event {
        Event::Relation {
            endpoint: ENDPOINT,
            hook: RelationHook::Broken,
        } => juju.relation_id(),
        _ => None,
    };
    let relations: Vec<RelationId> = juju
        .relation_ids(ENDPOINT.name())
        .context("cannot list the ha relations")?
        .into_iter()
        .filter(|r| Some(r) != leaving.as_ref())
        .collect();
    if relations.is_empty() {
        return Ok(Kept::default());
    }
    let mut clustered = false;
    for relation in &relations {
        for unit in juju
            .relation_units(relation)
            .with_context(|| format!("cannot list the units of {relation}"))?
        {
            let bag = juju
                .relation_data(relation, &Bag::Unit(unit.clone()))
                .with_context(|| format!("cannot read {unit}'s data on {relation}"))?;
            clustered |= bag.get("clustered").is_some_and(|v| !v.is_empty());
        }
    }
    let wanted = match desired_settings(hook)? {
        Ok(wanted) => wanted,
        Err(err) => {
            tracing::warn!("{err}");
            return Ok(Kept {
                related: true,
                clustered,
                blocked: Some(err.to_string()),
            });
        }
    };
    let own = Bag::Unit(juju.unit().clone());
    for relation in &relations {
        let current = juju
            .relation_data(relation, &own)
            .with_context(|| format!("cannot read this unit's data on {relation}"))?;
        let changes = changes(&current, &wanted);
        if !changes.is_empty() {
            juju.relation_set(relation, false, &changes)
                .with_context(|| format!("cannot send the cluster's resources on {relation}"))?;
            tracing::info!("sent the cluster's resources to hacluster on {relation}");
        }
    }
    Ok(Kept {
        related: true,
        clustered,
        blocked: None,
    })
}

/// Reads this unit's network facts (the interfaces; network-get for DNS HA) and decides.
fn desired_settings(hook: &Hook<'_>) -> Result<Result<Databag, HaError>> {
    let config = &hook.config;
    let options = hook
        .juju
        .config()
        .context("cannot read the charm configuration")?;
    let vips = vips_as_written(&options, &config.vips);
    let mut network = UnitNetwork {
        interfaces: hook.machine.interfaces.list()?,
        bindings: BTreeMap::new(),
    };
    for binding in bindings_to_resolve(config) {
        let info = hook
            .juju
            .network_get(binding.binding())
            .with_context(|| format!("cannot read this unit's {} address", binding.binding()))?;
        // The resolver's answer for this unit (prefer-ipv6 honoured as for the endpoints).
        let facts = crate::addresses::Binding::from_network(&info);
        if let Some(address) = crate::addresses::unit_address(config, binding, &facts) {
            network.bindings.insert(binding, address);
        }
    }
    Ok(cluster_resources(config, &vips, &network).map(|r| r.settings()))
}

/// Whether the configuration puts Keystone behind Pacemaker (vip or dns-ha): consumers may be
/// served only once hacluster said `clustered` ([`Clustered`]).
pub fn needs_cluster(config: &Config) -> bool {
    !config.vips.is_empty() || config.dns_ha
}

/// The ha step: [`run`].
pub const STEP: Step = Step::new("ha", run).writes(&[FactName::Clustered]);

/// Step: sends this unit's Pacemaker resources to hacluster when they changed, records
/// [`Clustered`], and blocks (nothing sent) when the configuration cannot be clustered.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let kept = match read_kept(hook)? {
        Some(kept) if !asks_juju(hook.event) => kept,
        _ => {
            let kept = ask_juju(hook)?;
            write_kept(hook, &kept)?;
            kept
        }
    };
    let clustering = needs_cluster(&hook.config);
    if !kept.related {
        // The VIP or the DNS records would never come up: consumers would be told an address
        // nobody answers on.
        return Ok(match clustering {
            true => vec![Condition::MissingRelation("ha")],
            false => Vec::new(),
        });
    }
    if let Some(reason) = kept.blocked {
        return Ok(vec![Condition::Blocked(reason)]);
    }
    if kept.clustered {
        hook.facts.set(Clustered);
    } else if clustering {
        return Ok(vec![Condition::Waiting(
            "Waiting for hacluster to form the cluster and bring up the VIP or DNS records"
                .to_owned(),
        )]);
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sim;
    use juju_sim_fixtures::scripted::HaCluster;
    use serde_json::json;

    const HAPROXY_PARAMS_JSON: &str = r#""res_ks_haproxy":"meta migration-threshold=\"INFINITY\" failure-timeout=\"5s\" op monitor interval=\"5s\"""#;
    const INIT_SERVICES: &str = r#"{"res_ks_haproxy":"haproxy"}"#;
    const CLONES: &str = r#"{"cl_ks_haproxy":"res_ks_haproxy"}"#;

    use crate::testing::config;

    fn vips(text: &str) -> Vec<Vip> {
        text.split_whitespace()
            .map(|v| Vip::new(v).unwrap())
            .collect()
    }

    fn on(interfaces: &[(&str, &[&str])]) -> UnitNetwork {
        UnitNetwork {
            interfaces: interfaces
                .iter()
                .map(|(name, addresses)| Interface::parse(name, addresses))
                .collect(),
            bindings: BTreeMap::new(),
        }
    }

    /// The settings for `vip` (with `options`) on a unit with `interfaces`.
    fn vip_settings(
        vip: &str,
        options: serde_json::Value,
        interfaces: &[(&str, &[&str])],
    ) -> Result<Databag, HaError> {
        let mut options = options;
        options["vip"] = json!(vip);
        cluster_resources(&config(options), &vips(vip), &on(interfaces)).map(|r| r.settings())
    }

    fn bag(pairs: &[(&str, &str)]) -> Databag {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const LO: (&str, &[&str]) = ("lo", &["127.0.0.1/8", "::1/128"]);

    /// The reference example: no interface in 10.0.0.100's subnet, so vip_iface and vip_cidr
    /// are named (the fallback).
    fn fallback_settings() -> Databag {
        bag(&[
            (
                "json_resources",
                r#"{"res_ks_d9411c8_vip":"ocf:heartbeat:IPaddr2","res_ks_haproxy":"lsb:haproxy"}"#,
            ),
            (
                "json_resource_params",
                &format!(
                    r#"{{"res_ks_d9411c8_vip":"params ip=\"10.0.0.100\" cidr_netmask=\"24\" nic=\"eth0\" op monitor timeout=\"20s\" interval=\"10s\" depth=\"0\"",{HAPROXY_PARAMS_JSON}}}"#
                ),
            ),
            ("json_groups", r#"{"grp_ks_vips":"res_ks_d9411c8_vip"}"#),
            ("json_init_services", INIT_SERVICES),
            ("json_clones", CLONES),
            ("json_delete_resources", r#"["res_ks_eth0_vip"]"#),
        ])
    }

    #[test]
    fn a_vip_outside_every_subnet_names_vip_iface_and_vip_cidr() {
        let settings = vip_settings(
            "10.0.0.100",
            json!({}),
            &[LO, ("eth0", &["192.168.1.10/24"])],
        );
        assert_eq!(settings, Ok(fallback_settings()));
    }

    #[test]
    fn a_vip_in_a_subnet_of_the_unit_lets_pacemaker_find_nic_and_netmask() {
        let settings = vip_settings(
            "10.0.0.100",
            json!({"vip_iface": "eth9", "vip_cidr": 16}),
            &[LO, ("ens3", &["10.0.0.5/24"])],
        )
        .unwrap();
        assert_eq!(
            settings["json_resource_params"],
            format!(
                r#"{{"res_ks_d9411c8_vip":"params ip=\"10.0.0.100\" op monitor timeout=\"20s\" interval=\"10s\" depth=\"0\"",{HAPROXY_PARAMS_JSON}}}"#
            )
        );
        // The old-style name is that of the interface found, not vip_iface.
        assert_eq!(settings["json_delete_resources"], r#"["res_ks_ens3_vip"]"#);
        assert_eq!(
            settings["json_groups"],
            r#"{"grp_ks_vips":"res_ks_d9411c8_vip"}"#
        );
    }

    #[test]
    fn ipv6_vips_use_ipv6addr_and_two_vips_on_one_interface_get_distinct_old_names() {
        let settings = vip_settings(
            "10.0.0.100 fd00::100",
            json!({}),
            &[LO, ("eth0", &["10.0.0.5/24", "fe80::1/64", "fd00::5/64"])],
        )
        .unwrap();
        assert_eq!(
            settings,
            bag(&[
                (
                    "json_resources",
                    r#"{"res_ks_a09054e_vip":"ocf:heartbeat:IPv6addr","res_ks_d9411c8_vip":"ocf:heartbeat:IPaddr2","res_ks_haproxy":"lsb:haproxy"}"#,
                ),
                (
                    "json_resource_params",
                    &format!(
                        r#"{{"res_ks_a09054e_vip":"params ipv6addr=\"fd00::100\" op monitor timeout=\"20s\" interval=\"10s\" depth=\"0\"","res_ks_d9411c8_vip":"params ip=\"10.0.0.100\" op monitor timeout=\"20s\" interval=\"10s\" depth=\"0\"",{HAPROXY_PARAMS_JSON}}}"#
                    ),
                ),
                (
                    "json_groups",
                    r#"{"grp_ks_vips":"res_ks_d9411c8_vip res_ks_a09054e_vip"}"#,
                ),
                ("json_init_services", INIT_SERVICES),
                ("json_clones", CLONES),
                (
                    "json_delete_resources",
                    r#"["res_ks_eth0_vip","res_ks_eth0_vip_ipv6addr"]"#,
                ),
            ])
        );
    }

    #[test]
    fn an_ipv6_vip_by_the_fallback_and_as_written() {
        // Only a link-local address on eth0: the fallback, with the operator's spelling hashed
        // and sent (sha1("FD00::100"), not that of fd00::100), as the Python charm does.
        let settings = vip_settings(
            "FD00::100",
            json!({"vip_cidr": 64}),
            &[LO, ("eth0", &["fe80::1/64"])],
        )
        .unwrap();
        assert_eq!(
            settings["json_resources"],
            r#"{"res_ks_914dcdf_vip":"ocf:heartbeat:IPv6addr","res_ks_haproxy":"lsb:haproxy"}"#
        );
        assert_eq!(
            settings["json_resource_params"],
            format!(
                r#"{{"res_ks_914dcdf_vip":"params ipv6addr=\"FD00::100\" cidr_netmask=\"64\" nic=\"eth0\" op monitor timeout=\"20s\" interval=\"10s\" depth=\"0\"",{HAPROXY_PARAMS_JSON}}}"#
            )
        );
    }

    #[test]
    fn only_an_interfaces_first_ipv4_address_places_a_vip() {
        // As the Python charm: 10.0.0.7/24 is eth0's second address, so the fallback is used.
        let settings = vip_settings(
            "10.0.0.100",
            json!({}),
            &[LO, ("eth0", &["192.168.1.10/24", "10.0.0.7/24"])],
        );
        assert_eq!(settings, Ok(fallback_settings()));
        // The first interface in the kernel's order whose first address holds it wins.
        let settings = vip_settings(
            "10.0.0.100",
            json!({}),
            &[LO, ("eth1", &["10.0.0.8/16"]), ("eth0", &["10.0.0.7/24"])],
        )
        .unwrap();
        assert_eq!(settings["json_delete_resources"], r#"["res_ks_eth1_vip"]"#);
    }

    #[test]
    fn a_third_vip_on_one_interface_repeats_the_python_charms_old_name() {
        let settings = vip_settings(
            "10.0.0.100 10.0.0.101 10.0.0.102",
            json!({}),
            &[LO, ("eth0", &["10.0.0.5/24"])],
        )
        .unwrap();
        assert_eq!(
            settings["json_delete_resources"],
            r#"["res_ks_eth0_vip","res_ks_eth0_vip_ip","res_ks_eth0_vip_ip"]"#
        );
    }

    #[test]
    fn what_the_charm_sends_is_what_hacluster_can_configure_and_broken_payloads_are_not() {
        let vip = cluster_resources(
            &config(json!({"vip": "10.0.0.100 10.0.0.101"})),
            &[
                Vip::new("10.0.0.100").unwrap(),
                Vip::new("10.0.0.101").unwrap(),
            ],
            &on(&[LO, ("eth0", &["10.0.0.5/24"])]),
        )
        .unwrap()
        .settings();
        juju_sim_fixtures::scripted::check_crm_payload(&vip).unwrap();
        let mut network = on(&[LO, ("eth0", &["10.0.0.5/24"])]);
        network.bindings = BTreeMap::from([(Role::Public, "10.0.0.5".parse().unwrap())]);
        let dns = cluster_resources(
            &config(json!({"dns-ha": true, "os-public-hostname": "keystone.example.com"})),
            &[],
            &network,
        )
        .unwrap()
        .settings();
        juju_sim_fixtures::scripted::check_crm_payload(&dns).unwrap();
        // What hacluster's hook would fail on, the simulator's hacluster refuses.
        for (key, value) in [
            ("json_resources", r#"{"res_ks_haproxy":"haproxy"}"#),
            (
                "json_resource_params",
                r#"{"res_ks_haproxy":"op monitor interval=\"5 s\""}"#,
            ),
            (
                "json_groups",
                r#"{"grp_ks_vips":"res_ks_haproxy res_ks_missing"}"#,
            ),
            ("json_clones", r#"{"cl_ks_haproxy":"res_ks_missing"}"#),
            ("json_groups", "not json"),
        ] {
            let mut broken = vip.clone();
            broken.insert(key.into(), value.into());
            assert!(
                juju_sim_fixtures::scripted::check_crm_payload(&broken).is_err(),
                "{key}: {value}"
            );
        }
    }

    #[test]
    fn dns_ha_registers_each_hostname_at_its_bindings_address() {
        let config = config(json!({
            "dns-ha": true,
            "os-admin-hostname": "admin.example.com",
            "os-public-hostname": "keystone.example.com",
            "os-internal-hostname": "int.example.com",
            "os-internal-network": "10.20.0.0/16",
        }));
        assert_eq!(bindings_to_resolve(&config), [Role::Admin, Role::Public]);
        let mut network = on(&[
            LO,
            ("eth0", &["10.0.0.5/24"]),
            ("eth1", &["fd00::5/64", "10.20.1.5/24"]),
        ]);
        network.bindings = BTreeMap::from([
            (Role::Admin, "10.0.0.5".parse().unwrap()),
            (Role::Public, "fd00::5".parse().unwrap()),
        ]);
        let settings = cluster_resources(&config, &[], &network)
            .unwrap()
            .settings();
        assert_eq!(
            settings,
            bag(&[
                (
                    "json_resources",
                    r#"{"res_ks_admin_hostname":"ocf:maas:dns","res_ks_haproxy":"lsb:haproxy","res_ks_int_hostname":"ocf:maas:dns","res_ks_public_hostname":"ocf:maas:dns"}"#,
                ),
                (
                    "json_resource_params",
                    &format!(
                        r#"{{"res_ks_admin_hostname":"params fqdn=\"admin.example.com\" ip_address=\"10.0.0.5\"",{HAPROXY_PARAMS_JSON},"res_ks_int_hostname":"params fqdn=\"int.example.com\" ip_address=\"10.20.1.5\"","res_ks_public_hostname":"params fqdn=\"keystone.example.com\" ip_address=\"fd00::5\""}}"#
                    ),
                ),
                (
                    "json_groups",
                    r#"{"grp_ks_hostnames":"res_ks_admin_hostname res_ks_int_hostname res_ks_public_hostname"}"#,
                ),
                ("json_init_services", INIT_SERVICES),
                ("json_clones", CLONES),
            ])
        );
    }

    #[test]
    fn dns_ha_needs_an_address_for_every_hostname() {
        let config = config(json!({
            "dns-ha": true,
            "os-public-hostname": "keystone.example.com",
            "os-admin-hostname": "admin.example.com",
            "os-admin-network": "10.30.0.0/24",
        }));
        let mut network = on(&[LO, ("eth0", &["10.0.0.5/24"])]);
        assert_eq!(
            cluster_resources(&config, &[], &network)
                .unwrap_err()
                .to_string(),
            "ha: DNS HA cannot register os-admin-hostname: this unit has no address in \
             os-admin-network 10.30.0.0/24; give the unit an address there or change \
             os-admin-network"
        );
        // A subnet wider than os-admin-network is not in it (as the Python charm).
        network
            .interfaces
            .push(Interface::parse("eth1", &["10.30.0.9/16"]));
        assert!(cluster_resources(&config, &[], &network).is_err());
        network
            .interfaces
            .push(Interface::parse("eth2", &["10.30.0.9/24"]));
        assert_eq!(
            cluster_resources(&config, &[], &network).unwrap_err(),
            HaError::NoBindingAddress {
                option: "os-public-hostname",
                binding: "public"
            }
        );
        assert_eq!(
            HaError::NoBindingAddress {
                option: "os-public-hostname",
                binding: "public"
            }
            .to_string(),
            "ha: DNS HA cannot register os-public-hostname: this unit has no address on the \
             public binding; bind public to a space this machine is in"
        );
    }

    #[test]
    fn what_the_operator_must_change_blocks_with_what_to_change() {
        let eth0: &[(&str, &[&str])] = &[LO, ("eth0", &["10.0.0.5/24"])];
        let message = |vip: &str, options: serde_json::Value, interfaces| {
            vip_settings(vip, options, interfaces)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            message("10.0.0.100 10.0.0.101 10.0.0.100", json!({}), eth0),
            "ha: vip lists 10.0.0.100 more than once; list each virtual IP once"
        );
        // The same address, written two ways.
        assert_eq!(
            message("fd00::1 fd00:0::1", json!({}), eth0),
            "ha: vip lists fd00:0::1 more than once; list each virtual IP once"
        );
        assert_eq!(
            message("192.168.9.1", json!({"vip_iface": "bond0"}), eth0),
            "ha: vip 192.168.9.1 is in no subnet of this unit and vip_iface \"bond0\" is not \
             one of its interfaces (lo, eth0); set vip_iface to the interface that should carry \
             it, or give the unit an address in the VIP's subnet"
        );
        // vip_cidr may reach 128 when another VIP is IPv6; not for an IPv4 VIP the fallback
        // places.
        assert_eq!(
            message("192.168.9.1 fd00::1", json!({"vip_cidr": 64}), eth0),
            "ha: vip 192.168.9.1 is in no subnet of this unit and vip_cidr 64 is too long for \
             an IPv4 address; set vip_cidr to the VIP subnet's prefix length (at most 32)"
        );
        assert_eq!(
            message("192.168.9.1", json!({"vip_iface": "eth0 nic=\"x\""}), eth0),
            "ha: vip_iface \"eth0 nic=\\\"x\\\"\" cannot be sent to hacluster, which splits its \
             commands on spaces; use a value of letters, digits and punctuation without spaces \
             or quotes"
        );
        // A vip_cidr whose network holds no address of the unit is the fallback at work.
        assert!(vip_settings("192.168.9.1", json!({"vip_cidr": 30}), eth0).is_ok());
        assert_eq!(
            cluster_resources(&config(json!({})), &[], &on(eth0)),
            Err(HaError::NotConfigured)
        );
    }

    #[test]
    fn only_what_differs_is_changed_and_keys_no_longer_sent_are_unset() {
        let wanted = fallback_settings();
        assert!(changes(&wanted, &wanted).is_empty());
        let mut sent = wanted.clone();
        sent.insert("json_groups".into(), "{}".into());
        sent.insert("clustered".into(), "yes".into());
        assert_eq!(
            changes(&sent, &wanted),
            DatabagChanges::from([(
                "json_groups".to_owned(),
                Some(wanted["json_groups"].clone())
            )])
        );
        let mut dns = wanted.clone();
        dns.remove("json_delete_resources");
        assert_eq!(
            changes(&wanted, &dns),
            DatabagChanges::from([("json_delete_resources".to_owned(), None)])
        );
    }

    #[test]
    fn the_vips_are_taken_as_written() {
        let options = json!({"vip": " 10.0.0.100\tFD00::1 "});
        let parsed: Vec<IpAddr> = vec!["10.0.0.100".parse().unwrap(), "fd00::1".parse().unwrap()];
        let written = vips_as_written(options.as_object().unwrap(), &parsed);
        assert_eq!(written, vips("10.0.0.100 FD00::1"));
        // Text that does not match what was validated: the canonical form.
        let other = vips_as_written(json!({}).as_object().unwrap(), &parsed);
        assert_eq!(other, vips("10.0.0.100 fd00::1"));
    }

    // ---------------------------------------------------------------------------------------
    // The step, under the simulator.

    const UNIT: &str = "keystone/0";

    /// One keystone unit with a database and `config`, on a machine whose eth0 is
    /// 192.168.1.10/24, related to a scripted hacluster; settled.
    fn clustered(config: serde_json::Value) -> (Sim, HaCluster) {
        let mut sim = Sim::with_database(1, config);
        sim.machine(UNIT).1.interfaces.set(vec![
            Interface::parse("lo", &["127.0.0.1/8"]),
            Interface::parse("eth0", &["192.168.1.10/24"]),
        ]);
        let hacluster = HaCluster::default();
        let seen = HaCluster {
            seen: std::sync::Arc::clone(&hacluster.seen),
        };
        sim.model
            .deploy_scripted("hacluster", Box::new(hacluster), 1)
            .unwrap();
        sim.model.relate("keystone:ha", "hacluster:ha").unwrap();
        sim.settle();
        (sim, seen)
    }

    /// relation-set calls on an ha relation, in every hook of `unit` so far.
    fn ha_sets(sim: &Sim, unit: &str) -> usize {
        sim.model
            .hook_log()
            .iter()
            .filter(|r| r.unit == unit)
            .flat_map(|r| r.tool_calls.clone())
            .filter(|c| c.starts_with("relation-set -r ha:"))
            .count()
    }

    /// Runs the ha step alone in `hook` on `unit`: whether it recorded [`Clustered`].
    fn records_clustered(sim: &mut Sim, hook: &str) -> bool {
        let event = Event::from_hook_name(hook);
        sim.with_hook(UNIT, hook, move |juju, machine, _| {
            let Ok(Ok(mut hook)) = Hook::new(juju, machine, &event) else {
                return false;
            };
            run(&mut hook).is_ok_and(|c| c.is_empty()) && hook.facts.get::<Clustered>().is_some()
        })
    }

    #[test]
    fn hacluster_gets_exactly_the_python_charms_resources_once_and_clusters() {
        let (mut sim, hacluster) = clustered(json!({"vip": "10.0.0.100"}));
        let seen = hacluster.seen.lock().unwrap().clone();
        assert_eq!(
            seen.get("hacluster/0"),
            Some(&fallback_settings()),
            "{seen:?}"
        );
        assert_eq!(sim.status(UNIT), "active: Unit is ready");
        assert_eq!(ha_sets(&sim, UNIT), 1);
        let kept = sim.machine(UNIT).1.files.entry(Path::new(paths::HA_STATE));
        assert!(
            matches!(&kept, Some(crate::host::fs::Entry::File { content, .. })
                if content == br#"{"related":true,"clustered":true,"blocked":null}"#),
            "{kept:?}"
        );

        // A second config-changed reads the bag and sends nothing.
        assert!(sim.run(UNIT, "config-changed"));
        let calls = sim.tools_called(UNIT);
        assert!(calls.contains(&"relation-get".to_owned()), "{calls:?}");
        assert_eq!(ha_sets(&sim, UNIT), 1);
        // update-status asks Juju nothing for ha: the same calls as without hacluster.
        assert!(sim.run(UNIT, "update-status"));
        assert_eq!(sim.tools_called(UNIT), crate::testing::STEADY_UPDATE_STATUS);
        assert_eq!(sim.status(UNIT), "active: Unit is ready");

        // hacluster said clustered: the step records it, whether it asks Juju or not.
        assert!(records_clustered(&mut sim, "update-status"));
        assert!(records_clustered(&mut sim, "config-changed"));

        // A new vip_cidr changes only the parameters.
        sim.model
            .set_config(
                "keystone",
                json!({"vip_cidr": 16}).as_object().cloned().unwrap(),
            )
            .unwrap();
        sim.settle();
        assert_eq!(ha_sets(&sim, UNIT), 2);
        let seen = hacluster.seen.lock().unwrap()["hacluster/0"].clone();
        assert!(
            seen["json_resource_params"].contains(r#"cidr_netmask=\"16\""#),
            "{seen:?}"
        );
    }

    #[test]
    fn a_duplicated_vip_blocks_and_sends_nothing_until_it_is_fixed() {
        let (mut sim, hacluster) = clustered(json!({"vip": "10.0.0.100 10.0.0.100"}));
        let message = "ha: vip lists 10.0.0.100 more than once; list each virtual IP once";
        assert_eq!(sim.status(UNIT), format!("blocked: {message}"));
        assert!(hacluster.seen.lock().unwrap().is_empty());
        assert_eq!(ha_sets(&sim, UNIT), 0);
        // Still blocked in a hook that asks Juju nothing.
        assert!(sim.run(UNIT, "update-status"));
        assert_eq!(sim.status(UNIT), format!("blocked: {message}"));

        sim.model
            .set_config(
                "keystone",
                json!({"vip": "10.0.0.100"}).as_object().cloned().unwrap(),
            )
            .unwrap();
        sim.settle();
        assert_eq!(sim.status(UNIT), "active: Unit is ready");
        assert_eq!(
            hacluster.seen.lock().unwrap().get("hacluster/0"),
            Some(&fallback_settings())
        );
    }

    #[test]
    fn without_the_relation_a_vip_is_a_missing_relation_and_nothing_is_asked() {
        let (mut sim, _) = clustered(json!({"vip": "10.0.0.100 10.0.0.100"}));
        let relation = sim.model.relation_id("keystone", "ha").unwrap();
        sim.model.unrelate(relation).unwrap();
        sim.settle();
        // Consumers would be told a VIP nobody brings up.
        assert_eq!(sim.status(UNIT), "blocked: Missing relations: ha");
        assert!(!records_clustered(&mut sim, "update-status"));
        // hacluster related with neither vip nor dns-ha: blocked, as the Python charm.
        let mut sim = Sim::with_database(1, json!({}));
        sim.model
            .deploy_scripted("hacluster", Box::new(HaCluster::default()), 1)
            .unwrap();
        sim.model.relate("keystone:ha", "hacluster:ha").unwrap();
        sim.settle();
        assert_eq!(
            sim.status(UNIT),
            format!("blocked: {}", HaError::NotConfigured)
        );
    }

    #[test]
    fn behind_a_vip_consumers_wait_for_the_cluster_and_then_get_the_vip() {
        use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};
        let mut sim = Sim::with_database(1, json!({"vip": "192.168.1.100"}));
        sim.machine(UNIT).1.interfaces.set(vec![
            Interface::parse("lo", &["127.0.0.1/8"]),
            Interface::parse("eth0", &["192.168.1.10/24"]),
        ]);
        let nova = IdentityConsumer::new("nova", IdentityInterface::Service);
        let seen = nova.replies.clone();
        sim.model
            .deploy_scripted("nova", Box::new(nova), 1)
            .unwrap();
        sim.model.relate("keystone", "nova").unwrap();
        sim.settle();
        assert_eq!(sim.status(UNIT), "blocked: Missing relations: ha");
        let got = |seen: &juju_sim_fixtures::scripted::Replies| {
            seen.lock().unwrap()["nova/0"]["keystone/0"]
                .get("service_host")
                .cloned()
        };
        assert_eq!(got(&seen), None, "nothing before the VIP is up");
        sim.model
            .deploy_scripted("hacluster", Box::new(HaCluster::default()), 1)
            .unwrap();
        sim.model.relate("keystone:ha", "hacluster:ha").unwrap();
        sim.settle();
        assert_eq!(sim.status(UNIT), "active: Unit is ready");
        assert_eq!(got(&seen).as_deref(), Some("192.168.1.100"));
    }
}
