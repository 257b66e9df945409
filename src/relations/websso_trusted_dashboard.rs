//! The `websso-trusted-dashboard` relation (requires; openstack-dashboard provides it). Each
//! dashboard unit sends `scheme` (`https://`), `hostname` and `path` (`/auth/websso/`), and
//! Keystone's WebSSO posts a token only to a URL listed in `[federation] trusted_dashboard`:
//! one line per dashboard URL, as the Python charm renders them. The page that posts it is
//! Keystone's own (its default `sso_callback_template`). Nothing is sent back.
//!
//! What the dashboards sent is kept on the machine, so every hook renders keystone.conf with
//! them without asking Juju; only this relation's hooks and upgrade-charm read the relation.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use crate::event::Endpoint;
use crate::facts::FactName;
use crate::juju::Databag;
use crate::relations::kept;
use crate::render::fragments::{ConfFragment, Fragments};
use crate::status::Condition;
use crate::step::{Hook, Step};

pub const ENDPOINT: Endpoint = Endpoint::WebssoTrustedDashboard;

/// Where the dashboards last read from Juju are kept.
const KEPT: &str = "/var/lib/keystone-charm/websso-trusted-dashboards.json";

/// The websso-trusted-dashboard step: [`run`].
pub const STEP: Step = Step::new("websso-trusted-dashboard", run).writes(&[FactName::Fragments]);

/// What the dashboards said: the URLs Keystone trusts, and what was refused (unit and key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboards {
    pub trusted: BTreeSet<String>,
    pub refused: BTreeSet<String>,
}

/// Step: every trusted dashboard URL becomes a `[federation] trusted_dashboard` line.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let dashboards = kept::seen(hook, ENDPOINT, KEPT, "trusted dashboards", from_juju)?;
    hook.facts.add_fragments(fragments(&dashboards));
    Ok(kept::refused_notes(ENDPOINT, &dashboards.refused))
}

/// The keystone.conf lines.
pub fn fragments(dashboards: &Dashboards) -> Fragments {
    Fragments {
        conf: dashboards
            .trusted
            .iter()
            .map(|url| ConfFragment::repeat("federation", "trusted_dashboard", url.clone()))
            .collect(),
        ..Fragments::default()
    }
}

/// Every dashboard unit's URL, from Juju.
fn from_juju(hook: &Hook<'_>) -> Result<Dashboards> {
    let mut dashboards = Dashboards::default();
    for (relation, unit, bag) in kept::remote_bags(hook, ENDPOINT)? {
        match dashboard_url(&bag) {
            Ok(Some(url)) => {
                dashboards.trusted.insert(url);
            }
            Ok(None) => {}
            Err(key) => {
                tracing::error!(
                    "{relation}: {unit}'s {key} is not usable in a dashboard URL; it is not trusted"
                );
                dashboards.refused.insert(format!("{unit}'s {key}"));
            }
        }
    }
    Ok(dashboards)
}

/// A dashboard's URL, `<scheme><hostname><path>` as the Python charm joins them: None until
/// the unit sent all three; the key that is unusable, if one is.
pub fn dashboard_url(bag: &Databag) -> std::result::Result<Option<String>, &'static str> {
    let (Some(scheme), Some(hostname), Some(path)) =
        (bag.get("scheme"), bag.get("hostname"), bag.get("path"))
    else {
        return Ok(None);
    };
    if scheme != "http://" && scheme != "https://" {
        return Err("scheme");
    }
    let host_char = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
    if hostname.is_empty() || hostname.len() > 255 || !hostname.chars().all(host_char) {
        return Err("hostname");
    }
    // A URL path: printable ASCII, no space, nothing that ends the line or the value.
    let path_char = |c: char| c.is_ascii_graphic() && !"#\"'\\".contains(c);
    if !path.starts_with('/') || path.len() > 1024 || !path.chars().all(path_char) {
        return Err("path");
    }
    Ok(Some(format!("{scheme}{hostname}{path}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sim;

    fn bag(pairs: &[(&str, &str)]) -> Databag {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// openstack-dashboard's side: each unit sends its URL parts when the relation joins
    /// (`hostname` its address unless given).
    struct Dashboard {
        hostname: Option<&'static str>,
    }

    impl juju_sim::scripted::ScriptedCharm for Dashboard {
        fn metadata(&self) -> &str {
            "name: dashboard\nprovides:\n  websso-trusted-dashboard:\n    interface: websso-trusted-dashboard\n"
        }

        fn handle(
            &mut self,
            hook: &mut juju_sim::scripted::ScriptedHook<'_>,
        ) -> anyhow::Result<()> {
            let Some(relation) = hook.relation() else {
                return Ok(());
            };
            if hook.hook_name() == "websso-trusted-dashboard-relation-joined" {
                let address = hook.address();
                let hostname = self.hostname.unwrap_or(&address).to_owned();
                hook.relation_set(
                    &relation,
                    false,
                    &[
                        ("scheme", "http://"),
                        ("hostname", hostname.as_str()),
                        ("path", "/auth/websso/"),
                    ],
                )?;
            }
            Ok(())
        }
    }

    fn trusted_lines(sim: &Sim, unit: &str) -> Vec<String> {
        sim.file(unit, crate::paths::KEYSTONE_CONF)
            .lines()
            .filter(|l| l.starts_with("trusted_dashboard"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_unit_trusts_each_dashboard_unit_until_the_relation_goes() {
        let mut sim = Sim::ready(2);
        sim.model
            .deploy_scripted("horizon", Box::new(Dashboard { hostname: None }), 2)
            .unwrap();
        let id = sim.model.relate("keystone", "horizon").unwrap();
        sim.settle();
        let mut expected: Vec<String> = sim
            .model
            .units("horizon")
            .iter()
            .map(|u| {
                let address = sim.model.unit_address(u).unwrap();
                format!("trusted_dashboard = http://{address}/auth/websso/")
            })
            .collect();
        expected.sort();
        for unit in ["keystone/0", "keystone/1"] {
            assert_eq!(trusted_lines(&sim, unit), expected, "{unit}");
            assert_eq!(sim.status(unit), "active: Unit is ready", "{unit}");
            // Kept: a hook that does not read the relation renders the same lines.
            let conf = sim.file(unit, crate::paths::KEYSTONE_CONF);
            assert!(sim.run(unit, "update-status"));
            assert_eq!(sim.file(unit, crate::paths::KEYSTONE_CONF), conf, "{unit}");
        }
        sim.model.unrelate(id).unwrap();
        sim.settle();
        for unit in ["keystone/0", "keystone/1"] {
            assert_eq!(trusted_lines(&sim, unit), Vec::<String>::new(), "{unit}");
        }
    }

    #[test]
    fn a_dashboard_url_that_would_break_its_line_is_refused_by_name_and_nothing_injected() {
        let mut sim = Sim::ready(1);
        let hostile = "evil.example.com\n[database]\nconnection = sqlite:///tmp/x";
        sim.model
            .deploy_scripted(
                "horizon",
                Box::new(Dashboard {
                    hostname: Some(hostile),
                }),
                1,
            )
            .unwrap();
        sim.model.relate("keystone", "horizon").unwrap();
        sim.settle();
        let conf = sim.file("keystone/0", crate::paths::KEYSTONE_CONF);
        assert!(!conf.contains("evil"), "{conf}");
        assert_eq!(trusted_lines(&sim, "keystone/0"), Vec::<String>::new());
        assert_eq!(
            sim.status("keystone/0"),
            "active: Unit is ready (websso-trusted-dashboard: horizon/0's hostname refused)"
        );
    }

    #[test]
    fn a_dashboard_url_joins_what_the_dashboard_sent_and_refuses_what_breaks_it() {
        let good = [
            ("scheme", "https://"),
            ("hostname", "dashboard.example.com"),
            ("path", "/horizon/auth/websso/"),
        ];
        assert_eq!(
            dashboard_url(&bag(&good)),
            Ok(Some(
                "https://dashboard.example.com/horizon/auth/websso/".to_owned()
            ))
        );
        assert_eq!(dashboard_url(&bag(&good[..2])), Ok(None));
        let with = |key: &str, value: &str| {
            let mut b = bag(&good);
            b.insert(key.to_owned(), value.to_owned());
            dashboard_url(&b)
        };
        assert_eq!(
            with("hostname", "[fd00::1]:8443"),
            Ok(Some(
                "https://[fd00::1]:8443/horizon/auth/websso/".to_owned()
            ))
        );
        for (key, value) in [
            ("scheme", "ftp://"),
            ("scheme", "https://\n"),
            ("hostname", ""),
            ("hostname", "evil.example.com/\n[database]"),
            ("hostname", "a b"),
            ("path", "auth/websso/"),
            ("path", "/auth\n[database]\nconnection = sqlite://"),
            ("path", "/auth/ websso/"),
            ("path", "/auth/#x"),
        ] {
            assert_eq!(with(key, value), Err(key), "{key} = {value:?}");
        }
    }
}
