//! The `identity-admin` relation (interface `keystone-admin`): the cloud administrator's
//! credentials, for tempest, openstack-exporter and the like. Every unit publishes them; nothing
//! is made in Keystone.
//!
//! `service_tenant_name` is the admin project's name: the reactive interface needs it non-empty,
//! and the Python charm's value there, the admin role's name, names no project.

use anyhow::Result;

use crate::event::Endpoint;
use crate::identity::{ADMIN_DOMAIN, ADMIN_PROJECT};
use crate::juju::{Databag, RelationId};
use crate::relations::cluster;
use crate::relations::consumers::{self, API_VERSION, Location, Reply};
use crate::relations::service_passwords::Passwords;
use crate::step::{Condition, Hook, Step};

pub const ENDPOINT: Endpoint = Endpoint::IdentityAdmin;

/// The reply (every unit computes it: it needs nothing from Keystone).
pub fn reply(config: &crate::config::Config, password: &str, at: &Location) -> Reply {
    let pairs = [
        ("service_hostname", at.admin_host.clone()),
        ("service_port", at.service_port.to_string()),
        ("service_protocol", at.protocol.to_owned()),
        ("service_username", config.admin_user.clone()),
        ("service_password", password.to_owned()),
        ("service_tenant_name", ADMIN_PROJECT.to_owned()),
        ("service_project_name", ADMIN_PROJECT.to_owned()),
        ("service_user_domain_name", ADMIN_DOMAIN.to_owned()),
        ("service_project_domain_name", ADMIN_DOMAIN.to_owned()),
        ("service_region", at.region.clone()),
        ("api_version", API_VERSION.to_owned()),
    ];
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Some(v)))
        .collect()
}

/// The endpoint, for [`consumers::run`].
pub struct IdentityAdmin;

/// The identity-admin step: [`run`].
pub const STEP: Step = Step::new("identity-admin", run).reads(crate::relations::consumers::READS);

/// Step: see the module documentation.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    consumers::run::<IdentityAdmin>(hook)
}

impl consumers::IdentityEndpoint for IdentityAdmin {
    const ENDPOINT: Endpoint = ENDPOINT;
    const RECORDS: &'static str = "";
    /// The stored admin password, and when it was rotated.
    const WATCHES: &'static str = crate::peer_keys::ADMIN_CREDENTIALS_PREFIX;

    fn settings(config: &crate::config::Config) -> String {
        // admin-password itself is hashed, never written down.
        let password = config
            .admin_password
            .as_ref()
            .map(|p| consumers::digest(&[p.expose()]));
        consumers::digest(&[&config.admin_user, &config.regions, &password])
    }

    fn reply(
        hook: &Hook<'_>,
        _relation: &RelationId,
        peer_bag: &Databag,
        location: &Location,
        _passwords: &Passwords,
    ) -> Result<Option<Reply>> {
        let Some(stored) = cluster::admin::credentials(hook.juju, peer_bag)? else {
            return Ok(None);
        };
        let password = stored.password_in_force(&hook.config);
        Ok(Some(reply(&hook.config, password.expose(), location)))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::Sim;
    use juju_sim_fixtures::scripted::{IdentityConsumer, IdentityInterface};
    use serde_json::json;

    #[test]
    fn every_unit_publishes_the_admin_credentials_and_a_rotation_reaches_them() {
        let mut sim = Sim::ready(2);
        let tempest = IdentityConsumer::new("tempest", IdentityInterface::Admin);
        let seen = tempest.replies.clone();
        sim.model
            .deploy_scripted("tempest", Box::new(tempest), 1)
            .unwrap();
        sim.model.relate("keystone", "tempest").unwrap();
        sim.settle();
        let password = |sim: &mut Sim| {
            let task = sim.action("keystone/1", "get-admin-password", json!({}));
            task.results["admin-password"].as_str().unwrap().to_owned()
        };
        let replies = seen.lock().unwrap().get("tempest/0").cloned().unwrap();
        let before = password(&mut sim);
        for unit in ["keystone/0", "keystone/1"] {
            let reply = &replies[unit];
            assert_eq!(reply["service_password"], before, "{unit}");
            assert_eq!(reply["service_tenant_name"], "admin");
            assert_eq!(reply["service_project_name"], "admin");
            assert_eq!(reply["service_user_domain_name"], "admin_domain");
            assert_eq!(reply["api_version"], "3");
        }
        let task = sim.action("keystone/0", "rotate-admin-password", json!({}));
        assert_eq!(task.status, "completed", "{task:?}");
        sim.settle();
        let after = password(&mut sim);
        assert_ne!(after, before);
        let replies = seen.lock().unwrap().get("tempest/0").cloned().unwrap();
        for unit in ["keystone/0", "keystone/1"] {
            assert_eq!(replies[unit]["service_password"], after, "{unit}");
        }
    }
}
