//! Where this unit is reached for each of Keystone's three roles (public, internal, admin): the
//! one resolver that Keystone's own endpoints, the identity replies and the peers' view of this
//! unit use.
//!
//! For each role, in order: its `os-<role>-hostname`; else, with a VIP, the VIP in the role's
//! network (`os-<role>-network`, else the subnets of the role's binding), or the first VIP;
//! else this unit's address in `os-<role>-network`; else the address of the role's Juju binding
//! (`network-get public|internal|admin`, Juju spaces), IPv6 first with `prefer-ipv6`.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::Config;
use crate::juju::NetworkInfo;

/// One of Keystone's roles; each is a Juju extra-binding of the charm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Public,
    Internal,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Public, Role::Internal, Role::Admin];

    /// The extra-binding in metadata.yaml.
    pub fn binding(self) -> &'static str {
        match self {
            Role::Public => "public",
            Role::Internal => "internal",
            Role::Admin => "admin",
        }
    }

    /// `os-<role>-hostname`.
    pub fn hostname(self, config: &Config) -> Option<&str> {
        match self {
            Role::Public => config.os_public_hostname.as_deref(),
            Role::Internal => config.os_internal_hostname.as_deref(),
            Role::Admin => config.os_admin_hostname.as_deref(),
        }
    }

    /// `os-<role>-network` as the operator wrote it (validated as a CIDR by the config).
    pub fn network_text(self, config: &Config) -> Option<&str> {
        match self {
            Role::Public => config.os_public_network.as_deref(),
            Role::Internal => config.os_internal_network.as_deref(),
            Role::Admin => config.os_admin_network.as_deref(),
        }
    }

    /// `os-<role>-network`, as a network.
    pub fn network(self, config: &Config) -> Option<IpNet> {
        let text = self.network_text(config)?;
        text.parse::<IpNet>().ok().map(|n| n.trunc())
    }

    /// Whether this unit's binding must be asked for the role's address: not when a hostname
    /// names it, nor when a VIP stands for it and no network narrows the choice.
    pub fn needs_binding(self, config: &Config) -> bool {
        let vip_stands_for_it =
            config.vips.len() == 1 || (!config.vips.is_empty() && self.network(config).is_some());
        self.hostname(config).is_none() && !vip_stands_for_it
    }
}

/// What `network-get <binding>` says of this unit: each address with its subnet, and the
/// address other units reach it by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    pub addresses: Vec<(IpAddr, Option<IpNet>)>,
    pub ingress: Option<IpAddr>,
}

impl Binding {
    pub fn from_network(info: &NetworkInfo) -> Binding {
        let addresses = info
            .bind_addresses
            .iter()
            .flat_map(|b| &b.addresses)
            .filter_map(|a| {
                let address = a.value.parse::<IpAddr>().ok()?;
                let subnet = a.cidr.parse::<IpNet>().ok().map(|n| n.trunc());
                Some((address, subnet))
            })
            .collect();
        let ingress = info
            .ingress_addresses
            .iter()
            .find_map(|a| a.parse::<IpAddr>().ok());
        Binding { addresses, ingress }
    }

    /// The binding's address: the ingress address, or with `prefer_ipv6` its first global
    /// IPv6 address.
    fn address(&self, prefer_ipv6: bool) -> Option<IpAddr> {
        let v6 = || {
            self.addresses
                .iter()
                .map(|(a, _)| *a)
                .find(|a| a.is_ipv6() && !is_link_local(a))
        };
        match prefer_ipv6 {
            true => v6().or(self.ingress),
            false => self
                .ingress
                .or_else(|| self.addresses.first().map(|(a, _)| *a)),
        }
    }
}

fn is_link_local(address: &IpAddr) -> bool {
    match address {
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(v4) => v4.is_link_local(),
    }
}

/// Why a role has no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error(
        "this unit has no address on its {binding} binding; bind it to a space with \
         `juju bind keystone {binding}=<space>` or set os-{binding}-hostname"
    )]
    NoAddress { binding: &'static str },
}

/// The role's host (a DNS name or an IP address) for consumers and Keystone's catalog.
/// `binding` is None when [`Role::needs_binding`] said it is not needed.
pub fn resolve(
    config: &Config,
    role: Role,
    binding: Option<&Binding>,
) -> Result<String, AddressError> {
    if let Some(hostname) = role.hostname(config) {
        return Ok(hostname.to_owned());
    }
    let network = role.network(config);
    if let Some(first) = config.vips.first() {
        let in_network = |vip: &&IpAddr| match (&network, binding) {
            (Some(net), _) => net.contains(*vip),
            (None, Some(binding)) => binding
                .addresses
                .iter()
                .any(|(_, subnet)| subnet.is_some_and(|s| s.contains(*vip))),
            (None, None) => false,
        };
        let vip = config.vips.iter().find(in_network).unwrap_or(first);
        return Ok(vip.to_string());
    }
    let no_address = AddressError::NoAddress {
        binding: role.binding(),
    };
    let binding = binding.ok_or(no_address.clone())?;
    unit_address(config, role, binding)
        .map(|a| a.to_string())
        .ok_or(no_address)
}

/// This unit's own address for the role, whatever hostname or VIP stands for it: the one in
/// `os-<role>-network`, else the binding's.
pub fn unit_address(config: &Config, role: Role, binding: &Binding) -> Option<IpAddr> {
    let in_network = role.network(config).and_then(|net| {
        binding
            .addresses
            .iter()
            .map(|(a, _)| *a)
            .find(|a| net.contains(a))
    });
    in_network.or_else(|| binding.address(config.prefer_ipv6))
}

/// This unit's three hosts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Addresses {
    pub public: String,
    pub internal: String,
    pub admin: String,
}

impl Addresses {
    /// Resolves every role; `binding` is asked only for roles that need it.
    pub fn resolve(
        config: &Config,
        mut binding: impl FnMut(Role) -> anyhow::Result<Binding>,
    ) -> anyhow::Result<Addresses> {
        let mut host = |role: Role| -> anyhow::Result<String> {
            let facts = match role.needs_binding(config) {
                true => Some(binding(role)?),
                false => None,
            };
            Ok(resolve(config, role, facts.as_ref())?)
        };
        Ok(Addresses {
            public: host(Role::Public)?,
            internal: host(Role::Internal)?,
            admin: host(Role::Admin)?,
        })
    }

    pub fn host(&self, role: Role) -> &str {
        match role {
            Role::Public => &self.public,
            Role::Internal => &self.internal,
            Role::Admin => &self.admin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::testing::config;

    fn binding(addresses: &[(&str, &str)], ingress: &str) -> Binding {
        Binding {
            addresses: addresses
                .iter()
                .map(|(a, cidr)| (a.parse().unwrap(), Some(cidr.parse().unwrap())))
                .collect(),
            ingress: ingress.parse().ok(),
        }
    }

    #[test]
    fn a_hostname_wins_then_the_vip_in_the_bindings_subnet_then_the_binding() {
        let public = binding(&[("10.0.1.5", "10.0.1.0/24")], "10.0.1.5");
        let plain = config(json!({}));
        assert_eq!(
            resolve(&plain, Role::Public, Some(&public)).unwrap(),
            "10.0.1.5"
        );

        let named = config(json!({"os-public-hostname": "keystone.example.com"}));
        assert!(!Role::Public.needs_binding(&named));
        assert_eq!(
            resolve(&named, Role::Public, None).unwrap(),
            "keystone.example.com"
        );

        let vips = config(json!({"vip": "10.0.2.100 10.0.1.100"}));
        assert!(
            Role::Public.needs_binding(&vips),
            "two VIPs: the binding picks"
        );
        assert_eq!(
            resolve(&vips, Role::Public, Some(&public)).unwrap(),
            "10.0.1.100"
        );
        let elsewhere = binding(&[("10.0.9.5", "10.0.9.0/24")], "10.0.9.5");
        assert_eq!(
            resolve(&vips, Role::Public, Some(&elsewhere)).unwrap(),
            "10.0.2.100",
            "no VIP in the subnet: the first, never the unit's own address"
        );
        let one_vip = config(json!({"vip": "10.0.1.100"}));
        assert!(!Role::Public.needs_binding(&one_vip));
        assert_eq!(resolve(&one_vip, Role::Public, None).unwrap(), "10.0.1.100");
    }

    #[test]
    fn a_network_option_picks_the_address_or_vip_in_it() {
        let two = binding(
            &[
                ("10.0.1.5", "10.0.1.0/24"),
                ("192.168.7.5", "192.168.7.0/24"),
            ],
            "10.0.1.5",
        );
        let split = config(json!({"os-admin-network": "192.168.7.0/24"}));
        assert_eq!(
            resolve(&split, Role::Admin, Some(&two)).unwrap(),
            "192.168.7.5"
        );
        assert_eq!(
            resolve(&split, Role::Public, Some(&two)).unwrap(),
            "10.0.1.5"
        );
        let vips = config(json!({
            "os-admin-network": "192.168.7.0/24",
            "vip": "10.0.1.100 192.168.7.100"
        }));
        assert_eq!(
            resolve(&vips, Role::Admin, Some(&two)).unwrap(),
            "192.168.7.100"
        );
    }

    #[test]
    fn prefer_ipv6_picks_a_global_ipv6_address() {
        let dual = binding(
            &[
                ("10.0.1.5", "10.0.1.0/24"),
                ("fe80::1", "fe80::/64"),
                ("2001:db8::5", "2001:db8::/64"),
            ],
            "10.0.1.5",
        );
        let v6 = config(json!({"prefer-ipv6": true}));
        assert_eq!(
            resolve(&v6, Role::Internal, Some(&dual)).unwrap(),
            "2001:db8::5"
        );
        let v4 = config(json!({}));
        assert_eq!(
            resolve(&v4, Role::Internal, Some(&dual)).unwrap(),
            "10.0.1.5"
        );
    }

    #[test]
    fn no_address_says_how_to_bind_one() {
        let err = resolve(&config(json!({})), Role::Admin, Some(&Binding::default())).unwrap_err();
        assert!(
            err.to_string().contains("juju bind keystone admin=<space>"),
            "{err}"
        );
    }

    #[test]
    fn network_get_output_becomes_a_binding() {
        let info: NetworkInfo = serde_json::from_value(json!({
            "bind-addresses": [{"mac-address": "", "interface-name": "eth0",
                "addresses": [{"hostname": "", "value": "10.0.1.5", "cidr": "10.0.1.0/24"}]}],
            "egress-subnets": ["10.0.1.5/32"],
            "ingress-addresses": ["10.0.1.5"]
        }))
        .unwrap();
        assert_eq!(
            Binding::from_network(&info),
            binding(&[("10.0.1.5", "10.0.1.0/24")], "10.0.1.5")
        );
    }
}
