//! The application's one cache: every unit's Keystone caches in the same memcached, so an
//! invalidation made through any unit reaches the one copy every unit reads.
//!
//! One server, not one per unit. Keystone's memcache client (python-memcached under oslo.cache)
//! sends a key whose server it finds dead to another server, and Keystone keeps the id of each
//! cache region as a key that never expires. With several servers, a unit that found one dead
//! for a moment (at deploy, when the others had not started memcached yet) made its own region
//! ids on another server and kept reading what it cached under them: measured on three units, a
//! project disabled through one unit still issued tokens on the other two after 20 s. With one
//! server there is nowhere else to go: a unit that cannot reach it caches nothing until it can,
//! and flushes it when it reconnects (`memcache_pool_flush_on_reconnect`).
//!
//! Pure: this unit's and its peers' names and addresses in, the cache's shape out:
//! - the server: the memcached of the unit with the lowest number, which scaling out never
//!   changes (every unit runs memcached, so when that unit goes the next one serves at once);
//! - where this unit's memcached listens: its cluster address, never a wildcard;
//! - who may reach it: memcached has no authentication and a poisoned cache would forge
//!   authorisations, so the unit's firewall (nftables) lets only the application's units in,
//!   and on each unit only Keystone (and root) out to their memcached.

use std::net::IpAddr;

/// memcached's port (Debian's default).
pub const MEMCACHED_PORT: u16 = 11211;

/// The users who may open a connection to the application's memcached from a unit: root (the
/// charm) and keystone (its WSGI daemons and keystone-manage).
pub const CACHE_CLIENTS: [&str; 2] = ["root", "keystone"];

/// Another unit of the application: its name, its cluster address (its memcached's) and the
/// addresses of its other bindings (it may connect from any of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerAddresses {
    pub unit: String,
    pub cluster: Option<IpAddr>,
    pub roles: Vec<IpAddr>,
}

/// The cache every unit of the application shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCache {
    /// The memcached every unit caches in.
    pub server: IpAddr,
    /// Where this unit's memcached listens.
    pub listen: IpAddr,
    /// The addresses the application's units connect from (every unit's cluster address, and
    /// the peers' role addresses), ordered.
    pub members: Vec<IpAddr>,
}

/// A unit's number (`keystone/3` is 3); a name without one sorts last.
fn number(unit: &str) -> u64 {
    unit.rsplit_once('/')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(u64::MAX)
}

impl SharedCache {
    /// The cache for unit `me` at `own` (its cluster address) with `peers`. Without an address
    /// of its own, the unit keeps a cache of its own on loopback, which no other unit reads.
    pub fn of(me: &str, own: Option<IpAddr>, peers: &[PeerAddresses]) -> SharedCache {
        let Some(own) = own else {
            let loopback = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
            return SharedCache {
                server: loopback,
                listen: loopback,
                members: vec![loopback],
            };
        };
        let server = peers
            .iter()
            .filter_map(|p| Some((number(&p.unit), p.cluster?)))
            .chain([(number(me), own)])
            .min_by_key(|(n, address)| (*n, *address))
            .map_or(own, |(_, address)| address);
        let mut members: Vec<IpAddr> = std::iter::once(own)
            .chain(peers.iter().filter_map(|p| p.cluster))
            .chain(peers.iter().flat_map(|p| &p.roles).copied())
            .collect();
        members.sort();
        members.dedup();
        SharedCache {
            server,
            listen: own,
            members,
        }
    }

    /// keystone.conf's `memcache_servers`, as oslo.cache's memcache_pool reads them (IPv6 as
    /// `inet6:[address]:port`).
    pub fn memcache_servers(&self) -> Vec<String> {
        vec![match self.server {
            IpAddr::V4(v4) => format!("{v4}:{MEMCACHED_PORT}"),
            IpAddr::V6(v6) => format!("inet6:[{v6}]:{MEMCACHED_PORT}"),
        }]
    }

    /// The member addresses of one family, for the firewall's sets.
    pub fn members_v4(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|a| a.is_ipv4())
            .map(IpAddr::to_string)
            .collect()
    }

    pub fn members_v6(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|a| a.is_ipv6())
            .map(IpAddr::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(unit: &str, address: &str) -> PeerAddresses {
        PeerAddresses {
            unit: unit.into(),
            cluster: address.parse().ok(),
            roles: Vec::new(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_unit_caches_in_the_lowest_numbered_units_memcached() {
        let on_0 = SharedCache::of(
            "keystone/0",
            Some(ip("10.0.0.12")),
            &[
                peer("keystone/1", "10.0.0.3"),
                peer("keystone/2", "10.0.0.20"),
            ],
        );
        let on_1 = SharedCache::of(
            "keystone/1",
            Some(ip("10.0.0.3")),
            &[
                peer("keystone/2", "10.0.0.20"),
                peer("keystone/0", "10.0.0.12"),
            ],
        );
        assert_eq!(on_0.server, on_1.server);
        assert_eq!(on_0.memcache_servers(), ["10.0.0.12:11211"]);
        assert_eq!(on_0.listen, ip("10.0.0.12"));
        assert_eq!(on_1.listen, ip("10.0.0.3"));
        // keystone/10 joining does not move the cache; keystone/0 leaving moves it to keystone/1.
        let scaled = SharedCache::of(
            "keystone/10",
            Some(ip("10.0.0.2")),
            &[
                peer("keystone/1", "10.0.0.3"),
                peer("keystone/0", "10.0.0.12"),
            ],
        );
        assert_eq!(scaled.server, ip("10.0.0.12"));
        let without_0 = SharedCache::of(
            "keystone/2",
            Some(ip("10.0.0.20")),
            &[peer("keystone/1", "10.0.0.3")],
        );
        assert_eq!(without_0.server, ip("10.0.0.3"));
    }

    #[test]
    fn a_peer_without_an_address_is_no_server_and_a_unit_without_one_keeps_to_loopback() {
        let silent = peer("keystone/0", "");
        let cache = SharedCache::of("keystone/1", Some(ip("10.0.0.2")), &[silent]);
        assert_eq!(cache.memcache_servers(), ["10.0.0.2:11211"]);
        let alone = SharedCache::of("keystone/1", None, &[peer("keystone/0", "10.0.0.3")]);
        assert_eq!(alone.memcache_servers(), ["127.0.0.1:11211"]);
        assert_eq!(alone.listen, ip("127.0.0.1"));
    }

    #[test]
    fn members_are_every_address_a_unit_may_connect_from() {
        let mut other = peer("keystone/1", "10.0.0.3");
        other.roles = vec![ip("192.168.1.3"), ip("fd00::3")];
        let cache = SharedCache::of("keystone/0", Some(ip("10.0.0.2")), &[other]);
        assert_eq!(cache.members_v4(), ["10.0.0.2", "10.0.0.3", "192.168.1.3"]);
        assert_eq!(cache.members_v6(), ["fd00::3"]);
    }

    #[test]
    fn an_ipv6_server_is_written_as_oslo_cache_reads_it() {
        let cache = SharedCache::of(
            "keystone/1",
            Some(ip("fd00::2")),
            &[peer("keystone/0", "fd00::1")],
        );
        assert_eq!(cache.memcache_servers(), ["inet6:[fd00::1]:11211"]);
    }
}
