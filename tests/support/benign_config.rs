//! Shared by the hostile-input properties (tests/hostile_input.rs) and the config fuzz target
//! (fuzz/fuzz_targets/config_render.rs), each including this file by path.

use keystone_charm::config::Config;

/// `config` with every text that reaches a rendered file replaced by a benign one of the same
/// kind (set stays set, empty stays empty): what a hostile value renders to must have the same
/// lines as what its benign twin renders to.
pub fn benign_twin(config: &Config) -> Config {
    let mut twin = config.clone();
    if !twin.service_path_prefix.is_empty() {
        twin.service_path_prefix = "/benign".into();
    }
    if twin.os_public_hostname.is_some() {
        twin.os_public_hostname = Some("benign.example.com".into());
    }
    if let Some(sc) = &mut twin.security_compliance {
        for text in [&mut sc.password_regex, &mut sc.password_regex_description] {
            if text.is_some() {
                *text = Some("benign".into());
            }
        }
    }
    twin.nagios_context = "benign".into();
    twin
}
