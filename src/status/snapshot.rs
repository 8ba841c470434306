//! The status snapshot as JSON, and the health verdict.

use crate::clock::now_ms;
use crate::dlms::axdr::format_rfc3339;
use crate::status::state::{MeterState, MeterStatus, Status};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

/// One meter's entry of the status document.
fn meter_json(m: &MeterStatus) -> Value {
    let rate = if m.cycles == 0 {
        Value::Null
    } else {
        json!((1000.0 * m.successes as f64 / m.cycles as f64).round() / 10.0)
    };
    json!({
        "state": m.state.as_str(),
        // What the offline alarm and /healthz judge it by (3 of these without a read): the
        // polling interval, or its reconnect gap when longer.
        "expected_every_s": m.interval_s,
        "last_success": m.last_success_ms.map(|t| format_rfc3339(t / 1000)),
        "values": m.last_values,
        "units": m.units,
        "profile_error": m.profile_error,
        "cycles": m.cycles,
        "successes": m.successes,
        "failures": m.failures,
        "success_rate_percent": rate,
        "consecutive_failures": m.consecutive_failures,
        "reconnects": m.reconnects,
        "skipped_slots": m.skipped_slots,
        "breaker": if m.state == MeterState::BreakerOpen { "open" } else { "closed" },
        "last_error": m.last_error,
        "recent_errors": m.recent_errors.iter().map(|(t, e)| json!({"at_ms": t, "error": e})).collect::<Vec<_>>(),
        "association_rejected": m.rejected,
        "invocation_counter": m.invocation_counter,
        "clock_drift_s": m.clock_drift_s,
        "profiles": m.profiles.iter().map(|(obis, p)| (obis.clone(), json!({
            "newest_row": p.newest_row_s.map(format_rfc3339),
            "rows": p.rows,
        }))).collect::<serde_json::Map<String, Value>>(),
        "dlms": {
            "bytes_sent": m.net.bytes_sent,
            "bytes_received": m.net.bytes_received,
            "frames_sent": m.net.frames_sent,
            "frames_received": m.net.frames_received,
            "round_trips": m.net.round_trips,
            "timeouts": m.net.timeouts,
            "checksum_errors": m.net.checksum_errors,
            "stale": m.net.stale,
            "retries": m.failures,
        },
        "mqtt": {"readings_sent": m.readings_sent, "published": m.published, "messages": m.mqtt_messages, "bytes": m.mqtt_bytes},
    })
}

/// A shared serial line: turns, how busy the line is, how long meters wait for it, and each
/// meter's share of the busy time.
fn bus_json(f: &crate::client::bus::BusFigures) -> Value {
    let elapsed = f.since.map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-9);
    let busy = f.busy.as_secs_f64();
    let mut waits = f.waits_ms.clone();
    waits.sort_unstable();
    let share: serde_json::Map<String, Value> = f
        .per_meter
        .iter()
        .map(|(m, d)| {
            let pct = if busy > 0.0 {
                (1000.0 * d.as_secs_f64() / busy).round() / 10.0
            } else {
                0.0
            };
            (m.clone(), json!(pct))
        })
        .collect();
    json!({
        "turns": f.turns,
        "utilisation_percent": ((1000.0 * busy / elapsed).round() / 10.0).min(100.0),
        "wait_p50_ms": waits.get(waits.len() / 2),
        "wait_max_ms": waits.last(),
        "share_percent": share,
    })
}

/// The status document (`/status`) as JSON bytes, written meter by meter: memory is the
/// output and one meter's entry, not a tree of every meter (701 KB of JSON at 1,000 meters).
pub fn status_document(status: &Status) -> Vec<u8> {
    let p = status.publisher();
    let now = now_ms();
    let clock_doubt = status.gateway_clock.doubt(now);
    let buses: serde_json::Map<String, Value> = status
        .bus_figures()
        .into_iter()
        .map(|(path, f)| (path, bus_json(&f)))
        .collect();
    let alarms = status.with_alarms(|b| {
        let mut by_severity = serde_json::Map::new();
        for sev in crate::alarm::Severity::ALL {
            let n = b.active().filter(|a| a.severity == sev).count();
            by_severity.insert(sev.as_str().to_lowercase(), n.into());
        }
        json!({"active": b.active().count(), "unacknowledged": b.active().filter(|a| a.acked_ms.is_none()).count(), "by_severity": by_severity})
    });
    let head = json!({
        "alarms": alarms,
        "buses": buses,
        "push_unknown_senders": status.push_unknown.load(Ordering::Relaxed),
        "push_refused": status.push_refused.load(Ordering::Relaxed),
        "gateway_clock": {"set": clock_doubt.is_none(), "doubt": clock_doubt},
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": status.started.elapsed().as_secs(),
        "publisher": {
            "connected": p.connected,
            "publishing_enabled": !status.publishing_disabled.load(Ordering::Relaxed),
            "mode": p.mode,
            // Accepted and not acknowledged: committed rows plus readings held in memory.
            "outbox_depth": p.outbox_rows + p.in_memory,
            "outbox_rows": p.outbox_rows,
            "in_memory": p.in_memory,
            "oldest_unsent_age_s": p.oldest_unsent_ms.map(|t| ((now - t) / 1000).max(0)),
            "commit_error": p.commit_error,
            "published_messages": p.published_messages,
            "published_readings": p.published_readings,
            "failed": p.failed_publishes,
            "reconnects": p.reconnects,
            "dropped": p.dropped,
            "mqtt_bytes": p.mqtt_bytes,
            "incoming_dropped": p.incoming_dropped,
            "unfit": p.unfit,
        },
    });
    let names = status.meter_names();
    let mut out = serde_json::to_vec(&head).unwrap_or_default();
    // Replace the closing brace with the meters member.
    out.pop();
    out.extend_from_slice(b",\"meters\":{");
    let mut first = true;
    for name in names {
        // A meter removed meanwhile is left out.
        let Some(entry) = status.meter(&name).map(|m| meter_json(&m)) else {
            continue;
        };
        if !first {
            out.push(b',');
        }
        first = false;
        let _ = serde_json::to_writer(&mut out, &name);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, &entry);
    }
    out.extend_from_slice(b"}}");
    out
}

/// The status document as a JSON value (tests, and callers that want to inspect it).
pub fn status_json(status: &Status) -> Value {
    serde_json::from_slice(&status_document(status)).unwrap_or(Value::Null)
}

/// Whether a publisher heartbeat this old means the thread is stuck (it passes every 0.5 s).
const PUBLISHER_STUCK_S: u64 = 30;

/// `Ok` when readings flow: outbox commits work, the publisher thread is alive and connected
/// (or publishing is switched off), no accepted reading has waited longer than
/// `max_unsent_age_s` for its PUBACK, and at least one meter read successfully within three of
/// its intervals; else the first reason found.
pub fn health(status: &Status, max_unsent_age_s: u64) -> Result<(), String> {
    let p = status.publisher();
    let publishing = !status.publishing_disabled.load(Ordering::Relaxed);
    if let Some(e) = &p.commit_error {
        return Err(format!(
            "outbox commits failing ({e}); readings held in memory"
        ));
    }
    if p.heartbeat
        .is_some_and(|t| t.elapsed().as_secs() > PUBLISHER_STUCK_S)
    {
        return Err(format!(
            "publisher thread has not run for over {PUBLISHER_STUCK_S} s"
        ));
    }
    if !p.connected && publishing {
        return Err("publisher not connected to the broker".into());
    }
    let now = now_ms();
    if let Some(oldest) = p.oldest_unsent_ms.filter(|_| publishing) {
        let age_s = ((now - oldest) / 1000).max(0) as u64;
        if age_s > max_unsent_age_s {
            return Err(format!(
                "oldest unacknowledged reading is {age_s} s old (health.max_unsent_age_s {max_unsent_age_s}); {} waiting",
                p.outbox_rows + p.in_memory
            ));
        }
    }
    let fresh = status.with_meters(|meters| {
        meters.values().any(|m| {
            m.last_success_ms
                .is_some_and(|t| now - t <= 3 * 1000 * i64::from(m.interval_s.max(1)) + 10_000)
        })
    });
    if !fresh {
        return Err("no meter has been read recently".into());
    }
    Ok(())
}
