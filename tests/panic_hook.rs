//! A panic reaches juju-log with its message and location. (Its own test binary: the panic hook
//! is process-wide.) That the process then exits non-zero is Rust's: 101 when unwinding, SIGABRT
//! with the release profile's panic=abort.

use std::sync::Arc;

use keystone_charm::hook::install_panic_hook;
use keystone_charm::juju::{Juju, LogLevel, MemoryHookTools, UnitName};

#[test]
fn panics_are_sent_to_juju_log() {
    let unit = UnitName::parse("keystone/0").unwrap();
    let tools = Arc::new(MemoryHookTools::new(unit.clone()));
    let juju = Juju::new(tools.clone(), unit);
    install_panic_hook(juju.log_sink());
    let line = line!() + 1;
    let result = std::panic::catch_unwind(|| panic!("fernet key repository vanished"));
    let _ = std::panic::take_hook();
    assert!(result.is_err());
    let logs = tools.snapshot().logs;
    assert_eq!(
        logs,
        [(
            LogLevel::Error,
            format!(
                "keystone-charm panicked at tests/panic_hook.rs:{line}: fernet key repository vanished"
            )
        )]
    );
}
