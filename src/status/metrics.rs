//! `/metrics` in the Prometheus text exposition format (version 0.0.4).

use super::snapshot::status_json;
use crate::bridge::status::Status;
use std::fmt::Write;

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(status: &Status) -> String {
    let s = status_json(status);
    let p = &s["publisher"];
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, value: f64| {
        let _ = writeln!(out, "# HELP dlms_bridge_{name} {help}\n# TYPE dlms_bridge_{name} {kind}\ndlms_bridge_{name} {value}");
    };
    gauge(
        "uptime_seconds",
        "Seconds since the bridge started.",
        "gauge",
        s["uptime_s"].as_f64().unwrap_or(0.0),
    );
    gauge(
        "mqtt_connected",
        "1 when the publisher is connected to the broker.",
        "gauge",
        f64::from(u8::from(p["connected"].as_bool() == Some(true))),
    );
    gauge(
        "outbox_readings",
        "Readings waiting in the outbox.",
        "gauge",
        p["outbox_depth"].as_f64().unwrap_or(0.0),
    );
    gauge(
        "outbox_oldest_age_seconds",
        "Age of the oldest unsent reading.",
        "gauge",
        p["oldest_unsent_age_s"].as_f64().unwrap_or(0.0),
    );
    gauge(
        "published_readings_total",
        "Readings acknowledged by the broker.",
        "counter",
        p["published_readings"].as_f64().unwrap_or(0.0),
    );
    gauge(
        "published_messages_total",
        "MQTT messages acknowledged by the broker.",
        "counter",
        p["published_messages"].as_f64().unwrap_or(0.0),
    );
    gauge(
        "publish_failures_total",
        "Publishes that failed.",
        "counter",
        p["failed"].as_f64().unwrap_or(0.0),
    );
    gauge(
        "mqtt_reconnects_total",
        "MQTT connections made.",
        "counter",
        p["reconnects"].as_f64().unwrap_or(0.0),
    );
    gauge(
        "outbox_dropped_total",
        "Readings dropped by the outbox bounds.",
        "counter",
        p["dropped"].as_f64().unwrap_or(0.0),
    );
    let per_meter: [(&str, &str, &str, &[&str]); 12] = [
        ("meter_cycles_total", "Poll cycles.", "counter", &["cycles"]),
        (
            "meter_successes_total",
            "Successful poll cycles.",
            "counter",
            &["successes"],
        ),
        (
            "meter_failures_total",
            "Failed poll cycles.",
            "counter",
            &["failures"],
        ),
        (
            "meter_consecutive_failures",
            "Failures since the last success.",
            "gauge",
            &["consecutive_failures"],
        ),
        (
            "meter_reconnects_total",
            "Connections made to the meter.",
            "counter",
            &["reconnects"],
        ),
        (
            "meter_dlms_bytes_sent_total",
            "DLMS bytes sent to the meter.",
            "counter",
            &["dlms", "bytes_sent"],
        ),
        (
            "meter_dlms_bytes_received_total",
            "DLMS bytes received from the meter.",
            "counter",
            &["dlms", "bytes_received"],
        ),
        (
            "meter_dlms_timeouts_total",
            "Answers that did not come in time.",
            "counter",
            &["dlms", "timeouts"],
        ),
        (
            "meter_dlms_checksum_errors_total",
            "HDLC frames with a bad HCS or FCS.",
            "counter",
            &["dlms", "checksum_errors"],
        ),
        (
            "meter_published_total",
            "Readings of the meter acknowledged by the broker.",
            "counter",
            &["mqtt", "published"],
        ),
        (
            "meter_mqtt_messages_total",
            "MQTT messages carrying readings of the meter.",
            "counter",
            &["mqtt", "messages"],
        ),
        (
            "meter_mqtt_bytes_total",
            "The meter's share of MQTT payload bytes.",
            "counter",
            &["mqtt", "bytes"],
        ),
    ];
    let meters = s["meters"].as_object().cloned().unwrap_or_default();
    for (name, help, kind, path) in per_meter {
        let _ = writeln!(
            out,
            "# HELP dlms_bridge_{name} {help}\n# TYPE dlms_bridge_{name} {kind}"
        );
        for (meter, m) in &meters {
            let v = path.iter().fold(m, |v, k| &v[*k]);
            let _ = writeln!(
                out,
                "dlms_bridge_{name}{{meter=\"{}\"}} {}",
                escape(meter),
                v.as_f64().unwrap_or(0.0)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let status = Status::default();
        status.update_meter("Meter \"A\"\\1", |m| {
            m.cycles = 7;
            m.net.bytes_sent = 100;
        });
        let text = render(&status);
        assert!(text.contains("# TYPE dlms_bridge_meter_cycles_total counter"));
        assert!(
            text.contains("dlms_bridge_meter_cycles_total{meter=\"Meter \\\"A\\\"\\\\1\"} 7"),
            "{text}"
        );
        assert!(text.contains(
            "dlms_bridge_meter_dlms_bytes_sent_total{meter=\"Meter \\\"A\\\"\\\\1\"} 100"
        ));
        assert!(text.contains("dlms_bridge_mqtt_connected 0"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
