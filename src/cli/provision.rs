//! `dlms-bridge provision`: registers this gateway with ThingsBoard through its MQTT device
//! provisioning API (connect as user `provision`, request on `/provision/request`, answer on
//! `/provision/response`) and stores the access token it returns as
//! `thingsboard.gateway_token`. A fleet image flashed on many gateways runs it at first boot:
//! the default device name is stable per machine, and a gateway that already has a token asks
//! nothing (no second device).

use super::args::{parse_num, usage, UsageError};
use super::run::default_db;
use dlms_bridge::store::Store;
use lexopt::prelude::*;
use paho_mqtt as mqtt;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub const HELP: &str = "\
dlms-bridge provision --host TB_HOST [--port 1883] --key PROVISION_KEY --secret PROVISION_SECRET
                      [--device-name NAME] [--timeout-s 10] [--db PATH]
  Asks ThingsBoard (device profile with provisioning enabled) for a gateway device and stores
  its access token as thingsboard.gateway_token, mqtt.host and mqtt.port. The name defaults to
  the hostname and the first 8 characters of /etc/machine-id (stable for the machine).
  A gateway that already has a token asks nothing. TLS follows the mqtt.tls settings.";

const REQUEST: &str = "/provision/request";
const RESPONSE: &str = "/provision/response";

/// hostname-MACHINEID8: the same on every run on one machine, different between machines.
pub fn default_device_name() -> String {
    dlms_bridge::machine::name()
}

/// What ThingsBoard answered: the token, or why not (both answer formats: `status` and
/// `credentialsValue`; older `provisionDeviceStatus` and `accessToken`).
pub fn token_of(answer: &Value) -> Result<String, String> {
    let status = answer["status"]
        .as_str()
        .or_else(|| answer["provisionDeviceStatus"].as_str())
        .unwrap_or("no status");
    if status != "SUCCESS" {
        let why = answer["errorMsg"].as_str().unwrap_or("");
        return Err(match status {
            "NOT_FOUND" => format!("ThingsBoard knows no device profile with this provisioning key and secret (NOT_FOUND) {why}").trim().to_string(),
            other => format!("ThingsBoard refused: {other} {why}").trim().to_string(),
        });
    }
    match answer["credentialsType"].as_str().unwrap_or("ACCESS_TOKEN") {
        "ACCESS_TOKEN" => answer["credentialsValue"]
            .as_str()
            .or_else(|| answer["accessToken"].as_str())
            .map(str::to_string)
            .ok_or_else(|| "ThingsBoard answered SUCCESS without a token".to_string()),
        other => Err(format!(
            "ThingsBoard returned {other} credentials; only ACCESS_TOKEN is used here"
        )),
    }
}

pub fn run(mut parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let mut db = default_db();
    let (mut host, mut port, mut key, mut secret, mut name, mut timeout_s) =
        (None, 1883u16, None, None, None, 10u64);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("db") => db = PathBuf::from(parser.value()?),
            Long("host") => host = Some(parser.value()?.string()?),
            Long("port") => port = parse_num("--port", parser.value()?)?,
            Long("key") => key = Some(parser.value()?.string()?),
            Long("secret") => secret = Some(parser.value()?.string()?),
            Long("device-name") => name = Some(parser.value()?.string()?),
            Long("timeout-s") => timeout_s = parse_num("--timeout-s", parser.value()?)?,
            Long("help") | Short('h') => {
                println!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let host = host.ok_or_else(|| usage("provision needs --host (the ThingsBoard MQTT host)"))?;
    // Checked as mqtt.host will be, before anything is asked: a usage error (exit 2).
    let host =
        dlms_bridge::config::values::host(&host).map_err(|e| usage(format!("--host: {e}")))?;
    let key =
        key.ok_or_else(|| usage("provision needs --key (the device profile's provision key)"))?;
    let secret = secret.ok_or_else(|| usage("provision needs --secret (the provision secret)"))?;
    let name = name.unwrap_or_else(default_device_name);
    let fail = |m: String| {
        eprintln!("dlms-bridge provision: {m}");
        Ok(ExitCode::FAILURE)
    };
    let mut store = match Store::open(&db) {
        Ok(s) => s,
        Err(e) => return fail(format!("{}: {e}", db.display())),
    };
    let mut settings = match store.settings() {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    if settings.broker.gateway_token.is_some() {
        println!(
            "{}",
            json!({"provisioned": false, "reason": "thingsboard.gateway_token is already set: nothing asked (clear it to provision again)"})
        );
        return Ok(ExitCode::SUCCESS);
    }
    settings.broker.host = host.clone();
    settings.broker.port = port;
    let answer = match ask(
        &settings,
        &name,
        &key,
        &secret,
        Duration::from_secs(timeout_s),
    ) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let token = match token_of(&answer) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    for (k, v) in [
        ("mqtt.host", host.as_str()),
        ("mqtt.port", &port.to_string()),
        ("thingsboard.mode", "gateway"),
        ("thingsboard.gateway_token", &token),
    ] {
        if let Err(e) = store.set_setting(k, v) {
            return fail(format!("storing {k}: {e}"));
        }
    }
    println!(
        "{}",
        json!({"provisioned": true, "device_name": name, "stored": ["thingsboard.gateway_token", "mqtt.host", "mqtt.port", "thingsboard.mode"]})
    );
    Ok(ExitCode::SUCCESS)
}

/// One request and its answer.
fn ask(
    settings: &dlms_bridge::config::settings::BridgeSettings,
    name: &str,
    key: &str,
    secret: &str,
    timeout: Duration,
) -> Result<Value, String> {
    let uri = dlms_bridge::bridge::mqtt::tls::broker_uri(&settings.broker);
    let client = mqtt::Client::new(
        mqtt::CreateOptionsBuilder::new()
            .server_uri(&uri)
            .client_id(format!("provision-{name}"))
            .persistence(mqtt::PersistenceType::None)
            .finalize(),
    )
    .map_err(|e| format!("{uri}: {e}"))?;
    let mut opts = mqtt::ConnectOptionsBuilder::new();
    opts.user_name("provision")
        .clean_session(true)
        .connect_timeout(timeout);
    if settings.broker.tls {
        opts.ssl_options(dlms_bridge::bridge::mqtt::tls::ssl_options(
            &settings.broker,
        )?);
    }
    let rx = client.start_consuming();
    client
        .connect(opts.finalize())
        .map_err(|e| format!("cannot connect to {uri} as \"provision\": {e}"))?;
    // Subscribed before asking, so that the answer cannot be missed.
    client
        .subscribe(RESPONSE, 1)
        .map_err(|e| format!("subscribing to {RESPONSE}: {e}"))?;
    let request = json!({
        "deviceName": name,
        "provisionDeviceKey": key,
        "provisionDeviceSecret": secret,
        "gateway": true,
    });
    client
        .publish(mqtt::Message::new(REQUEST, request.to_string(), 1))
        .map_err(|e| format!("publishing the request: {e}"))?;
    let deadline = std::time::Instant::now() + timeout;
    let answer = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(Some(m)) if m.topic() == RESPONSE => {
                break serde_json::from_slice::<Value>(m.payload())
                    .map_err(|e| format!("ThingsBoard's answer is not JSON: {e}"));
            }
            Ok(_) => continue,
            Err(_) => {
                break Err(format!(
                "no answer from {uri} within {} s (is provisioning enabled on the device profile?)",
                timeout.as_secs()
            ))
            }
        }
    };
    let _ = client.disconnect(None);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_both_formats() {
        let ok = json!({"status": "SUCCESS", "credentialsType": "ACCESS_TOKEN", "credentialsValue": "T1"});
        assert_eq!(token_of(&ok).unwrap(), "T1");
        let old = json!({"provisionDeviceStatus": "SUCCESS", "credentialsType": "ACCESS_TOKEN", "accessToken": "T2"});
        assert_eq!(token_of(&old).unwrap(), "T2");
        assert!(token_of(&json!({"status": "NOT_FOUND"}))
            .unwrap_err()
            .contains("NOT_FOUND"));
        let failure = json!({"status": "FAILURE", "errorMsg": "Failed to provision device!"});
        assert!(token_of(&failure)
            .unwrap_err()
            .contains("Failed to provision device!"));
        assert!(
            token_of(&json!({"status": "SUCCESS", "credentialsType": "X509_CERTIFICATE"})).is_err()
        );
        assert!(!default_device_name().is_empty());
    }
}
