//! `juju refresh --switch` from the Python charm, on real services: two units serving a consumer
//! on real Keystone, Apache and MariaDB are laid out as the Python charm leaves a unit (its
//! vhost a file of its own in sites-enabled, its memcached on ::1, its cron job, its TLS
//! frontend site, its policy.json and Nagios checks), then refreshed. The layout is written by
//! this test from the Python charm's resource map (openstack/charm-keystone,
//! hooks/keystone_utils.py: the paths it writes); its vhost is this charm's with one rule only
//! it has, so the test can tell which one Apache serves. Then one unit goes through a series
//! upgrade's hooks. Needs root and the packages scripts/install-deps installs.

mod support;

use juju_sim::Model;
use juju_sim_fixtures::demo::{http, issue_admin_token, token_status};
use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};
use serde_json::Map;
use support::{TempDir, settle};

const VHOST: &str = "/etc/apache2/sites-enabled/wsgi-openstack-api.conf";
const MARKER: &str = "/python-charm-vhost";

/// What the Python charm leaves, by path, besides its vhost.
const LEFTOVERS: [(&str, &str); 6] = [
    (
        "/etc/cron.d/keystone-fernet-rotate-sync",
        "0 * * * * root /usr/bin/keystone-fernet-rotate-sync.py\n",
    ),
    (
        "/etc/apache2/sites-available/openstack_https_frontend.conf",
        "# the Python charm's TLS frontend (no TLS here: nothing in it)\n",
    ),
    ("/etc/keystone/policy.json", "{}\n"),
    (
        "/etc/nagios/nrpe.d/check_haproxy_servers.cfg",
        "command[check_haproxy_servers]=/usr/local/lib/nagios/plugins/check_haproxy.sh\n",
    ),
    (
        "/etc/nagios/nrpe.d/check_apache2.cfg",
        "command[check_apache2]=/usr/lib/nagios/plugins/check_service apache2\n",
    ),
    (
        "/etc/memcached.conf",
        "-d\nlogfile /var/log/memcached.log\n-m 64\n-p 11211\n-u memcache\n-l ::1\n",
    ),
];

fn base(model: &Model, unit: &str) -> String {
    format!("http://{}:5000/v3", model.unit_address(unit).unwrap())
}

/// What Apache on `unit` answers for the Python vhost's marker path: 302 while it serves that
/// vhost, 404 once it serves this charm's.
fn marker_status(model: &Model, unit: &str) -> u16 {
    let url = format!("http://{}:4990{MARKER}", model.unit_address(unit).unwrap());
    http(&[&url]).unwrap().status
}

/// Lays `unit` out as the Python charm leaves it, and has its Apache serve that vhost.
fn lay_out_as_the_python_charm(model: &Model, unit: &str) {
    let vhost = model.unit_path(unit, VHOST);
    let ours = std::fs::read_to_string(&vhost).unwrap();
    let theirs: String = ours
        .lines()
        .flat_map(|line| {
            let mut lines = vec![line.to_owned()];
            if line.starts_with("<VirtualHost") {
                lines.push(format!("    Redirect {MARKER} /v3"));
            }
            lines
        })
        .map(|line| line + "\n")
        .collect();
    std::fs::remove_file(&vhost).unwrap();
    std::fs::write(&vhost, theirs).unwrap();
    for (path, text) in LEFTOVERS {
        let path = model.unit_path(unit, path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let graceful = model
        .exec_on_unit(unit, &["apache2ctl", "graceful"])
        .unwrap();
    assert!(graceful.status.success(), "{graceful:?}");
}

#[test]
fn a_unit_the_python_charm_left_serves_this_charms_files_after_a_refresh_and_a_series_upgrade() {
    let out = TempDir::new("switch-real");
    let charm = support::pack_charm(&out);
    let mut model = support::keystone_on_mariadb(&charm, "switch", 2, support::lean(Map::new()));
    let nova = IdentityConsumer::new("nova", IdentityInterface::Service);
    model.deploy_scripted("nova", Box::new(nova), 1).unwrap();
    let relation = model.relate("keystone", "nova").unwrap();
    settle(&mut model);
    let units = model.units("keystone");
    let password = {
        let task = model
            .run_action("keystone/0", "get-admin-password", Map::new())
            .unwrap();
        task.results["admin-password"].as_str().unwrap().to_owned()
    };
    let before_switch = issue_admin_token(&base(&model, &units[0]), &password, &[]).unwrap();
    let credentials = |model: &Model| {
        let mut bag = model.relation_data(relation, &units[0]);
        bag.retain(|key, _| key.contains("password") || key.contains("username"));
        bag
    };
    let told = credentials(&model);
    assert!(!told.is_empty());

    for unit in &units {
        lay_out_as_the_python_charm(&model, unit);
        // Apache serves the Python charm's vhost now.
        let mut status = marker_status(&model, unit);
        for _ in 0..50 {
            if status == 302 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            status = marker_status(&model, unit);
        }
        assert_eq!(status, 302, "{unit} serves the planted vhost");
    }

    model.upgrade_charm("keystone").unwrap();
    settle(&mut model);
    support::assert_ready(&model);
    for unit in &units {
        // Apache serves this charm's vhost, linked from sites-enabled.
        let link = model.unit_path(unit, VHOST);
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(marker_status(&model, unit), 404, "{unit}");
        // memcached listens where keystone.conf's cache reaches it, not on ::1.
        let memcached =
            std::fs::read_to_string(model.unit_path(unit, "/etc/memcached.conf")).unwrap();
        assert!(!memcached.contains("::1"), "{unit}: {memcached}");
        let address = model.unit_address(unit).unwrap();
        assert!(
            memcached.contains(&format!("-l {address}")),
            "{unit}: {memcached}"
        );
        // Nothing else of the Python charm's is left.
        for (path, _) in &LEFTOVERS[..5] {
            assert!(!model.unit_path(unit, path).exists(), "{unit}: {path}");
        }
        // The security checklist passes every check, as the unit is now.
        let checklist = model
            .run_action(unit, "security-checklist", Map::new())
            .unwrap();
        assert_eq!(
            checklist.status, "completed",
            "{unit}: {:?}",
            checklist.results
        );
        assert_eq!(checklist.results.len(), 7, "{:?}", checklist.results);
        assert!(
            checklist.results.values().all(|v| v == "PASS"),
            "{unit}: {:?}",
            checklist.results
        );
        // A token issued before the switch validates after it, on every unit.
        let here = base(&model, unit);
        let admin = issue_admin_token(&here, &password, &[]).unwrap();
        assert_eq!(
            token_status(&here, &admin, &before_switch).unwrap(),
            200,
            "{unit}"
        );
    }
    assert_eq!(
        credentials(&model),
        told,
        "no consumer's credentials changed"
    );

    // A series upgrade of the second unit: paused while it waits, the first serves meanwhile;
    // back when it is complete.
    let (first, second) = (&units[0], &units[1]);
    model.queue_hook(second, "pre-series-upgrade");
    settle(&mut model);
    let (kind, message) = model.unit_status(second).unwrap();
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "blocked",
            "Ready for do-release-upgrade and reboot. Set complete when finished."
        )
    );
    let apache = format!("http://{}:4990/v3", model.unit_address(second).unwrap());
    assert!(http(&[&apache]).is_err(), "Apache is stopped on {second}");
    let here = base(&model, first);
    let admin = issue_admin_token(&here, &password, &[]).unwrap();
    assert_eq!(token_status(&here, &admin, &before_switch).unwrap(), 200);
    model.queue_hook(second, "post-series-upgrade");
    settle(&mut model);
    support::assert_ready(&model);
    let there = base(&model, second);
    let admin = issue_admin_token(&there, &password, &[]).unwrap();
    assert_eq!(token_status(&there, &admin, &before_switch).unwrap(), 200);
}
