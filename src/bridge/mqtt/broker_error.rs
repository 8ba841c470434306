//! Why a connection to the broker failed, in words that point at the cause. Paho's own texts
//! mislead: a refused token reads "(0)", and a port that accepts TCP but never answers
//! CONNECT reads "TCP connect timeout".

use crate::config::settings::BrokerSettings;
use paho_mqtt as mqtt;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Whether the broker's port accepts a TCP connection within `wait` (asked only after a
/// failure, to tell causes apart).
pub fn port_open(settings: &BrokerSettings, wait: Duration) -> bool {
    (settings.host.as_str(), settings.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, wait).is_ok())
}

/// The sentence for a failed connect; `port_open` is asked only where it tells causes apart.
pub fn describe(
    e: &mqtt::Error,
    settings: &BrokerSettings,
    port_open: impl Fn() -> bool,
) -> String {
    use mqtt::ConnectReturnCode::{BadUserNameOrPassword, NotAuthorized};
    match e {
        mqtt::Error::ConnectReturn(code @ (BadUserNameOrPassword | NotAuthorized)) => format!(
            "the broker refused the connection ({code}): the access token is wrong, or its \
             device was deleted (thingsboard.gateway_token, or the meter's access_token in \
             device mode)"
        ),
        mqtt::Error::ConnectReturn(code) => {
            format!("the broker refused the connection ({code})")
        }
        // Over TLS every other failure is told the TLS causes too: with TLS 1.3 a broker that
        // refuses our client certificate does so after the handshake, and Paho then reports
        // a lost connection rather than a connect failure (seen on a loaded CI machine).
        _ if settings.tls => super::tls::explain_failure(settings, &e.to_string()),
        mqtt::Error::TcpConnectTimeout if port_open() => "the broker's port accepts TCP \
             connections but no CONNACK came (not an MQTT broker, or one that hangs)"
            .to_string(),
        mqtt::Error::TcpConnectTimeout => {
            "TCP connect timed out: the broker's host does not answer (down, unreachable or \
             firewalled)"
                .to_string()
        }
        mqtt::Error::TcpTlsConnectFailure => {
            "TCP connect failed (connection refused: is the broker running on this port?)"
                .to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_names_its_cause() {
        let s = crate::config::settings::BrokerSettings::default();
        let refused = mqtt::Error::ConnectReturn(mqtt::ConnectReturnCode::NotAuthorized);
        let text = describe(&refused, &s, || unreachable!());
        assert!(
            text.contains("Not Authorized") && text.contains("access token"),
            "{text}"
        );
        assert!(!text.contains("(0)"));
        let hangs = describe(&mqtt::Error::TcpConnectTimeout, &s, || true);
        assert!(hangs.contains("no CONNACK"), "{hangs}");
        let down = describe(&mqtt::Error::TcpConnectTimeout, &s, || false);
        assert!(down.contains("does not answer"), "{down}");
        assert!(describe(&mqtt::Error::TcpTlsConnectFailure, &s, || false).contains("refused"));
    }
}
