//! Three units behind a VIP on real Keystone, Apache, haproxy and MariaDB, the simulator's
//! hacluster playing Pacemaker (it puts the VIP on one live unit's machine and moves it when that
//! machine goes down). A client issues and validates tokens through the VIP all the while: no
//! token fails when Apache stops on the VIP's holder (haproxy there routes around it), nor when
//! the holder's machine goes down and the VIP moves; nor before that, when the memcached every
//! unit caches in stops (with a bound on p99); nor after, when the machine of the unit whose
//! memcached then serves the cache goes down too, through the VIP and on the last unit's own
//! Apache. Prints its figures. Needs root and scripts/install-real-stack.

mod support;

use std::time::{Duration, Instant};

use serde_json::Map;
use support::TempDir;
use support::validator::{Figures, Validator, issue};

/// The bound on a validation's p99 while the cache's memcached is gone: until haproxy takes it
/// out (two failed checks a second apart) Keystone finds it gone at once (connection refused)
/// and serves uncached, then caches in the next unit's.
const CACHE_LOSS_P99: Duration = Duration::from_millis(1500);

/// Sends SIGTERM to the daemon whose pid `unit` keeps in `pid_file`.
fn terminate(model: &juju_sim::Model, unit: &str, pid_file: &str) {
    let pid = std::fs::read_to_string(model.unit_path(unit, pid_file)).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success(), "kill {pid_file} on {unit}");
}

#[test]
fn tokens_keep_validating_through_the_vip_while_apache_stops_and_the_vip_holder_goes_down() {
    let out = TempDir::new("ha-failover");
    let charm = support::pack_charm(&out);
    let (mut model, vip) =
        support::deploy_behind_vip(&charm, "failover", 10, support::lean(Map::new()));
    for unit in model.units("keystone") {
        assert_eq!(
            model.unit_status(&unit),
            Some(("active".to_owned(), "Unit is ready".to_owned())),
            "{unit}"
        );
    }
    let holder = model.vip_holder(vip).expect("hacluster placed the VIP");
    // The Nagios plugins of nrpe-external-master, run on a unit as NRPE would.
    let plugin = charm.join("bin/keystone-charm");
    for check in ["haproxy", "fernet"] {
        let out = model.exec_on(&holder, &plugin, &["check", check]).unwrap();
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("check {check} on {holder}: {}", line.trim());
        assert_eq!(out.status.code(), Some(0), "{line}");
        assert!(line.starts_with("OK: "), "{line}");
    }
    let base = format!("http://{vip}:5000/v3");
    let password = {
        let task = model
            .run_action("keystone/0", "get-admin-password", Map::new())
            .unwrap();
        task.results["admin-password"].as_str().unwrap().to_owned()
    };
    assert!(
        issue(&base, &password, &[]).is_some(),
        "a token through the VIP"
    );

    let validator = Validator::start(&base, &password, &[]);
    let phase = |seconds: u64| std::thread::sleep(Duration::from_secs(seconds));
    let started = Instant::now();
    phase(5);
    let steady = validator.figures();

    // The memcached every unit caches in (the lowest-numbered unit's) stops: each unit's haproxy
    // takes it out within seconds and sends Keystone to the next unit's.
    let cache_unit = "keystone/0";
    terminate(&model, cache_unit, "/run/memcached/memcached.pid");
    phase(10);
    let without_cache = validator.figures();
    let p99 = |from: &Figures, to: &Figures| to.p99_since(from.latencies.len()).unwrap_or_default();
    let (p99_steady, p99_without_cache) = (
        p99(&Figures::default(), &steady),
        p99(&steady, &without_cache),
    );
    println!(
        "memcached stopped on {cache_unit}: {} validations in 10 s, {} failed, p99 {} ms (before: \
         {} validations in 5 s, p99 {} ms)",
        without_cache.validations - steady.validations,
        without_cache.failed,
        p99_without_cache.as_millis(),
        steady.validations,
        p99_steady.as_millis(),
    );
    assert_eq!(without_cache.failed, 0, "{:#?}", without_cache.failures);
    assert!(
        without_cache.validations > steady.validations + 20,
        "validations went on without the cache: {without_cache:?}"
    );
    assert!(
        p99_without_cache <= CACHE_LOSS_P99,
        "p99 {p99_without_cache:?} without the cache, over {CACHE_LOSS_P99:?}"
    );

    // Apache stops on the VIP's holder: its haproxy sends everything to the other units.
    terminate(&model, &holder, "/run/apache2/apache2.pid");
    phase(10);
    let during_apache_stop = validator.figures();
    // Its haproxy has seen its own Apache go: the Nagios check warns, naming it.
    let out = model
        .exec_on(&holder, &plugin, &["check", "haproxy"])
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    println!(
        "check haproxy on {holder} with its Apache stopped: {}",
        line.trim()
    );
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert!(line.contains(&holder.replace('/', "-")), "{line}");

    // The holder's machine goes down: Pacemaker moves the VIP to a live unit.
    model.stop_machine(&holder).unwrap();
    let new_holder = model.vip_holder(vip).unwrap();
    assert_ne!(new_holder, holder);
    phase(10);
    let after_holder_down = validator.figures();

    // The machine of the unit whose memcached now serves the cache goes down (the lowest-numbered
    // unit left with a memcached): haproxy on the last unit moves the cache to its own.
    let cache_now = model
        .units("keystone")
        .into_iter()
        .filter(|u| u != cache_unit && *u != holder)
        .min_by_key(|u| u.rsplit_once('/').and_then(|(_, n)| n.parse::<u32>().ok()))
        .unwrap();
    // (When it also held the VIP, haproxy on the last unit needs a few seconds more to find its
    // Apache gone.)
    // A client of the last unit's own Apache (no haproxy in front to retry elsewhere) sees every
    // request its Keystone answers while its cache moves.
    let survivor = model
        .units("keystone")
        .into_iter()
        .find(|u| *u != holder && *u != cache_now)
        .unwrap();
    let direct_base = format!("http://{}:4990/v3", model.unit_address(&survivor).unwrap());
    let direct = Validator::start(&direct_base, &password, &[]);
    phase(2);
    model.stop_machine(&cache_now).unwrap();
    phase(20);
    let f = validator.stop();
    let on_survivor = direct.stop();
    println!(
        "on {survivor}'s own Apache meanwhile: {} validations, {} failed, p99 {} ms",
        on_survivor.validations,
        on_survivor.failed,
        on_survivor.p99_since(0).unwrap_or_default().as_millis(),
    );
    assert_eq!(on_survivor.failed, 0, "{:#?}", on_survivor.failures);
    assert!(on_survivor.validations > 20, "{on_survivor:?}");
    println!(
        "the machine of {cache_now}, whose memcached served the cache, went down: {} validations \
         in 20 s, {} failed, p99 {} ms",
        f.validations - after_holder_down.validations,
        f.failed,
        p99(&after_holder_down, &f).as_millis(),
    );
    assert!(
        f.validations > after_holder_down.validations + 20,
        "validations went on after the cache's machine went down: {f:?}"
    );
    println!(
        "failover through the VIP {vip} ({} s): {} tokens issued, {} validations, {} failed, {} \
         unavailable (Apache stopped on {holder}: {} validations and {} unavailable by then; then \
         its machine went down and the VIP moved to {new_holder})",
        started.elapsed().as_secs(),
        f.issued,
        f.validations,
        f.failed,
        f.unavailable,
        during_apache_stop.validations,
        during_apache_stop.unavailable
    );
    println!(
        "p99 of a validation: {} ms while Apache was stopped on {holder}, {} ms after its machine \
         went down",
        p99(&without_cache, &during_apache_stop).as_millis(),
        p99(&during_apache_stop, &after_holder_down).as_millis(),
    );
    assert_eq!(f.failed, 0, "{:#?}", f.failures);
    assert!(f.issued >= 5, "{f:?}");
    assert!(
        after_holder_down.validations > during_apache_stop.validations + 20,
        "validations went on after the VIP moved: {after_holder_down:?}"
    );
}
