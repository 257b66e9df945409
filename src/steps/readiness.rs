//! Whether Keystone answers on this unit: `GET <prefix>/v3` must return 200 before the unit is
//! ready and before anything is asked of Keystone's API.
//!
//! The answer is kept on the machine between hooks, so that a hook that changed nothing asks
//! Keystone nothing: the check runs again when the workload changed, when the last check failed,
//! and in the hooks where Juju expects a health check (update-status every few minutes, start,
//! install, upgrade-charm).

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::event::Event;
use crate::facts::{Answering, FactName, Serving};
use crate::host::fs::Owner;
use crate::paths;
use crate::step::{Condition, Hook, Step, local_endpoint};

/// Whether this hook asks Keystone again rather than trusting the last answer.
fn must_check(event: &Event, serving: Serving, answered_before: bool) -> bool {
    let health_check = matches!(
        event,
        Event::UpdateStatus
            | Event::Start
            | Event::Install
            | Event::UpgradeCharm
            | Event::Action(_)
    );
    health_check || serving.changed || !answered_before
}

/// The readiness step: [`run`].
pub const STEP: Step = Step::new("readiness", run)
    .reads(&[FactName::Serving])
    .writes(&[FactName::Answering]);

/// Step: the readiness check, once Apache serves Keystone (unauthenticated, on the hook's one
/// Keystone session).
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let Some(serving) = hook.facts.get::<Serving>().copied() else {
        return Ok(Vec::new());
    };
    let marker = Path::new(paths::ANSWERING_MARKER);
    let files = hook.machine.files.as_ref();
    let answered_before = files
        .read(marker)
        .context("cannot read the readiness marker")?
        .is_some();
    if !must_check(hook.event, serving, answered_before) {
        hook.facts.set(Answering);
        return Ok(Vec::new());
    }
    let base = local_endpoint(&hook.config).base_url();
    let answer = match hook.keystone() {
        Ok(api) => match api.version_available() {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("GET {base}/v3 did not answer 200")),
            Err(err) => Err(err.to_string()),
        },
        Err(err) => Err(format!("{err:#}")),
    };
    match answer {
        Ok(()) => {
            files
                .write(marker, b"Keystone answered\n", &Owner::root(), 0o644)
                .context("cannot record that Keystone answers")?;
            hook.facts.set(Answering);
            Ok(Vec::new())
        }
        Err(reason) => {
            files
                .remove(marker)
                .context("cannot record that Keystone does not answer")?;
            Ok(vec![Condition::Waiting(format!(
                "Keystone is not answering yet ({reason})"
            ))])
        }
    }
}

/// The cluster-readiness step: [`publish`].
pub const PUBLISH: Step =
    Step::new("cluster-readiness", publish).reads(&[FactName::Answering, FactName::HeldKeys]);

/// Step: tells the other units whether this one can serve (see
/// [`crate::relations::cluster::readiness::report`]).
pub fn publish(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let answering = hook.facts.get::<Answering>().is_some();
    crate::relations::cluster::readiness::report(hook, answering)?;
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Endpoint, RelationHook};
    use crate::testing::Sim;

    #[test]
    fn a_hook_that_changed_nothing_trusts_the_last_answer() {
        let same = Serving { changed: false };
        let changed = Serving { changed: true };
        let config = Event::ConfigChanged;
        let relation = Event::Relation {
            endpoint: Endpoint::IdentityService,
            hook: RelationHook::Changed,
        };
        assert!(!must_check(&config, same, true));
        assert!(!must_check(&relation, same, true));
        assert!(must_check(&config, changed, true), "the workload changed");
        assert!(must_check(&config, same, false), "the last check failed");
        for health in [Event::UpdateStatus, Event::Start, Event::UpgradeCharm] {
            assert!(must_check(&health, same, true), "{health:?}");
        }
    }

    #[test]
    fn every_unit_tells_its_peers_its_address_on_each_binding() {
        let mut sim = Sim::ready(2);
        let id = sim.model.relation_id("keystone", "cluster").unwrap();
        for unit in ["keystone/0", "keystone/1"] {
            let address = sim.model.unit_address(unit).unwrap();
            let bag = sim.model.relation_data(id, unit);
            for key in ["public-address", "internal-address", "admin-address"] {
                assert_eq!(bag.get(key), Some(&address), "{unit} {key}: {bag:?}");
            }
        }
        // update-status does not ask again, and an unchanged address is not set again.
        assert!(sim.run("keystone/0", "update-status"));
        assert!(
            !sim.tools_called("keystone/0")
                .contains(&"network-get".to_owned())
        );
        assert!(sim.run("keystone/0", "config-changed"));
        assert!(
            !sim.tools_called("keystone/0")
                .contains(&"relation-set".to_owned())
        );
    }

    #[test]
    fn a_unit_juju_is_adding_counts_as_not_ready_before_it_joins() {
        let mut sim = Sim::ready(2);
        let ready = |sim: &Sim| sim.peer_app_bag().get("units-ready").cloned();
        let generation = ready(&sim).unwrap();
        assert_ne!(generation, "none");
        let new = sim.model.add_unit("keystone").unwrap();
        // The leader hears from keystone/1 before keystone/2 has joined the relation.
        let pending: Vec<_> = sim
            .model
            .world()
            .units
            .get_mut("keystone/0")
            .unwrap()
            .queue
            .drain(..)
            .collect();
        let id = sim.model.relation_id("keystone", "cluster").unwrap();
        let mut event = juju_sim::state::HookEvent::simple("cluster-relation-changed");
        event.relation = Some(id);
        event.remote_unit = Some("keystone/1".into());
        event.remote_app = Some("keystone".into());
        sim.model.world().queue("keystone/0", event);
        sim.model.settle_unit("keystone/0").unwrap();
        assert_eq!(
            ready(&sim).as_deref(),
            Some("none"),
            "goal-state expects {new}"
        );
        sim.model
            .world()
            .units
            .get_mut("keystone/0")
            .unwrap()
            .queue
            .extend(pending);
        sim.settle();
        assert_eq!(ready(&sim), Some(generation), "{new} joined and is ready");
    }
}
