//! Policy overrides, as the OpenStack charms do them (charmhelpers' policyd): with
//! `use-policyd-override` true, the `policyd-override` resource is a zip of YAML files, each a
//! map of policy rules to rule strings, and each goes to `/etc/keystone/policy.d/<name>.yaml`,
//! where oslo.policy reads it over Keystone's policy. The unit's status says `PO:` while
//! overrides are in force, or `PO (broken):` with the reason when the resource cannot be used,
//! in which case no override is in force: a bad zip applies nothing of itself. Setting the
//! option to false removes the overrides. Keystone restarts when they change.
//!
//! The resource is read in install and upgrade-charm (Juju runs upgrade-charm when a new one is
//! attached), and in config-changed when the option changed what is in force; what is in force
//! is kept on the machine, so other hooks ask Juju nothing.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::facts::FactName;
use crate::host::fs::{DesiredFile, Owner, write_files};
use crate::relations::kept;
use crate::render::fragments::Fragments;
use crate::status::Condition;
use crate::step::{Hook, Step};

/// The resource's name in metadata.yaml.
pub const RESOURCE: &str = "policyd-override";
/// Where oslo.policy reads overrides (its `policy_dirs` default, beside the policy file).
pub const POLICY_DIR: &str = "/etc/keystone/policy.d";
/// What is in force, kept on the machine.
const KEPT: &str = "/var/lib/keystone-charm/policyd-override.json";
/// Rules an override may never replace (charmhelpers' list for every service).
const PROTECTED_RULES: [&str; 2] = ["admin_required", "cloud_admin"];
/// The most a file of the zip may hold once unpacked, and the whole zip.
const MAX_FILE: u64 = 1 << 20;
const MAX_FILES: usize = 200;

/// The policy-overrides step: [`run`].
pub const STEP: Step = Step::new("policy-overrides", run).writes(&[FactName::Fragments]);

/// What is in force on this unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InForce {
    /// The files written to policy.d, by name (without `.yaml`).
    pub files: BTreeSet<String>,
    /// Why the resource could not be used, when it could not.
    pub broken: Option<String>,
    /// use-policyd-override as last applied.
    pub enabled: bool,
}

/// One override file: its name and its rules, as YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub name: String,
    pub yaml: String,
}

/// Step: brings policy.d in line with the option and the resource; the status prefix.
pub fn run(hook: &mut Hook<'_>) -> Result<Vec<Condition>> {
    let files = hook.machine.files.as_ref();
    let before: InForce = kept::read(files, KEPT, "policy overrides")?;
    let enabled = hook.config.use_policyd_override;
    let look = match hook.event {
        Event::Install | Event::UpgradeCharm => true,
        Event::ConfigChanged => enabled != before.enabled,
        _ => false,
    };
    let (now, changed) = match look {
        false => (before.clone(), false),
        true => {
            let wanted = match enabled {
                false => Ok(Vec::new()),
                true => match hook
                    .juju
                    .resource_get(RESOURCE)
                    .context("cannot get the policyd-override resource from Juju")?
                {
                    None => Err("the policyd-override resource is not attached: juju \
                                 attach-resource keystone policyd-override=<zip>"
                        .to_owned()),
                    Some(zip) => overrides(&zip),
                },
            };
            apply(hook, &before, enabled, wanted)?
        }
    };
    if changed {
        hook.facts.add_fragments(Fragments {
            restart: vec!["the policy overrides changed".to_owned()],
            ..Fragments::default()
        });
    }
    Ok(conditions(&now))
}

/// Writes the overrides `wanted` (none when it is an error) and removes the others; what is
/// in force afterwards, kept, and whether a file changed.
fn apply(
    hook: &Hook<'_>,
    before: &InForce,
    enabled: bool,
    wanted: std::result::Result<Vec<Override>, String>,
) -> Result<(InForce, bool)> {
    let files = hook.machine.files.as_ref();
    let (wanted, broken) = match wanted {
        Ok(wanted) => (wanted, None),
        Err(reason) => {
            tracing::error!("policy overrides not applied: {reason}");
            (Vec::new(), Some(reason))
        }
    };
    let desired: Vec<DesiredFile> = wanted
        .iter()
        .map(|o| DesiredFile::keystone_readable(&file_of(&o.name), o.yaml.clone()))
        .collect();
    if !desired.is_empty() {
        files
            .ensure_dir(Path::new(POLICY_DIR), &Owner::root(), 0o755)
            .with_context(|| format!("cannot make {POLICY_DIR}"))?;
    }
    let mut changed = !write_files(files, &[], desired.iter())?.is_empty();
    let names: BTreeSet<String> = wanted.into_iter().map(|o| o.name).collect();
    for gone in before.files.difference(&names) {
        changed = true;
        let path = file_of(gone);
        files
            .remove(Path::new(&path))
            .with_context(|| format!("cannot remove {path}"))?;
        tracing::info!("removed the policy override {path}");
    }
    let now = InForce {
        files: names,
        broken,
        enabled,
    };
    kept::write(files, KEPT, "policy overrides", &now)?;
    Ok((now, changed))
}

fn file_of(name: &str) -> String {
    format!("{POLICY_DIR}/{name}.yaml")
}

/// The status prefix, and why the overrides are broken.
pub fn conditions(in_force: &InForce) -> Vec<Condition> {
    match (&in_force.broken, in_force.enabled) {
        (Some(reason), _) => vec![
            Condition::Prefix("PO (broken):".to_owned()),
            Condition::Note(format!("policyd-override: {reason}")),
        ],
        (None, true) => vec![Condition::Prefix("PO:".to_owned())],
        (None, false) => Vec::new(),
    }
}

/// The overrides a policyd-override zip holds, checked as charmhelpers checks them: at least
/// one `.yaml` or `.yml` file (other files are ignored; templates are refused, this charm has
/// no template function), no two with one name, each a map of rule names to rule strings that
/// does not replace `admin_required` or `cloud_admin`. Why it cannot be used, when it cannot.
pub fn overrides(zip: &[u8]) -> std::result::Result<Vec<Override>, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| format!("the resource is not a zip file ({e})"))?;
    if archive.len() > MAX_FILES {
        return Err(format!("the zip holds more than {MAX_FILES} files"));
    }
    let mut found: Vec<Override> = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| format!("the zip cannot be read ({e})"))?;
        if entry.is_dir() {
            continue;
        }
        let path = entry
            .name()
            .map_err(|e| format!("a name in the zip cannot be read ({e})"))?
            .into_owned();
        let file_name = path.rsplit('/').next().unwrap_or_default();
        let Some((name, extension)) = file_name.rsplit_once('.') else {
            continue;
        };
        match extension.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => {}
            "j2" | "tmpl" | "tpl" => {
                return Err(format!(
                    "{path} is a template, which this charm does not render"
                ));
            }
            _ => continue,
        }
        let name_char = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
        if name.is_empty() || name.starts_with('.') || !name.chars().all(name_char) {
            return Err(format!(
                "{path}: a name of letters, digits, _, - and . only"
            ));
        }
        if found.iter().any(|o| o.name == name) {
            return Err(format!("{name} is in the zip more than once"));
        }
        let mut text = String::new();
        (&mut entry)
            .take(MAX_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("{path} cannot be read as text ({e})"))?;
        if text.len() as u64 > MAX_FILE {
            return Err(format!("{path} is larger than {MAX_FILE} bytes"));
        }
        found.push(Override {
            name: name.to_owned(),
            yaml: rules(&path, &text)?,
        });
    }
    if found.is_empty() {
        return Err("the zip holds no .yaml or .yml file".to_owned());
    }
    Ok(found)
}

/// A file's rules, checked, written again as YAML (what oslo.policy reads is exactly what was
/// checked).
fn rules(path: &str, text: &str) -> std::result::Result<String, String> {
    let doc: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| format!("{path} is not YAML ({e})"))?;
    let serde_norway::Value::Mapping(map) = doc else {
        return Err(format!("{path} is not a map of policy rules"));
    };
    let mut rules = std::collections::BTreeMap::new();
    for (key, value) in map {
        let (serde_norway::Value::String(key), serde_norway::Value::String(value)) = (key, value)
        else {
            return Err(format!("{path}: every rule and its value must be strings"));
        };
        if PROTECTED_RULES.contains(&key.as_str()) {
            return Err(format!("{path} overrides {key}, which no override may"));
        }
        rules.insert(key, value);
    }
    serde_norway::to_string(&rules).map_err(|e| format!("{path} cannot be written again ({e})"))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::host::fs::Files as _;
    use crate::host::services::{Service, ServiceAction};
    use crate::testing::Sim;

    fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, text) in files {
            zip.start_file(*name, stored).unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn a_zip_is_read_as_charmhelpers_reads_it_and_refused_whole_when_any_of_it_is_bad() {
        let good = zip_of(&[
            ("projects.yaml", "identity:list_projects: \"!\"\n"),
            ("deep/users.YML", "identity:get_user: role:admin\n"),
            ("README.txt", "ignored"),
        ]);
        let found = overrides(&good).unwrap();
        let names: Vec<&str> = found.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["projects", "users"]);
        let rules: serde_norway::Value = serde_norway::from_str(&found[0].yaml).unwrap();
        assert_eq!(rules["identity:list_projects"], "!");

        let refused = |files: &[(&str, &str)], says: &str| {
            let reason = overrides(&zip_of(files)).unwrap_err();
            assert!(reason.contains(says), "{reason}");
        };
        refused(&[("a.txt", "x")], "no .yaml or .yml file");
        refused(
            &[("a.yaml", "x: y\n"), ("b/a.yml", "x: z\n")],
            "a is in the zip more than once",
        );
        refused(
            &[("a.yaml", "x: y\n"), ("b.j2", "x: {{ y }}\n")],
            "is a template",
        );
        refused(
            &[("a.yaml", "cloud_admin: \"@\"\n")],
            "overrides cloud_admin",
        );
        refused(
            &[("a.yaml", "admin_required: \"@\"\n")],
            "overrides admin_required",
        );
        refused(&[("a.yaml", "x: [1, 2]\n")], "must be strings");
        refused(&[("a.yaml", "- x\n")], "not a map of policy rules");
        refused(&[("a.yaml", "x: [\n")], "is not YAML");
        refused(&[("a b.yaml", "x: y\n")], "a name of letters");
        assert!(
            overrides(b"not a zip")
                .unwrap_err()
                .contains("not a zip file")
        );
    }

    fn status(sim: &Sim) -> String {
        sim.status("keystone/0")
    }

    fn policy_file(sim: &Sim, name: &str) -> Option<Vec<u8>> {
        let files = &sim.machine("keystone/0").1.files;
        files.read(Path::new(&file_of(name))).unwrap()
    }

    #[test]
    fn overrides_apply_from_the_attached_resource_and_go_with_the_option() {
        let mut sim = Sim::ready(1);
        let restarts = |sim: &Sim| {
            let services = &sim.machine("keystone/0").1.services;
            services.count(&ServiceAction::Restart(Service::Apache2))
        };
        let set = |sim: &mut Sim, on: bool| {
            let option = serde_json::json!({"use-policyd-override": on});
            sim.model
                .set_config("keystone", option.as_object().cloned().unwrap())
                .unwrap();
            sim.settle();
        };
        // On, with nothing attached: broken, nothing applied.
        set(&mut sim, true);
        assert_eq!(
            status(&sim),
            "active: PO (broken): Unit is ready (policyd-override: the policyd-override resource \
             is not attached: juju attach-resource keystone policyd-override=<zip>)"
        );
        // Attached: upgrade-charm applies it, and Keystone restarts.
        let before = restarts(&sim);
        let zip = zip_of(&[("projects.yaml", "identity:list_projects: \"!\"\n")]);
        sim.model
            .attach_resource("keystone", RESOURCE, &zip)
            .unwrap();
        sim.settle();
        assert_eq!(status(&sim), "active: PO: Unit is ready");
        let written = String::from_utf8(policy_file(&sim, "projects").unwrap()).unwrap();
        assert!(written.contains("identity:list_projects"), "{written}");
        assert_eq!(restarts(&sim), before + 1);
        // Other hooks ask Juju nothing and keep the prefix.
        assert!(sim.run("keystone/0", "update-status"));
        assert!(
            !sim.tools_called("keystone/0")
                .contains(&"resource-get".to_owned())
        );
        assert_eq!(status(&sim), "active: PO: Unit is ready");
        // A bad zip applies nothing of itself: the overrides in force go.
        let bad = zip_of(&[("projects.yaml", "cloud_admin: \"@\"\n")]);
        sim.model
            .attach_resource("keystone", RESOURCE, &bad)
            .unwrap();
        sim.settle();
        assert!(
            status(&sim).starts_with("active: PO (broken): Unit is ready"),
            "{}",
            status(&sim)
        );
        assert_eq!(policy_file(&sim, "projects"), None);
        // Off: no override and no prefix.
        sim.model
            .attach_resource("keystone", RESOURCE, &zip)
            .unwrap();
        sim.settle();
        assert!(policy_file(&sim, "projects").is_some());
        set(&mut sim, false);
        assert_eq!(status(&sim), "active: Unit is ready");
        assert_eq!(policy_file(&sim, "projects"), None);
    }
}
