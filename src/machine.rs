//! Names this machine gives itself: stable across restarts, different between machines, with
//! no configuration (a fleet of gateways is flashed from one image).

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// hostname-MACHINEID8: the hostname and the first 8 characters of /etc/machine-id.
pub fn name() -> String {
    name_of(&read("/proc/sys/kernel/hostname"), &read("/etc/machine-id"))
}

/// [`name`] from its parts (pure, for the tests).
pub fn name_of(host: &str, machine_id: &str) -> String {
    let id: String = machine_id.chars().take(8).collect();
    match (host.is_empty(), id.is_empty()) {
        (false, false) => format!("{host}-{id}"),
        (false, true) => host.to_string(),
        (true, false) => format!("gateway-{id}"),
        (true, true) => "dlms-bridge-gateway".into(),
    }
}

/// FNV-1a of `bytes`: stable between Rust releases and machines (the standard hasher is not
/// promised to be), for names derived from paths.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The MQTT client id `mqtt.client_id auto` stands for: `dlms-bridge-NAME-DB4`, where DB4 is
/// four hex digits of the database's path, so that two bridges on one machine (two
/// databases) differ too. A broker keeps one session per client id: two gateways sharing one
/// knock each other off every second.
pub fn client_id(db: &Path) -> String {
    client_id_of(&name(), db)
}

/// [`client_id`] from the machine's name (pure).
pub fn client_id_of(name: &str, db: &Path) -> String {
    let path = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
    let hash = fnv1a(path.as_os_str().as_encoded_bytes());
    // MQTT 3.1.1 servers must accept 23 characters and most take far more; cut at 64.
    let id = format!("dlms-bridge-{name}-{:04x}", hash & 0xffff);
    id.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_differ_between_machines_and_databases() {
        assert_eq!(name_of("pi", "0123456789abcdef"), "pi-01234567");
        assert_eq!(name_of("", "0123456789abcdef"), "gateway-01234567");
        assert_eq!(name_of("pi", ""), "pi");
        let a = client_id_of("pi-01234567", Path::new("/var/lib/dlms-bridge/bridge.db"));
        let b = client_id_of("pi-89abcdef", Path::new("/var/lib/dlms-bridge/bridge.db"));
        let c = client_id_of("pi-01234567", Path::new("/srv/other.db"));
        assert!(a.starts_with("dlms-bridge-pi-01234567-"), "{a}");
        assert_eq!(
            a,
            client_id_of("pi-01234567", Path::new("/var/lib/dlms-bridge/bridge.db"))
        );
        assert!(a != b && a != c);
    }
}
