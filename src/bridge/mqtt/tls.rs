//! MQTT over TLS: the broker URI, Paho's SSL options from the settings, and errors that say
//! what to fix. Paho reports every TLS failure as a bare connect failure, so the files are
//! checked before connecting and a failed handshake is told apart from an unreachable broker.

use crate::config::settings::BrokerSettings;
use paho_mqtt as mqtt;
use std::time::Duration;

/// `ssl://host:port` or `tcp://host:port`.
pub fn broker_uri(settings: &BrokerSettings) -> String {
    let scheme = if settings.tls { "ssl" } else { "tcp" };
    format!("{scheme}://{}:{}", settings.host, settings.port)
}

/// A PEM file that exists, is readable and holds what it should.
fn check_pem(setting: &str, path: &str, marker: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{setting} {path:?}: {e}"))?;
    if !text.contains("-----BEGIN") || !text.contains(marker) {
        return Err(format!("{setting} {path:?}: no PEM {marker} in it"));
    }
    Ok(())
}

/// Paho's SSL options for the settings, after checking the files they name.
pub fn ssl_options(settings: &BrokerSettings) -> Result<mqtt::SslOptions, String> {
    if !cfg!(feature = "tls") {
        return Err(
            "mqtt.tls is on, but this dlms-bridge was built without TLS (build with --features tls)"
                .into(),
        );
    }
    let mut b = mqtt::SslOptionsBuilder::new();
    b.enable_server_cert_auth(true)
        .verify(settings.verify_hostname);
    if !settings.ca_file.is_empty() {
        check_pem("mqtt.ca_file", &settings.ca_file, "CERTIFICATE")?;
        b.trust_store(&settings.ca_file)
            .map_err(|e| format!("mqtt.ca_file: {e}"))?;
    }
    match (settings.client_cert.as_str(), settings.client_key.as_str()) {
        ("", "") => {}
        ("", _) | (_, "") => {
            return Err("mqtt.client_cert and mqtt.client_key go together".into());
        }
        (cert, key) => {
            check_pem("mqtt.client_cert", cert, "CERTIFICATE")?;
            check_pem("mqtt.client_key", key, "PRIVATE KEY")?;
            b.key_store(cert)
                .map_err(|e| format!("mqtt.client_cert: {e}"))?;
            b.private_key(key)
                .map_err(|e| format!("mqtt.client_key: {e}"))?;
            if let Some(p) = &settings.client_key_password {
                b.private_key_password(p);
            }
        }
    }
    Ok(b.finalize())
}

/// Says why a TLS connection failed when the broker's port is open: the handshake (trust,
/// host name, client certificate) is the likely cause, not the network.
pub fn explain_failure(settings: &BrokerSettings, paho_error: &str) -> String {
    if !settings.tls {
        return paho_error.to_string();
    }
    if !super::broker_error::port_open(settings, Duration::from_secs(2)) {
        return paho_error.to_string();
    }
    format!(
        "{paho_error}: the broker's port is open, so the TLS handshake failed: the broker's \
         certificate is not signed by mqtt.ca_file{}, or does not name {:?}, or the broker \
         refused our client certificate (mqtt.client_cert), or the port is not a TLS port",
        if settings.ca_file.is_empty() {
            " (unset: the system's CAs)"
        } else {
            ""
        },
        settings.host
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_checked_before_connecting() {
        let dir = crate::store::tempdir::TempDir::new("tls");
        let mut s = BrokerSettings {
            tls: true,
            ca_file: dir.path().join("missing.pem").display().to_string(),
            ..BrokerSettings::default()
        };
        assert_eq!(broker_uri(&s), "ssl://127.0.0.1:1883");
        if !cfg!(feature = "tls") {
            assert!(ssl_options(&s).unwrap_err().contains("without TLS"));
            return;
        }
        let e = ssl_options(&s).unwrap_err();
        assert!(
            e.starts_with("mqtt.ca_file") && e.contains("missing.pem"),
            "{e}"
        );
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        s.ca_file = not_pem.display().to_string();
        assert!(ssl_options(&s).unwrap_err().contains("no PEM CERTIFICATE"));
        std::fs::write(&not_pem, "-----BEGIN CERTIFICATE-----\n").unwrap();
        assert!(ssl_options(&s).is_ok());
        s.client_cert = not_pem.display().to_string();
        assert!(ssl_options(&s).unwrap_err().contains("go together"));
        s.client_key = not_pem.display().to_string();
        assert!(ssl_options(&s).unwrap_err().contains("mqtt.client_key"));
    }
}
