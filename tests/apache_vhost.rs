//! Real Apache (Debian's apache2 with mod_wsgi) accepts every variant of the vhost the charm
//! renders: plain, behind haproxy's TLS, and with a path prefix.

mod support;

use std::path::Path;
use std::process::Command;

use keystone_charm::config::Config;
use keystone_charm::render::{Templates, Vhost};
use serde_json::{Value, json};
use support::TempDir;

const MODULES: &str = "/usr/lib/apache2/modules";

fn config(changes: Value) -> Config {
    let mut options = support::config_defaults();
    for (k, v) in changes.as_object().unwrap() {
        options.insert(k.clone(), v.clone());
    }
    Config::from_options(&options).unwrap()
}

/// `apache2 -t` on a top-level config that loads the modules and includes the vhost.
fn apache_accepts(dir: &Path, vhost: &str) {
    assert!(
        Path::new(MODULES).join("mod_wsgi.so").exists(),
        "apache2 and libapache2-mod-wsgi-py3 are needed (scripts/install-deps)"
    );
    std::fs::write(dir.join("vhost.conf"), vhost).unwrap();
    let top = format!(
        "ServerRoot /etc/apache2\nDefaultRuntimeDir {d}\nPidFile {d}/apache2.pid\nErrorLog {d}/error.log\n\
         LoadModule mpm_event_module {MODULES}/mod_mpm_event.so\n\
         LoadModule authz_core_module {MODULES}/mod_authz_core.so\n\
         LoadModule wsgi_module {MODULES}/mod_wsgi.so\n\
         LoadModule env_module {MODULES}/mod_env.so\n\
         Include {d}/vhost.conf\n",
        d = dir.display()
    );
    std::fs::write(dir.join("apache2.conf"), top).unwrap();
    let output = Command::new("apache2")
        .arg("-t")
        .arg("-f")
        .arg(dir.join("apache2.conf"))
        .output()
        .expect("run apache2 (scripts/install-deps installs it)");
    assert!(
        output.status.success(),
        "apache2 -t refused the vhost:\n{}\n{vhost}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn apache_accepts_every_vhost_variant() {
    let templates = Templates::bundled();
    let dir = TempDir::new("apache-vhost");
    // Behind haproxy's TLS: on loopback, saying https.
    let behind_tls = |mut vhost: Vhost| {
        vhost.behind_tls = true;
        vhost.listen_address = Some("127.0.0.1".parse().unwrap());
        vhost
    };
    let variants = [
        Vhost::from_config(&config(json!({})), 2, "10.0.0.10"),
        Vhost::from_config(
            &config(json!({"service-path-prefix": "/api/idm"})),
            2,
            "10.0.0.10",
        ),
        behind_tls(Vhost::from_config(
            &config(json!({"service-port": 5443, "admin-port": 35443})),
            8,
            "keystone.example.com",
        )),
        behind_tls(Vhost::from_config(
            &config(json!({"service-path-prefix": "/api/idm", "worker-multiplier": 0.5})),
            4,
            "keystone.example.com",
        )),
    ];
    for vhost in &variants {
        apache_accepts(dir.path(), &templates.vhost(vhost).unwrap());
    }
}
