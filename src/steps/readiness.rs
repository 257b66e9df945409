//! Whether Keystone answers on this unit: `GET <prefix>/v3` must return 200 before the unit is
//! ready and before anything is asked of Keystone's API.

use anyhow::Result;

use crate::step::{Condition, Hook, local_endpoint};
use crate::steps::workload::Serving;

/// Recorded when Keystone answered on this unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answering;

/// Step: the readiness check, once Apache serves Keystone (unauthenticated, on the hook's one
/// Keystone session).
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    if hook.found::<Serving>().is_none() {
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
            hook.record(Answering);
            Ok(Vec::new())
        }
        Err(reason) => Ok(vec![Condition::Waiting(format!(
            "Keystone is not answering yet ({reason})"
        ))]),
    }
}

/// Step: tells the other units whether this one can serve (see
/// [`crate::relations::cluster::report_readiness`]).
pub fn publish(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let answering = hook.found::<Answering>().is_some();
    crate::relations::cluster::report_readiness(hook, answering)?;
    Ok(Vec::new())
}
