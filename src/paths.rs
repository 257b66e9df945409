//! Every path on the unit's machine that the charm reads or writes, in one place.

/// Keystone's default config path: keystone-manage and the WSGI entry points read it with no
/// environment variable, which Apache could not pass to them anyway.
pub const KEYSTONE_CONF: &str = "/etc/keystone/keystone.conf";
/// Keystone's configuration directory, and its paste pipeline where the package has one.
pub const KEYSTONE_CONF_DIR: &str = "/etc/keystone";
pub const KEYSTONE_PASTE_INI: &str = "/etc/keystone/keystone-paste.ini";
pub const LOGGING_CONF: &str = "/etc/keystone/logging.conf";
pub const KEYSTONE_LOG: &str = "/var/log/keystone/keystone.log";
/// The key repositories keystone.conf names (each a symlink to a complete set, see
/// [`crate::host::keys`]).
pub const FERNET_KEYS: &str = "/etc/keystone/fernet-keys/";
pub const CREDENTIAL_KEYS: &str = "/etc/keystone/credential-keys/";
/// The database's TLS material from shared-db (ssl_ca, ssl_cert, ssl_key), as the Python charm.
pub const DB_CLIENT_CA: &str = "/etc/keystone/db-client.ca";
pub const DB_CLIENT_CERT: &str = "/etc/keystone/db-client.cert";
pub const DB_CLIENT_KEY: &str = "/etc/keystone/db-client.key";
/// The Python charm's site name: switching charms replaces its vhost instead of adding a
/// second one on the same ports.
pub const VHOST_SITE: &str = "wsgi-openstack-api";
pub const VHOST_FILE: &str = "/etc/apache2/sites-available/wsgi-openstack-api.conf";
pub const APACHE_LOG_DIR: &str = "/var/log/apache2";
/// The certificate Keystone is served with (ssl_cert or the `certificates` relation's), its
/// chain and key in one file, root 0600: haproxy reads it as it (re)starts, and takes a renewed
/// one over its admin socket.
pub const HAPROXY_TLS_PEM: &str = "/etc/haproxy/keystone-tls.pem";
/// What haproxy checks the other units' certificates against: ssl_ca or the relation's CA (the
/// certificate itself when self-signed).
pub const HAPROXY_TLS_CA: &str = "/etc/haproxy/keystone-tls-ca.pem";
/// ssl_ca in the system's CA store (update-ca-certificates picks it up), so every client on the
/// unit trusts Keystone's certificate, as with the Python charm.
pub const SYSTEM_CA: &str = "/usr/local/share/ca-certificates/keystone_juju_ca_cert.crt";
pub const WSGI_PUBLIC: &str = "/usr/bin/keystone-wsgi-public";
pub const WSGI_ADMIN: &str = "/usr/bin/keystone-wsgi-admin";
/// What the charm keeps for its Nagios checks, which run as the nagios user (who may not read
/// /var/lib/keystone).
pub const NAGIOS_STATE_DIR: &str = "/var/lib/keystone-charm";
/// The leader's published fernet generation and this unit's at its last hook.
pub const FERNET_PUBLISHED: &str = "/var/lib/keystone-charm/fernet.json";
/// The charm's binary, copied where NRPE runs plugins from (`check haproxy`, `check fernet`).
pub const NAGIOS_PLUGIN: &str = "/usr/local/lib/nagios/plugins/keystone-charm";
/// haproxy's read-only statistics socket, for the haproxy check.
pub const HAPROXY_MONITOR_SOCKET: &str = "/run/haproxy/keystone-monitor.sock";
/// Where NRPE reads its checks (made by the nrpe charm's package).
pub const NRPE_CHECKS_DIR: &str = "/etc/nagios/nrpe.d";
/// haproxy's configuration, on every unit.
pub const HAPROXY_CFG: &str = "/etc/haproxy/haproxy.cfg";
/// Where haproxy's init script and systemd unit keep its (master's) pid.
pub const HAPROXY_PID: &str = "/run/haproxy.pid";
/// haproxy's admin socket (haproxy.cfg's `stats socket`), on loopback's side of the unit only.
pub const HAPROXY_ADMIN_SOCKET: &str = "/run/haproxy/admin.sock";
/// The password of haproxy's statistics page (loopback only), generated once per unit.
pub const HAPROXY_STATS_PASSWORD: &str = "/var/lib/keystone/charm-haproxy-stats";
/// This unit's cluster address and its peers, as this unit last read them from the cluster
/// relation (see [`crate::facts::KnownPeers`]).
pub const KNOWN_PEERS: &str = "/var/lib/keystone/charm-peers.json";
/// memcached's configuration, which Debian's init script and systemd unit read.
pub const MEMCACHED_CONF: &str = "/etc/memcached.conf";
/// The nftables table that lets only the application's units reach memcached, as last loaded
/// (`nft -f`).
pub const CACHE_FIREWALL: &str = "/var/lib/keystone/charm-cache-firewall.nft";
/// The distribution and its series (`ID`, `VERSION_CODENAME`).
pub const OS_RELEASE: &str = "/etc/os-release";
/// The installed Keystone's upstream version, as install, start and upgrade-charm read it.
pub const KEYSTONE_VERSION: &str = "/var/lib/keystone/charm-keystone-version";
/// Keystone's policy (keystone.conf's `[oslo_policy] policy_file`).
pub const POLICY: &str = "/etc/keystone/policy.yaml";
/// Present while the unit drains from haproxy before its release upgrade, until its upgraded
/// Keystone answers: Keystone's /healthcheck, which haproxy checks, answers 503 meanwhile. In
/// Keystone's directory, which its WSGI processes can search.
pub const DRAINING_MARKER: &str = "/var/lib/keystone/charm-draining";
/// Present while the operator has paused the unit (the pause and resume actions).
pub const PAUSED_MARKER: &str = "/var/lib/keystone/charm-paused";
/// Present from pre-series-upgrade to post-series-upgrade.
pub const SERIES_UPGRADE_MARKER: &str = "/var/lib/keystone/charm-series-upgrade";
/// Present while Keystone answered the charm's last readiness check on this unit.
pub const ANSWERING_MARKER: &str = "/var/lib/keystone/charm-answering";
/// What the ha step last learned from Juju (whether hacluster is related and has clustered,
/// and what blocks the relation), kept so that hooks with nothing new for ha ask Juju nothing.
pub const HA_STATE: &str = "/var/lib/keystone/charm-ha.json";
/// What the certificates relation issued to this unit and the key of its signing request
/// (root, 0600).
pub const CERTIFICATE_STATE: &str = "/var/lib/keystone/charm-certificate.json";
/// The charm's templates, under the charm directory Juju unpacked.
pub const TEMPLATES_DIR: &str = "templates";
/// The kernel's hostname: the vhost's ServerName unless os-public-hostname is set.
pub const HOSTNAME: &str = "/proc/sys/kernel/hostname";
