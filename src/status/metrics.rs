//! `/metrics` in the Prometheus text exposition format (version 0.0.4).

use crate::clock::now_ms;
use crate::status::state::{MeterStatus, Status};
use std::fmt::Write;

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A per-meter series: name, help, kind, and the figure read from the typed status.
type MeterSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&MeterStatus) -> u64,
);

const PER_METER: [MeterSeries; 12] = [
    ("meter_cycles_total", "Poll cycles.", "counter", |m| {
        m.cycles
    }),
    (
        "meter_successes_total",
        "Successful poll cycles.",
        "counter",
        |m| m.successes,
    ),
    (
        "meter_failures_total",
        "Failed poll cycles.",
        "counter",
        |m| m.failures,
    ),
    (
        "meter_consecutive_failures",
        "Failures since the last success.",
        "gauge",
        |m| u64::from(m.consecutive_failures),
    ),
    (
        "meter_reconnects_total",
        "Connections made to the meter.",
        "counter",
        |m| m.reconnects,
    ),
    (
        "meter_dlms_bytes_sent_total",
        "DLMS bytes sent to the meter.",
        "counter",
        |m| m.net.bytes_sent,
    ),
    (
        "meter_dlms_bytes_received_total",
        "DLMS bytes received from the meter.",
        "counter",
        |m| m.net.bytes_received,
    ),
    (
        "meter_dlms_timeouts_total",
        "Answers that did not come in time.",
        "counter",
        |m| m.net.timeouts,
    ),
    (
        "meter_dlms_checksum_errors_total",
        "HDLC frames with a bad HCS or FCS.",
        "counter",
        |m| m.net.checksum_errors,
    ),
    (
        "meter_published_total",
        "Readings of the meter acknowledged by the broker.",
        "counter",
        |m| m.published,
    ),
    (
        "meter_mqtt_messages_total",
        "MQTT messages carrying readings of the meter.",
        "counter",
        |m| m.mqtt_messages,
    ),
    (
        "meter_mqtt_bytes_total",
        "The meter's share of MQTT payload bytes.",
        "counter",
        |m| m.mqtt_bytes,
    ),
];

/// Renders from the typed status (no JSON in between).
pub fn render(status: &Status) -> String {
    let p = status.publisher();
    let now = now_ms();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, value: f64| {
        let _ = writeln!(out, "# HELP dlms_bridge_{name} {help}\n# TYPE dlms_bridge_{name} {kind}\ndlms_bridge_{name} {value}");
    };
    gauge(
        "uptime_seconds",
        "Seconds since the bridge started.",
        "gauge",
        status.started.elapsed().as_secs() as f64,
    );
    gauge(
        "mqtt_connected",
        "1 when the publisher is connected to the broker.",
        "gauge",
        f64::from(u8::from(p.connected)),
    );
    gauge(
        "outbox_readings",
        "Readings accepted and not yet acknowledged by the broker (outbox and memory).",
        "gauge",
        (p.outbox_rows + p.in_memory) as f64,
    );
    gauge(
        "memory_readings",
        "Readings accepted and held in memory (not committed).",
        "gauge",
        p.in_memory as f64,
    );
    gauge(
        "outbox_oldest_age_seconds",
        "Age of the oldest reading not yet acknowledged by the broker.",
        "gauge",
        p.oldest_unsent_ms
            .map_or(0.0, |t| ((now - t) / 1000).max(0) as f64),
    );
    gauge(
        "outbox_commit_failing",
        "1 while outbox commits fail (disk full, I/O error).",
        "gauge",
        f64::from(u8::from(p.commit_error.is_some())),
    );
    gauge(
        "published_readings_total",
        "Readings acknowledged by the broker.",
        "counter",
        p.published_readings as f64,
    );
    gauge(
        "published_messages_total",
        "MQTT messages acknowledged by the broker.",
        "counter",
        p.published_messages as f64,
    );
    gauge(
        "publish_failures_total",
        "Publishes that failed.",
        "counter",
        p.failed_publishes as f64,
    );
    gauge(
        "mqtt_reconnects_total",
        "MQTT reconnections after a connection was lost (the first connection is not one).",
        "counter",
        p.reconnects as f64,
    );
    gauge(
        "outbox_dropped_total",
        "Readings dropped by the outbox bounds.",
        "counter",
        p.dropped as f64,
    );
    gauge(
        "push_unknown_senders_total",
        "Pushed notifications from senders that are no configured meter.",
        "counter",
        status
            .push_unknown
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    gauge(
        "push_refused_total",
        "Pushed notifications naming a configured meter that its keys or replay protection refused.",
        "counter",
        status
            .push_refused
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    bus_series(&mut out, status);
    alarm_series(&mut out, status);
    for (name, help, kind, figure) in PER_METER {
        let _ = writeln!(
            out,
            "# HELP dlms_bridge_{name} {help}\n# TYPE dlms_bridge_{name} {kind}"
        );
        // One metric at a time under the lock: no copy of every meter's status.
        status.with_meters(|meters| {
            for (meter, m) in meters {
                let _ = writeln!(
                    out,
                    "dlms_bridge_{name}{{meter=\"{}\"}} {}",
                    escape(meter),
                    figure(m)
                );
            }
        });
    }
    out
}

/// Active alarms by type and severity (every pair of a kind and its severity, 0 included, so
/// that a rule can watch a series that exists before the first alarm).
fn alarm_series(out: &mut String, status: &Status) {
    let _ = writeln!(
        out,
        "# HELP dlms_bridge_alarms_active Active alarms by type and severity.\n# TYPE dlms_bridge_alarms_active gauge"
    );
    let counts: Vec<(crate::alarm::Kind, usize)> = status.with_alarms(|b| {
        crate::alarm::Kind::ALL
            .into_iter()
            .map(|k| (k, b.active().filter(|a| a.kind == k).count()))
            .collect()
    });
    for (kind, n) in counts {
        let _ = writeln!(
            out,
            "dlms_bridge_alarms_active{{type=\"{}\",severity=\"{}\"}} {n}",
            kind.as_str(),
            kind.severity().as_str()
        );
    }
}

/// Per shared serial line: turns, busy seconds (utilisation is its rate), waits, and each
/// meter's busy seconds.
fn bus_series(out: &mut String, status: &Status) {
    let buses = status.bus_figures();
    let series: [(&str, &str, &str); 4] = [
        (
            "bus_turns_total",
            "Turns taken on a shared serial line.",
            "counter",
        ),
        (
            "bus_busy_seconds_total",
            "Seconds a shared serial line was held (rate: utilisation).",
            "counter",
        ),
        (
            "bus_wait_max_seconds",
            "Longest wait for a turn (last 256 turns).",
            "gauge",
        ),
        (
            "bus_meter_busy_seconds_total",
            "Seconds a meter held its shared serial line.",
            "counter",
        ),
    ];
    for (name, help, kind) in series {
        let _ = writeln!(
            out,
            "# HELP dlms_bridge_{name} {help}\n# TYPE dlms_bridge_{name} {kind}"
        );
        for (line, f) in &buses {
            let line = escape(line);
            match name {
                "bus_turns_total" => {
                    let _ = writeln!(out, "dlms_bridge_{name}{{line=\"{line}\"}} {}", f.turns);
                }
                "bus_busy_seconds_total" => {
                    let _ = writeln!(
                        out,
                        "dlms_bridge_{name}{{line=\"{line}\"}} {:.3}",
                        f.busy.as_secs_f64()
                    );
                }
                "bus_wait_max_seconds" => {
                    let max = f.waits_ms.iter().max().copied().unwrap_or(0);
                    let _ = writeln!(
                        out,
                        "dlms_bridge_{name}{{line=\"{line}\"}} {:.3}",
                        max as f64 / 1000.0
                    );
                }
                _ => {
                    for (meter, d) in &f.per_meter {
                        let _ = writeln!(
                            out,
                            "dlms_bridge_{name}{{line=\"{line}\",meter=\"{}\"}} {:.3}",
                            escape(meter),
                            d.as_secs_f64()
                        );
                    }
                }
            }
        }
    }
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
