//! The application's one cache: every unit's Keystone caches in the same memcached, so an
//! invalidation made through any unit reaches the one copy every unit reads.
//!
//! Keystone reaches it through haproxy on its own unit (`127.0.0.1:11212`), which sends every
//! connection to the memcached of the lowest-numbered unit whose memcached answers, the others
//! standing by in unit order. Why not the obvious designs, measured on three real units:
//! - every unit's memcached in every unit's `memcache_servers`: Keystone's client
//!   (python-memcached under oslo.cache) sends a key whose server it finds dead to another
//!   server, and Keystone keeps each cache region's id as a key that never expires; units that
//!   served before the others had started memcached made their region ids elsewhere and kept
//!   reading what they cached under them (a project disabled through one unit still issued
//!   tokens on the other two 20 s later);
//! - one unit's memcached in every unit's `memcache_servers`: coherent, but when that unit's
//!   machine goes down oslo.cache, finding its only server dead, tries it again at every
//!   operation and waits `memcache_socket_timeout` each time; validations through the VIP
//!   took over 20 s.
//!
//! Through haproxy Keystone always has one server that answers at once; haproxy's health check
//! moves every unit to the same standby within seconds, and kills the sessions of a server it
//! takes down or of a standby it stops using, so Keystone reconnects and flushes the server it
//! then reaches (`memcache_pool_flush_on_reconnect`). And the units changing never changes
//! keystone.conf (so never restarts Keystone): only haproxy's configuration.
//!
//! Pure: this unit's and its peers' names and addresses in, the cache's shape out: the servers
//! in order, where this unit's memcached listens (its cluster address, never a wildcard), and
//! who may reach them. memcached has no authentication and a poisoned cache would forge
//! authorisations, so the unit's firewall (nftables) lets only the application's units reach a
//! memcached, and on each unit only root, Keystone and haproxy connect to one (only root and
//! Keystone to haproxy's cache port).

use std::net::IpAddr;

/// memcached's port (Debian's default).
pub const MEMCACHED_PORT: u16 = 11211;

/// haproxy's cache port on loopback, which keystone.conf names.
pub const CACHE_PROXY_PORT: u16 = 11212;

/// Who may connect to haproxy's cache port: root (the charm) and keystone (its WSGI daemons and
/// keystone-manage).
pub const CACHE_CLIENTS: [&str; 2] = ["root", "keystone"];

/// Who may connect to a memcached of the application: the cache's clients and haproxy (which
/// forwards their connections and checks the servers).
pub const MEMCACHED_CLIENTS: [&str; 3] = ["root", "keystone", "haproxy"];

/// keystone.conf's `memcache_servers` when the cache is on: haproxy on this unit.
pub const KEYSTONE_MEMCACHE_SERVER: &str = "127.0.0.1:11212";

/// Another unit of the application: its name, its cluster address (its memcached's) and the
/// addresses of its other bindings (it may connect from any of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerAddresses {
    pub unit: String,
    pub cluster: Option<IpAddr>,
    pub roles: Vec<IpAddr>,
}

/// One unit's memcached, as haproxy names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CacheServer {
    pub unit: String,
    pub address: IpAddr,
}

/// The cache every unit of the application shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCache {
    /// Every unit's memcached, lowest unit number first: haproxy uses the first that answers.
    pub servers: Vec<CacheServer>,
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
        let own = own.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        let mut servers: Vec<CacheServer> = peers
            .iter()
            .filter(|_| !own.is_loopback())
            .filter_map(|p| {
                Some(CacheServer {
                    unit: p.unit.clone(),
                    address: p.cluster?,
                })
            })
            .chain([CacheServer {
                unit: me.to_owned(),
                address: own,
            }])
            .collect();
        servers.sort_by_key(|s| (number(&s.unit), s.address));
        let mut members: Vec<IpAddr> = servers
            .iter()
            .map(|s| s.address)
            .chain(
                peers
                    .iter()
                    .filter(|_| !own.is_loopback())
                    .flat_map(|p| &p.roles)
                    .copied(),
            )
            .collect();
        members.sort();
        members.dedup();
        SharedCache {
            servers,
            listen: own,
            members,
        }
    }

    /// The IPv4 member addresses, for the firewall's set.
    pub fn members_v4(&self) -> Vec<String> {
        self.members_of(IpAddr::is_ipv4)
    }

    /// The IPv6 member addresses, for the firewall's set.
    pub fn members_v6(&self) -> Vec<String> {
        self.members_of(IpAddr::is_ipv6)
    }

    fn members_of(&self, family: fn(&IpAddr) -> bool) -> Vec<String> {
        self.members
            .iter()
            .filter(|a| family(a))
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

    fn order(cache: &SharedCache) -> Vec<String> {
        cache
            .servers
            .iter()
            .map(|s| format!("{} {}", s.unit, s.address))
            .collect()
    }

    #[test]
    fn every_unit_orders_the_servers_the_same_lowest_unit_first() {
        let on_0 = SharedCache::of(
            "keystone/0",
            Some(ip("10.0.0.12")),
            &[
                peer("keystone/10", "10.0.0.3"),
                peer("keystone/2", "10.0.0.20"),
            ],
        );
        let on_10 = SharedCache::of(
            "keystone/10",
            Some(ip("10.0.0.3")),
            &[
                peer("keystone/2", "10.0.0.20"),
                peer("keystone/0", "10.0.0.12"),
            ],
        );
        assert_eq!(
            order(&on_0),
            [
                "keystone/0 10.0.0.12",
                "keystone/2 10.0.0.20",
                "keystone/10 10.0.0.3"
            ]
        );
        assert_eq!(order(&on_0), order(&on_10));
        assert_eq!(on_0.listen, ip("10.0.0.12"));
        assert_eq!(on_10.listen, ip("10.0.0.3"));
    }

    #[test]
    fn a_peer_without_an_address_is_no_server_and_a_unit_without_one_keeps_to_loopback() {
        let cache = SharedCache::of(
            "keystone/1",
            Some(ip("10.0.0.2")),
            &[peer("keystone/0", "")],
        );
        assert_eq!(order(&cache), ["keystone/1 10.0.0.2"]);
        let alone = SharedCache::of("keystone/1", None, &[peer("keystone/0", "10.0.0.3")]);
        assert_eq!(order(&alone), ["keystone/1 127.0.0.1"]);
        assert_eq!(alone.listen, ip("127.0.0.1"));
        assert_eq!(alone.members, [ip("127.0.0.1")]);
    }

    #[test]
    fn members_are_every_address_a_unit_may_connect_from() {
        let mut other = peer("keystone/1", "10.0.0.3");
        other.roles = vec![ip("192.168.1.3"), ip("fd00::3")];
        let cache = SharedCache::of("keystone/0", Some(ip("10.0.0.2")), &[other]);
        assert_eq!(cache.members_v4(), ["10.0.0.2", "10.0.0.3", "192.168.1.3"]);
        assert_eq!(cache.members_v6(), ["fd00::3"]);
    }
}
