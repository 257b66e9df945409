//! Options accepted for compatibility with the Python charm but not implemented here: said
//! once, when the operator changes the config.

use anyhow::Result;

use crate::event::Event;
use crate::step::{Condition, Hook, Step};

/// The config-warnings step: [`run`].
pub const STEP: Step = Step::new("config-warnings", run);

/// Step: in config-changed, one WARNING per such option set to a non-default value.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    if *hook.event == Event::ConfigChanged {
        for warning in unimplemented_warnings(&hook.config.unimplemented_options_set()) {
            tracing::warn!("{warning}");
        }
    }
    Ok(Vec::new())
}

/// One WARNING per option that is accepted for compatibility but has no effect here.
pub fn unimplemented_warnings(options: &[&str]) -> Vec<String> {
    options
        .iter()
        .map(|option| {
            format!("option {option} is set but this charm does not implement it; it has no effect")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unimplemented_options_are_named_one_warning_each() {
        assert_eq!(
            unimplemented_warnings(&["verbose", "use-policyd-override"]),
            [
                "option verbose is set but this charm does not implement it; it has no effect",
                "option use-policyd-override is set but this charm does not implement it; it has no effect",
            ]
        );
        assert!(unimplemented_warnings(&[]).is_empty());
    }
}
