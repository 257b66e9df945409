//! The `keystone-service` relation (interface `keystone-service`): the dashboard's relation of
//! old. Horizon asks for its default role (`requested_roles`, or `role`); the role is created
//! and the reply says where Keystone is, as identity-service's "None" form does.
//!
//! No token is sent. Keystone once had a shared admin token (`admin_token` in keystone.conf)
//! that this relation handed out; it bypasses every policy and never expires, so Keystone
//! deprecated it and the charm never sets it: consumers authenticate with credentials instead.

use anyhow::Result;

use crate::event::Endpoint;
use crate::juju::{Databag, RelationId};
use crate::peer_keys;
use crate::relations::consumers::{self, Location, Record};
use crate::relations::identity_service::{self, Request, Settings};
use crate::relations::service_passwords::Passwords;
use crate::step::{Condition, Hook, Step};

pub const ENDPOINT: Endpoint = Endpoint::KeystoneService;

/// The roles one remote unit asks for: None until it asks.
pub fn parse_request(bag: &Databag) -> Result<Option<Request>, identity_service::RequestError> {
    let roles = bag
        .get("requested_roles")
        .or_else(|| bag.get("role"))
        .map(|v| v.trim())
        .filter(|v| !v.is_empty() && *v != "None");
    let Some(roles) = roles else {
        return Ok(None);
    };
    // identity-service's None form with the same roles: its checks and its reply.
    let mut as_identity_service: Databag = [
        "service",
        "region",
        "public_url",
        "admin_url",
        "internal_url",
    ]
    .into_iter()
    .map(|key| (key.to_owned(), "None".to_owned()))
    .collect();
    as_identity_service.insert("requested_roles".into(), roles.to_owned());
    identity_service::parse_request(&as_identity_service)
}

/// The endpoint, for [`consumers::run`].
pub struct KeystoneService;

/// The keystone-service step: [`run`].
pub const STEP: Step = Step::new("keystone-service", run).reads(crate::relations::consumers::READS);

/// Step: see the module documentation.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    consumers::run::<KeystoneService>(hook)
}

impl consumers::IdentityEndpoint for KeystoneService {
    const ENDPOINT: Endpoint = ENDPOINT;
    const RECORDS: &'static str = peer_keys::KEYSTONE_SERVICE_RECORDS;

    fn settings(config: &crate::config::Config) -> String {
        consumers::digest(&[&Settings::of(config)])
    }

    fn serve(
        hook: &mut Hook<'_>,
        relation: &RelationId,
        peer_bag: &Databag,
        location: &Location,
        _passwords: &mut Passwords,
    ) -> Result<()> {
        let settings = Settings::of(&hook.config);
        let Ok(request) = consumers::first_request(hook, relation, parse_request)? else {
            return Ok(());
        };
        let Some(request) = request else {
            return Ok(());
        };
        let inputs = identity_service::ReplyInputs {
            request: &request,
            settings: &settings,
            user: None,
            password: None,
            at: location,
            changes: None,
        };
        let digest = inputs.digest();
        if Record::is_current(
            peer_keys::KEYSTONE_SERVICE_RECORDS,
            relation,
            peer_bag,
            &digest,
        ) {
            return Ok(());
        }
        let objects = identity_service::objects(&request, &settings, None);
        let ensured = consumers::ensure(hook, relation, peer_bag, &objects)?;
        Record {
            digest,
            user: None,
            reply: identity_service::reply(&inputs, &ensured),
        }
        .store(hook, peer_keys::KEYSTONE_SERVICE_RECORDS, relation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystone_api::KeystoneApi as _;
    use crate::testing::Sim;
    use juju_sim::scripted::{ScriptedCharm, ScriptedHook};
    use std::sync::{Arc, Mutex};

    /// The dashboard of old: asks for its default role on keystone-service, keeps the replies.
    struct Dashboard(Arc<Mutex<Vec<Databag>>>);

    impl ScriptedCharm for Dashboard {
        fn metadata(&self) -> &str {
            "name: dashboard\nrequires:\n  keystone-service:\n    interface: keystone-service\n"
        }

        fn handle(&mut self, hook: &mut ScriptedHook<'_>) -> anyhow::Result<()> {
            let Some(relation) = hook.relation() else {
                return Ok(());
            };
            match hook.hook_name() {
                "keystone-service-relation-joined" => {
                    hook.relation_set(&relation, false, &[("requested_roles", "Dashboard-User")])
                }
                "keystone-service-relation-changed" => {
                    if let Some(remote) = hook.event.remote_unit.clone() {
                        let reply = hook.relation_get(&relation, &remote, false)?;
                        self.0.lock().unwrap().push(reply.into_iter().collect());
                    }
                    Ok(())
                }
                _ => Ok(()),
            }
        }
    }

    #[test]
    fn the_dashboards_role_is_created_and_the_reply_says_where_keystone_is() {
        let mut sim = Sim::ready(1);
        let seen = Arc::new(Mutex::new(Vec::new()));
        sim.model
            .deploy_scripted("dashboard", Box::new(Dashboard(seen.clone())), 1)
            .unwrap();
        sim.model.relate("keystone", "dashboard").unwrap();
        sim.settle();
        let roles = sim.keystone.lock().unwrap().list_roles().unwrap();
        assert!(
            roles.iter().any(|r| r.name == "Dashboard-User"),
            "{roles:?}"
        );
        let replies = seen.lock().unwrap();
        let reply = replies.last().expect("a reply");
        assert_eq!(reply["created_roles"], "Dashboard-User");
        assert_eq!(reply["api_version"], "3");
        assert_eq!(reply["service_port"], "5000");
        assert!(!reply.contains_key("admin_token"));
        assert!(!reply.contains_key("service_password"));
    }

    #[test]
    fn requests_name_roles_or_nothing() {
        let bag = |k: &str, v: &str| Databag::from([(k.to_owned(), v.to_owned())]);
        let request = parse_request(&bag("role", "Member")).unwrap().unwrap();
        assert!(request.endpoints.is_empty());
        assert_eq!(request.requested_roles, ["Member"]);
        assert_eq!(parse_request(&Databag::new()).unwrap(), None);
        assert!(parse_request(&bag("requested_roles", "a\nb")).is_err());
    }
}
