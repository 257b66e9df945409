//! haproxy on every unit: it takes Keystone's ports (service-port, admin-port) and spreads
//! requests over the units that may serve, those holding the current fernet keys whose
//! Keystone answers, with this unit's Apache [`crate::config::APACHE_PORT_OFFSET`] below each
//! port, as with the Python charm. A VIP or a load balancer in front of the units then never
//! reaches a unit that would fail a token: haproxy's own health check (`GET
//! <prefix>/healthcheck`) takes a unit whose Apache stops out within seconds, and the cluster
//! relation takes out a unit that does not hold the current keys.
//!
//! With TLS (ssl_cert or the `certificates` relation), haproxy serves it: to clients, and to the
//! other units' haproxy, which reach this unit's Apache through it
//! ([`crate::config::PEER_TLS_PORT_OFFSET`] below each port) since Apache then listens on
//! loopback only. A renewed certificate goes to the running haproxy over its admin socket.
//!
//! The peers are read from the cluster relation in its own hooks (where their data can change)
//! and in start and upgrade-charm, and kept on the machine for the other hooks. haproxy.cfg is
//! rewritten, and haproxy reloaded (not restarted: open connections finish), only when it
//! changed.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::addresses::Role;
use crate::config::Config;
use crate::facts::FactName;
use crate::facts::{Answering, HeldKeys, KnownPeers, Peer, Rendered, Serving};
use crate::host::fs::{DesiredFile, Files, Owner, write_files};
use crate::host::services::Service;
use crate::paths;
use crate::render::{Haproxy, HaproxyApi, HaproxyNetwork, HaproxyServer, HaproxyTls, WsgiApp};
use crate::secret::Sensitive;
use crate::step::{Condition, Hook, Step};

/// Where haproxy's statistics page listens, on loopback.
const STATS_PORT: u16 = 8888;

/// The peers haproxy may send requests to: those that say they hold `generation` (any
/// generation while this unit holds none yet).
fn serving(peers: &[Peer], generation: Option<u64>) -> impl Iterator<Item = &Peer> {
    peers.iter().filter(move |peer| match generation {
        Some(current) => peer.ready == Some(current),
        None => peer.ready.is_some(),
    })
}

/// The units haproxy sends requests to by default: this one (over loopback) when it may serve,
/// and every serving peer at its cluster address.
pub fn servers(
    me: &str,
    self_ready: bool,
    peers: &[Peer],
    generation: Option<u64>,
) -> Vec<HaproxyServer> {
    let peers = serving(peers, generation).filter_map(|peer| {
        Some(HaproxyServer {
            unit: peer.unit.clone(),
            address: peer.address?,
        })
    });
    with_self(me, self_ready, peers)
}

/// For each os-*-network (each network once): the same units at their addresses in it; a
/// peer with none is not a backend there.
pub fn networks(
    config: &Config,
    me: &str,
    self_ready: bool,
    peers: &[Peer],
    generation: Option<u64>,
) -> Vec<HaproxyNetwork> {
    let mut networks: Vec<HaproxyNetwork> = Vec::new();
    for role in Role::ALL {
        let Some(network) = role.network(config) else {
            continue;
        };
        if networks.iter().any(|n| n.network == network) {
            continue;
        }
        // The peer's address in the network, whichever of its roles (or the cluster) it is.
        let peers = serving(peers, generation).filter_map(|peer| {
            let address = *peer
                .role_addresses
                .values()
                .chain(&peer.address)
                .find(|address| network.contains(*address))?;
            Some(HaproxyServer {
                unit: peer.unit.clone(),
                address,
            })
        });
        networks.push(HaproxyNetwork {
            name: role.binding(),
            network,
            servers: with_self(me, self_ready, peers),
        });
    }
    networks
}

fn with_self(
    me: &str,
    self_ready: bool,
    peers: impl Iterator<Item = HaproxyServer>,
) -> Vec<HaproxyServer> {
    let mut servers: Vec<HaproxyServer> = peers.collect();
    if self_ready {
        servers.push(HaproxyServer {
            unit: me.to_owned(),
            address: std::net::Ipv4Addr::LOCALHOST.into(),
        });
    }
    servers.sort();
    servers
}

/// haproxy for `config` over `servers` (and each network's).
pub fn plan(
    config: &Config,
    servers: Vec<HaproxyServer>,
    networks: Vec<HaproxyNetwork>,
    stats_password: Sensitive<String>,
) -> Haproxy {
    Haproxy {
        ipv6: config.prefer_ipv6,
        apis: vec![
            HaproxyApi {
                app: WsgiApp::Public,
                port: config.service_port,
                backend_port: config.apache_service_port(),
                peer_port: config.peer_tls_service_port(),
            },
            HaproxyApi {
                app: WsgiApp::Admin,
                port: config.admin_port,
                backend_port: config.apache_admin_port(),
                peer_port: config.peer_tls_admin_port(),
            },
        ],
        servers,
        networks,
        check_path: format!("{}/healthcheck", config.service_path_prefix),
        tls: config.tls.as_ref().map(|_| HaproxyTls {
            pem_file: paths::HAPROXY_TLS_PEM.to_owned(),
            ca_file: paths::HAPROXY_TLS_CA.to_owned(),
        }),
        timeouts: config.haproxy_timeouts,
        stats_port: STATS_PORT,
        stats_password,
        cache: None,
    }
}

/// The haproxy step: [`run`].
pub const STEP: Step = Step::new("haproxy", run).reads(&[
    FactName::Serving,
    FactName::HeldKeys,
    FactName::Answering,
    FactName::KnownPeers,
    FactName::Rendered,
]);

/// Step: once Keystone serves on this unit, haproxy in front of it.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let Some(serving) = hook.facts.get::<Serving>().copied() else {
        return Ok(Vec::new());
    };
    // The keystone-files step wrote both before Apache could serve.
    let (Some(known), Some(rendered)) =
        (hook.facts.get::<KnownPeers>(), hook.facts.get::<Rendered>())
    else {
        return Ok(Vec::new());
    };
    let peers = known.peers.clone();
    let files = hook.machine.files.as_ref();
    let generation = hook.facts.get::<HeldKeys>().map(|k| k.generation);
    let self_ready = generation.is_some() && hook.facts.get::<Answering>().is_some();
    let me = hook.juju.unit().as_str();
    let servers = servers(me, self_ready, &peers, generation);
    let networks = networks(&hook.config, me, self_ready, &peers, generation);
    let mut haproxy = plan(&hook.config, servers, networks, stats_password(files)?);
    // The cache every unit shares (crate::cache), fronted on loopback.
    haproxy.cache = hook.config.enable_cache.then(|| known.shared_cache(me));
    let text = match rendered.templates.haproxy(&haproxy) {
        Ok(text) => text,
        Err(err) => return Ok(vec![Condition::Blocked(err.to_string())]),
    };
    let file = DesiredFile::new(
        paths::HAPROXY_CFG,
        text,
        Owner::new("root", "haproxy"),
        0o640,
    );
    let pem = served_pem(&hook.config);
    let tls = tls_files(&hook.config, pem.as_ref());
    let written = write_files(files, &[], std::iter::once(&file).chain(&tls))?;
    let wrote = |path: &str| written.iter().any(|p| p == Path::new(path));
    let changed = wrote(paths::HAPROXY_CFG) || wrote(paths::HAPROXY_TLS_CA);
    let services = hook.machine.services.as_ref();
    let running = services.is_running(Service::Haproxy)?;
    if running && serving.changed && self_ready {
        // Apache was (re)started in this hook and has just answered the readiness check, but
        // haproxy's checks may still count it down for seconds: say it is up now, in the
        // running process (a reload would leave the old process serving for a moment with
        // its stale view).
        let server = hook.juju.unit().as_str().replace('/', "-");
        for api in &haproxy.apis {
            let command = format!(
                "set server keystone-{}/{server} health up",
                api.app.as_str()
            );
            if let Err(err) = services.haproxy_command(&command) {
                tracing::warn!("{err}; haproxy's own checks will find Apache up in seconds");
            }
        }
    }
    let mut reload = changed || !running;
    if !reload && wrote(paths::HAPROXY_TLS_PEM) {
        // A renewal: the running haproxy takes the certificate as it is, where a reload would
        // hand its connections to a new process.
        match pem
            .as_ref()
            .map(|pem| services.replace_haproxy_certificate(paths::HAPROXY_TLS_PEM, pem))
        {
            Some(Ok(())) => tracing::info!("haproxy serves the renewed certificate"),
            Some(Err(err)) => {
                tracing::warn!("{err}; reloading haproxy instead");
                reload = true;
            }
            None => {}
        }
    }
    if reload {
        tracing::info!("reloading haproxy: its configuration changed");
        services
            .reload(Service::Haproxy)
            .context("cannot reload haproxy")?;
    }
    if tls.is_empty() {
        // Keystone no longer serves TLS: no copy of the key stays behind.
        for path in [paths::HAPROXY_TLS_PEM, paths::HAPROXY_TLS_CA] {
            files
                .remove(Path::new(path))
                .with_context(|| format!("cannot remove {path}, which haproxy no longer serves"))?;
        }
    }
    Ok(Vec::new())
}

/// The certificate Keystone is served with, its chain and key, as haproxy takes them.
fn served_pem(config: &Config) -> Option<Sensitive<String>> {
    let tls = config.tls.as_ref()?;
    Some(Sensitive::new(format!(
        "{}\n{}\n",
        tls.cert_pem.trim_end(),
        tls.key_pem.expose().trim_end()
    )))
}

/// haproxy's certificate file (root 0600) and the CA it checks the other units' against; none
/// without TLS.
fn tls_files(config: &Config, pem: Option<&Sensitive<String>>) -> Vec<DesiredFile> {
    let (Some(pem), Some(ca)) = (pem, config.trusted_ca()) else {
        return Vec::new();
    };
    vec![
        DesiredFile::new(
            paths::HAPROXY_TLS_PEM,
            pem.expose().clone(),
            Owner::root(),
            0o600,
        ),
        DesiredFile::new(paths::HAPROXY_TLS_CA, ca, Owner::root(), 0o644),
    ]
}

/// The statistics page's password, generated once per unit.
fn stats_password(files: &dyn Files) -> Result<Sensitive<String>> {
    let path = Path::new(paths::HAPROXY_STATS_PASSWORD);
    if let Some(bytes) = files
        .read(path)
        .context("cannot read haproxy's statistics password")?
        && let Ok(text) = String::from_utf8(bytes)
        && !text.trim().is_empty()
    {
        return Ok(Sensitive::new(text.trim().to_owned()));
    }
    let password = crate::identity::generate_password()
        .map_err(|e| anyhow::anyhow!("cannot generate haproxy's statistics password: {e}"))?;
    files
        .write(path, password.expose().as_bytes(), &Owner::root(), 0o600)
        .context("cannot keep haproxy's statistics password")?;
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Templates;
    use serde_json::json;

    use crate::testing::config;

    fn peer(unit: &str, address: &str, ready: Option<u64>) -> Peer {
        Peer {
            unit: unit.into(),
            address: address.parse().ok(),
            role_addresses: Default::default(),
            ready,
        }
    }

    #[test]
    fn requests_arriving_on_an_os_network_go_to_the_units_addresses_in_it() {
        let mut on_admin = peer("keystone/1", "10.0.0.2", Some(4));
        on_admin
            .role_addresses
            .insert("admin".into(), "192.168.7.2".parse().unwrap());
        on_admin
            .role_addresses
            .insert("internal".into(), "10.0.0.2".parse().unwrap());
        let elsewhere = peer("keystone/2", "10.0.0.3", Some(4));
        let config = config(json!({
            "os-admin-network": "192.168.7.0/24",
            "os-internal-network": "192.168.7.0/24",
        }));
        let peers = [on_admin, elsewhere];
        let nets = networks(&config, "keystone/0", true, &peers, Some(4));
        assert_eq!(nets.len(), 1, "one backend per network: {nets:?}");
        assert_eq!(nets[0].name, "internal");
        let in_network: Vec<String> = nets[0]
            .servers
            .iter()
            .map(|s| format!("{} {}", s.unit, s.address))
            .collect();
        assert_eq!(
            in_network,
            ["keystone/0 127.0.0.1", "keystone/1 192.168.7.2"],
            "a peer with no address in the network is not a backend there"
        );
        let default = servers("keystone/0", true, &peers, Some(4));
        let text = Templates::bundled()
            .haproxy(&plan(&config, default, nets, Sensitive::new("pw".into())))
            .unwrap();
        assert!(
            text.contains(
                "    acl net_internal dst 192.168.7.0/24\n    use_backend keystone-public-internal if net_internal\n    default_backend keystone-public\n"
            ),
            "{text}"
        );
        assert!(text.contains("backend keystone-admin-internal\n"), "{text}");
        assert!(
            text.contains("server keystone-1 192.168.7.2:35347 check"),
            "{text}"
        );
    }

    #[test]
    fn the_cache_goes_to_the_lowest_numbered_unit_whose_memcached_answers_the_others_standing_by() {
        let known = KnownPeers {
            own: "10.0.0.3".parse().ok(),
            peers: vec![
                peer("keystone/2", "10.0.0.4", None),
                peer("keystone/0", "10.0.0.9", Some(4)),
            ],
            public_host: None,
        };
        let config = config(json!({}));
        let mut haproxy = plan(&config, Vec::new(), Vec::new(), Sensitive::new("pw".into()));
        haproxy.cache = Some(known.shared_cache("keystone/1"));
        let text = Templates::bundled().haproxy(&haproxy).unwrap();
        let section = &text[text
            .find("listen keystone-cache")
            .expect("the cache section")..];
        assert!(section.contains("    bind 127.0.0.1:11212\n"), "{section}");
        let servers: Vec<&str> = section
            .lines()
            .filter(|l| l.trim_start().starts_with("server "))
            .collect();
        assert_eq!(servers.len(), 3, "{section}");
        assert!(servers[0].starts_with("    server keystone-0 10.0.0.9:11211 check"));
        assert!(!servers[0].ends_with(" backup"), "{section}");
        assert!(servers[1].starts_with("    server keystone-1 10.0.0.3:11211 check"));
        assert!(servers[1].ends_with(" backup") && servers[2].ends_with(" backup"));
        assert!(servers[2].starts_with("    server keystone-2 10.0.0.4:11211 check"));
        // Without the cache, no section.
        haproxy.cache = None;
        let text = Templates::bundled().haproxy(&haproxy).unwrap();
        assert!(!text.contains("keystone-cache"), "{text}");
    }

    #[test]
    fn only_units_holding_the_current_keys_with_keystone_answering_are_backends() {
        let peers = [
            peer("keystone/1", "10.0.0.2", Some(4)),
            peer("keystone/2", "10.0.0.3", Some(3)),
            peer("keystone/3", "10.0.0.4", None),
        ];
        let names = |servers: Vec<HaproxyServer>| -> Vec<String> {
            servers
                .into_iter()
                .map(|s| format!("{} {}", s.unit, s.address))
                .collect()
        };
        assert_eq!(
            names(servers("keystone/0", true, &peers, Some(4))),
            ["keystone/0 127.0.0.1", "keystone/1 10.0.0.2"]
        );
        assert_eq!(
            names(servers("keystone/0", false, &peers, Some(4))),
            ["keystone/1 10.0.0.2"],
            "this unit does not answer: only its peers"
        );
        assert_eq!(
            names(servers("keystone/0", false, &peers, None)),
            ["keystone/1 10.0.0.2", "keystone/2 10.0.0.3"],
            "holding no keys yet, every peer that serves"
        );
    }

    #[test]
    fn the_rendered_configuration_matches_its_snapshot() {
        let config = config(json!({
            "haproxy-server-timeout": 60000,
            "healthcheck-timeout": 2000,
            "service-path-prefix": "/api/idm"
        }));
        let servers = servers(
            "keystone/0",
            true,
            &[peer("keystone/1", "10.0.0.2", Some(1))],
            Some(1),
        );
        let text = Templates::bundled()
            .haproxy(&plan(
                &config,
                servers,
                Vec::new(),
                Sensitive::new("StatsPw1".into()),
            ))
            .unwrap();
        insta::assert_snapshot!("haproxy_cfg", text);
    }

    #[test]
    fn with_tls_haproxy_holds_the_certificate_and_the_units_speak_tls_to_each_other() {
        let (cert, key) = crate::testing::tls_pair(&["keystone.example.com"]);
        let b64 = crate::testing::b64;
        let config = config(json!({
            "prefer-ipv6": true, "ssl_cert": b64(&cert), "ssl_key": b64(&key),
        }));
        let servers = servers(
            "keystone/0",
            true,
            &[peer("keystone/1", "10.0.0.2", Some(1))],
            Some(1),
        );
        let haproxy = plan(&config, servers, Vec::new(), Sensitive::new("pw".into()));
        let text = Templates::bundled().haproxy(&haproxy).unwrap();
        insta::assert_snapshot!("haproxy_cfg_tls", text);
        let pem = paths::HAPROXY_TLS_PEM;
        let ca = paths::HAPROXY_TLS_CA;
        for line in [
            format!("    bind :::5000 ssl crt {pem} ssl-min-ver TLSv1.2\n"),
            format!("    bind :::35357 ssl crt {pem} ssl-min-ver TLSv1.2\n"),
            // This unit's Apache over loopback, in plain HTTP.
            "    server keystone-0 127.0.0.1:4990 check inter 2000 downinter 1000 rise 2 fall 3\n"
                .to_owned(),
            // Another unit's through its haproxy, whose certificate the CA must have issued.
            format!(
                "    server keystone-1 10.0.0.2:4980 check inter 2000 downinter 1000 rise 2 fall 3 \
                 ssl verify required ca-file {ca}\n"
            ),
            format!("    bind :::4980 ssl crt {pem} ssl-min-ver TLSv1.2\n"),
            "    server apache 127.0.0.1:35347\n".to_owned(),
        ] {
            assert!(text.contains(&line), "{line:?} in\n{text}");
        }
        // The certificate, its chain and key in one file only root reads; the CA beside it.
        let pem = served_pem(&config).unwrap();
        let files = tls_files(&config, Some(&pem));
        assert_eq!(
            files
                .iter()
                .map(|f| (f.path.display().to_string(), f.mode))
                .collect::<Vec<_>>(),
            [
                (paths::HAPROXY_TLS_PEM.to_owned(), 0o600),
                (paths::HAPROXY_TLS_CA.to_owned(), 0o644)
            ]
        );
        assert!(pem.expose().starts_with(cert.trim_end()));
        assert!(pem.expose().ends_with(&format!("{}\n", key.trim_end())));
        // Self-signed, without ssl_ca: the certificate itself is what the units trust.
        assert_eq!(files[1].content, cert.as_bytes());
    }

    #[test]
    fn a_stats_password_that_could_break_the_file_is_refused() {
        let hostile = plan(
            &config(json!({})),
            Vec::new(),
            Vec::new(),
            Sensitive::new("pw\nlisten x".into()),
        );
        assert!(Templates::bundled().haproxy(&hostile).is_err());
    }
}

#[cfg(test)]
mod deployed {
    use crate::host::services::{Service, ServiceAction};
    use crate::paths;
    use crate::testing::Sim;

    fn haproxy_cfg(sim: &Sim, unit: &str) -> String {
        sim.file(unit, paths::HAPROXY_CFG)
    }

    #[test]
    fn every_unit_fronts_every_ready_unit_and_reloads_only_on_change() {
        let mut sim = Sim::ready(2);
        let address = sim.model.unit_address("keystone/1").unwrap();
        let cfg = haproxy_cfg(&sim, "keystone/0");
        assert!(
            cfg.contains("server keystone-0 127.0.0.1:4990 check"),
            "{cfg}"
        );
        assert!(
            cfg.contains(&format!("server keystone-1 {address}:4990 check")),
            "{cfg}"
        );
        let peer_cfg = haproxy_cfg(&sim, "keystone/1");
        assert!(
            peer_cfg.contains("server keystone-1 127.0.0.1:35347 check"),
            "{peer_cfg}"
        );
        let leader = sim.model.unit_address("keystone/0").unwrap();
        assert!(
            peer_cfg.contains(&format!("server keystone-0 {leader}:35347 check")),
            "{peer_cfg}"
        );

        // Nothing changed: no rewrite, no reload, and no peer read outside the peer hooks.
        let reloads = |sim: &Sim| {
            sim.machine("keystone/0")
                .1
                .services
                .actions()
                .iter()
                .filter(|a| **a == ServiceAction::Reload(Service::Haproxy))
                .count()
        };
        let before = reloads(&sim);
        assert!(sim.run("keystone/0", "config-changed"));
        assert!(sim.run("keystone/0", "update-status"));
        assert_eq!(reloads(&sim), before);

        // keystone/1 stops answering: after its next hook it is nobody's backend.
        // (keystone/0's hooks trust its own last answer: the two units share one Keystone
        // twin.)
        sim.keystone.lock().unwrap().not_answering = true;
        assert!(sim.run("keystone/1", "update-status"));
        sim.settle();
        let cfg = haproxy_cfg(&sim, "keystone/0");
        assert!(!cfg.contains("server keystone-1"), "{cfg}");
        assert!(cfg.contains("server keystone-0"), "{cfg}");
        assert_eq!(reloads(&sim), before + 1);
        // It answers again: back in.
        sim.keystone.lock().unwrap().not_answering = false;
        assert!(sim.run("keystone/1", "update-status"));
        sim.settle();
        assert!(haproxy_cfg(&sim, "keystone/0").contains("server keystone-1"));

        // Apache restarts for a new keystone.conf: haproxy hears at once that it is up.
        sim.model
            .set_config(
                "keystone",
                serde_json::json!({"debug": true})
                    .as_object()
                    .cloned()
                    .unwrap(),
            )
            .unwrap();
        sim.settle();
        let actions = sim.machine("keystone/0").1.services.actions();
        let restarted = actions
            .iter()
            .rposition(|a| *a == ServiceAction::Restart(Service::Apache2))
            .expect("Apache restarted");
        let after: Vec<&ServiceAction> = actions[restarted..].iter().collect();
        for backend in ["public", "admin"] {
            let command = format!("set server keystone-{backend}/keystone-0 health up");
            assert!(
                after.contains(&&ServiceAction::HaproxyCommand(command)),
                "{after:?}"
            );
        }
    }
}
