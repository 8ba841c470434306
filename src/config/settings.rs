//! Bridge-wide settings (MQTT broker, ThingsBoard mode and limits, outbox bounds, health, the
//! status page), each defined once in [`SETTINGS`]: its key, help, parser and how it is
//! shown. `settings show|set`, `settings --help`, the unknown-key message and the database
//! (`store::settings`) all go through the table.

use super::error::quoted;
use super::values::{boolean, bounded, host, word, word_of, Word};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishMode {
    /// One MQTT session with the gateway token; meters are gateway devices.
    Gateway,
    /// One MQTT session per meter, with the meter's own access token.
    Device,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    /// Delete the oldest readings to make room (the default: recent data matters most).
    DropOldest,
    /// Refuse new readings while full.
    DropNewest,
}

/// The broker connection's settings: compared as a whole (`PartialEq`) to decide whether a
/// configuration change needs new MQTT sessions, so a new connection setting is added here
/// once and is taken into account everywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerSettings {
    /// Publishing is off when empty: readings stay in the outbox.
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// MQTT over TLS (mqtts; brokers listen on 8883 for it).
    pub tls: bool,
    /// PEM file of the CA(s) that signed the broker's certificate; empty: the system's CAs.
    pub ca_file: String,
    /// PEM client certificate and private key (X.509 device authentication in ThingsBoard);
    /// both or neither.
    pub client_cert: String,
    pub client_key: String,
    pub client_key_password: Option<String>,
    /// Check that the broker's certificate names `host` (on unless a test lab says so).
    pub verify_hostname: bool,
    pub mode: PublishMode,
    pub gateway_token: Option<String>,
    /// The longest wait between two connect attempts (the backoff doubles up to it).
    pub reconnect_max_s: u64,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "auto".into(),
            tls: false,
            ca_file: String::new(),
            client_cert: String::new(),
            client_key: String::new(),
            client_key_password: None,
            verify_hostname: true,
            mode: PublishMode::Gateway,
            gateway_token: None,
            reconnect_max_s: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BridgeSettings {
    /// Everything a broker connection is made from: a change here (and only here) makes the
    /// publisher close its sessions and connect again.
    pub broker: BrokerSettings,
    /// ThingsBoard's default maximum MQTT payload is 64 KiB.
    pub max_payload_bytes: usize,
    pub max_messages_per_second: u32,
    /// Readings per group commit, and the longest a reading waits for its commit.
    pub batch_max_readings: usize,
    pub commit_interval_ms: u64,
    pub outbox_max_rows: u64,
    pub outbox_max_age_s: u64,
    pub outbox_full_policy: FullPolicy,
    /// Write behind: readings the broker acknowledges within the commit interval are never
    /// written to disk (SD card wear); the rest are committed as usual.
    pub outbox_write_behind: bool,
    /// /healthz fails when the oldest unacknowledged reading is older than this.
    pub health_max_unsent_age_s: u64,
    pub status_interval_s: u64,
    /// Status page address; empty disables it.
    pub http_bind: String,
    /// Bearer token of the admin API; the API is refused entirely while unset.
    pub api_token: Option<String>,
    /// Whether a ThingsBoard shared attribute may set a meter's `rpc_write`.
    pub allow_remote_rpc_write: bool,
    /// RPCs waiting per meter; more are answered "busy".
    pub rpc_queue: usize,
    pub rpc_timeout_s: u64,
    /// Rows a read_profile RPC returns at most.
    pub rpc_max_rows: usize,
    /// Seconds between the gateway's own telemetry messages (0: none).
    pub stats_interval_s: u64,
    /// Profile rows per exchange while collecting (a backfill comes in chunks of this).
    pub profile_chunk_rows: u32,
    /// How far back a newly added profile starts.
    pub profile_initial_days: u32,
    /// The longest gap a backfill covers; older rows are skipped (and logged).
    pub profile_max_backfill_days: u32,
    /// Seconds between reads of each meter's clock (and possible syncs).
    pub clock_check_interval_s: u64,
    /// Quiet time on a shared serial line between a turn's end and the next request.
    pub bus_turnaround_ms: u64,
    /// Keep a meter's association open across its turns on a shared line.
    pub bus_keep_open: bool,
    /// Where meters that push over TCP connect (ADDRESS:PORT; empty: no listener).
    pub push_listen: String,
    /// A pushed notification whose own date-time is further than this from the gateway's
    /// (trusted) clock is stamped with the gateway's time instead (0: never).
    pub push_max_clock_skew_s: u64,
    /// After a meter refused our credentials for good, the seconds before the next attempt
    /// (a configuration change tries at once).
    pub auth_retry_s: u64,
    /// The addresses a scan (page, RPC) may probe: "auto" (the gateway's own IPv4 subnets and
    /// loopback) or a comma list of CIDR blocks.
    pub scan_allowed: String,
    /// PEM certificate (chain) and private key of the status page's HTTPS; both or neither.
    pub http_tls_cert: String,
    pub http_tls_key: String,
    /// The publisher alarm is raised after this long without a broker connection.
    pub alarm_publisher_offline_s: u64,
    /// A meter's clock further off than this (either way) raises the clock alarm.
    pub alarm_clock_drift_s: u64,
}

impl Default for BridgeSettings {
    fn default() -> Self {
        BridgeSettings {
            broker: BrokerSettings::default(),
            max_payload_bytes: 65_536,
            max_messages_per_second: 50,
            batch_max_readings: 500,
            commit_interval_ms: 200,
            outbox_max_rows: 1_000_000,
            outbox_max_age_s: 30 * 86_400,
            outbox_full_policy: FullPolicy::DropOldest,
            outbox_write_behind: true,
            health_max_unsent_age_s: 120,
            status_interval_s: 60,
            http_bind: "127.0.0.1:8080".into(),
            api_token: None,
            allow_remote_rpc_write: false,
            rpc_queue: 8,
            rpc_timeout_s: 30,
            rpc_max_rows: 1000,
            stats_interval_s: 60,
            profile_chunk_rows: 96,
            profile_initial_days: 1,
            profile_max_backfill_days: 31,
            clock_check_interval_s: 3600,
            bus_turnaround_ms: 20,
            bus_keep_open: false,
            push_listen: String::new(),
            push_max_clock_skew_s: 300,
            auth_retry_s: 3600,
            scan_allowed: "auto".into(),
            http_tls_cert: String::new(),
            http_tls_key: String::new(),
            alarm_publisher_offline_s: 300,
            alarm_clock_drift_s: 60,
        }
    }
}

/// One setting: its key, what it means, and how it is parsed and shown.
pub struct Setting {
    pub key: &'static str,
    pub help: &'static str,
    /// Accepted and stored; shown only as "(set)" or "(not set)".
    pub secret: bool,
    set: fn(&mut BridgeSettings, &str) -> Result<(), String>,
    get: fn(&BridgeSettings) -> String,
}

impl Setting {
    /// The value as `settings show` prints it (secrets masked).
    pub fn shown(&self, s: &BridgeSettings) -> String {
        let v = (self.get)(s);
        match (self.secret, v.is_empty()) {
            (true, true) => "(not set)".into(),
            (true, false) => "(set)".into(),
            (false, _) => v,
        }
    }

    pub fn default_shown(&self) -> String {
        match (self.get)(&BridgeSettings::default()) {
            v if v.is_empty() => "empty".into(),
            v => v,
        }
    }
}

impl Word for PublishMode {
    const ALL: &'static [(Self, &'static str)] = &[
        (PublishMode::Gateway, "gateway"),
        (PublishMode::Device, "device"),
    ];
}

impl Word for FullPolicy {
    const ALL: &'static [(Self, &'static str)] = &[
        (FullPolicy::DropOldest, "drop-oldest"),
        (FullPolicy::DropNewest, "drop-newest"),
    ];
}

fn optional(v: &str) -> Option<String> {
    Some(v.to_string()).filter(|t| !t.is_empty())
}

/// The admin API's token must not be guessable: 16 characters or more, no blanks or control
/// characters, at least 8 different ones, and not a run such as 1234567890123456 or
/// abcdefghijklmnop. (The message never repeats the token: it reaches terminals and logs.)
fn api_token(v: &str) -> Result<(), String> {
    if v.chars().count() < 16 || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("use at least 16 characters, no blanks or control characters".into());
    }
    let distinct: std::collections::HashSet<char> = v.chars().collect();
    if distinct.len() < 8 {
        return Err(format!(
            "the token has only {} different characters; use at least 8 (e.g. random hex digits: od -An -tx1 -N16 /dev/urandom | tr -d ' \\n')",
            distinct.len()
        ));
    }
    if is_run(v) {
        return Err("the token is a simple sequence of characters; use a random one".into());
    }
    Ok(())
}

/// Whether every character follows the one before by the same step of one, forward or
/// backward, in the digits, the letters or both (wrapping: ...8901..., ...yzab...).
fn is_run(v: &str) -> bool {
    const ALPHABETS: [&str; 3] = [
        "0123456789",
        "abcdefghijklmnopqrstuvwxyz",
        "0123456789abcdefghijklmnopqrstuvwxyz",
    ];
    let lower = v.to_ascii_lowercase();
    ALPHABETS.iter().any(|alphabet| {
        let n = alphabet.len();
        let Some(at) = lower
            .chars()
            .map(|c| alphabet.find(c))
            .collect::<Option<Vec<usize>>>()
        else {
            return false;
        };
        let steps: Vec<usize> = at.windows(2).map(|w| (w[1] + n - w[0]) % n).collect();
        steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == n - 1)
    })
}

pub static SETTINGS: &[Setting] = &[
    Setting {
        key: "mqtt.host",
        help: "broker host (empty: do not publish, keep readings in the outbox)",
        secret: false,
        set: |s, v| {
            let v = v.trim();
            if !v.is_empty() {
                host(v)?;
            }
            s.broker.host = v.to_string();
            Ok(())
        },
        get: |s| s.broker.host.clone(),
    },
    Setting {
        key: "mqtt.port",
        help: "broker port",
        secret: false,
        set: |s, v| {
            s.broker.port = bounded(v, 1, u16::MAX)?;
            Ok(())
        },
        get: |s| s.broker.port.to_string(),
    },
    Setting {
        key: "mqtt.client_id",
        help: "MQTT client id (gateway mode); auto: dlms-bridge-HOSTNAME-MACHINEID8-XXXX, stable and different for every machine and database (a broker keeps one session per id)",
        secret: false,
        set: |s, v| {
            s.broker.client_id = super::values::label(v, 128)?;
            Ok(())
        },
        get: |s| s.broker.client_id.clone(),
    },
    Setting {
        key: "mqtt.tls",
        help: "true: MQTT over TLS (set mqtt.port to the broker's TLS port, usually 8883)",
        secret: false,
        set: |s, v| {
            let tls = boolean(v)?;
            // Refused where it is set, not only in the log of a bridge retrying for ever.
            if tls && !cfg!(feature = "tls") {
                return Err(
                    "mqtt.tls: this build has no TLS (built without the tls feature; cross/build.sh --tls makes one with it)"
                        .into(),
                );
            }
            s.broker.tls = tls;
            Ok(())
        },
        get: |s| s.broker.tls.to_string(),
    },
    Setting {
        key: "mqtt.ca_file",
        help: "PEM file of the CA that signed the broker's certificate (empty: system CAs)",
        secret: false,
        set: |s, v| {
            s.broker.ca_file = v.trim().to_string();
            Ok(())
        },
        get: |s| s.broker.ca_file.clone(),
    },
    Setting {
        key: "mqtt.client_cert",
        help: "PEM client certificate for X.509 authentication (with mqtt.client_key)",
        secret: false,
        set: |s, v| {
            s.broker.client_cert = v.trim().to_string();
            Ok(())
        },
        get: |s| s.broker.client_cert.clone(),
    },
    Setting {
        key: "mqtt.client_key",
        help: "PEM private key of mqtt.client_cert",
        secret: false,
        set: |s, v| {
            s.broker.client_key = v.trim().to_string();
            Ok(())
        },
        get: |s| s.broker.client_key.clone(),
    },
    Setting {
        key: "mqtt.client_key_password",
        help: "password of an encrypted mqtt.client_key",
        secret: true,
        set: |s, v| {
            s.broker.client_key_password = optional(v);
            Ok(())
        },
        get: |s| s.broker.client_key_password.clone().unwrap_or_default(),
    },
    Setting {
        key: "mqtt.verify_hostname",
        help: "false: accept a trusted certificate for another host name (test labs only)",
        secret: false,
        set: |s, v| {
            s.broker.verify_hostname = boolean(v)?;
            Ok(())
        },
        get: |s| s.broker.verify_hostname.to_string(),
    },
    Setting {
        key: "mqtt.reconnect_max_s",
        help: "longest wait between broker connect attempts (the wait doubles from 1 s up to it)",
        secret: false,
        set: |s, v| {
            s.broker.reconnect_max_s = bounded(v, 1, 3600)?;
            Ok(())
        },
        get: |s| s.broker.reconnect_max_s.to_string(),
    },
    Setting {
        key: "thingsboard.mode",
        help: "gateway (one session, the gateway token) or device (one session per meter)",
        secret: false,
        set: |s, v| {
            s.broker.mode = word(v)?;
            Ok(())
        },
        get: |s| word_of(s.broker.mode).to_string(),
    },
    Setting {
        key: "thingsboard.gateway_token",
        help: "gateway device access token",
        secret: true,
        set: |s, v| {
            s.broker.gateway_token = optional(v);
            Ok(())
        },
        get: |s| s.broker.gateway_token.clone().unwrap_or_default(),
    },
    Setting {
        key: "thingsboard.max_payload_bytes",
        help: "largest MQTT payload (ThingsBoard's default limit is 64 KiB)",
        secret: false,
        set: |s, v| {
            s.max_payload_bytes = bounded(v, 1024, 256 * 1024 * 1024)?;
            Ok(())
        },
        get: |s| s.max_payload_bytes.to_string(),
    },
    Setting {
        key: "thingsboard.max_messages_per_second",
        help: "publish rate limit",
        secret: false,
        set: |s, v| {
            s.max_messages_per_second = bounded(v, 1, 100_000)?;
            Ok(())
        },
        get: |s| s.max_messages_per_second.to_string(),
    },
    Setting {
        key: "outbox.batch_max_readings",
        help: "readings per group commit",
        secret: false,
        set: |s, v| {
            s.batch_max_readings = bounded(v, 1, 1_000_000)?;
            Ok(())
        },
        get: |s| s.batch_max_readings.to_string(),
    },
    Setting {
        key: "outbox.commit_interval_ms",
        help: "longest wait before a reading is committed",
        secret: false,
        set: |s, v| {
            s.commit_interval_ms = bounded(v, 1, 60_000)?;
            Ok(())
        },
        get: |s| s.commit_interval_ms.to_string(),
    },
    Setting {
        key: "outbox.max_rows",
        help: "outbox bound in readings",
        secret: false,
        set: |s, v| {
            s.outbox_max_rows = bounded(v, 1, u64::MAX)?;
            Ok(())
        },
        get: |s| s.outbox_max_rows.to_string(),
    },
    Setting {
        key: "outbox.max_age_s",
        help: "readings older than this are dropped (counted and logged)",
        secret: false,
        set: |s, v| {
            s.outbox_max_age_s = bounded(v, 1, u64::MAX)?;
            Ok(())
        },
        get: |s| s.outbox_max_age_s.to_string(),
    },
    Setting {
        key: "outbox.full_policy",
        help: "drop-oldest or drop-newest",
        secret: false,
        set: |s, v| {
            s.outbox_full_policy = word(v)?;
            Ok(())
        },
        get: |s| word_of(s.outbox_full_policy).to_string(),
    },
    Setting {
        key: "outbox.write_behind",
        help: "true: readings acknowledged within outbox.commit_interval_ms are not written to disk; false: every reading is committed before it is published",
        secret: false,
        set: |s, v| {
            s.outbox_write_behind = boolean(v)?;
            Ok(())
        },
        get: |s| s.outbox_write_behind.to_string(),
    },
    Setting {
        key: "health.max_unsent_age_s",
        help: "/healthz answers 503 when the oldest reading not yet acknowledged by the broker is older than this",
        secret: false,
        set: |s, v| {
            s.health_max_unsent_age_s = bounded(v, 1, u64::MAX)?;
            Ok(())
        },
        get: |s| s.health_max_unsent_age_s.to_string(),
    },
    Setting {
        key: "profile.chunk_rows",
        help: "profile rows read per exchange (a backfill comes in chunks of this, between live polls)",
        secret: false,
        set: |s, v| {
            s.profile_chunk_rows = bounded(v, 1, 10_000)?;
            Ok(())
        },
        get: |s| s.profile_chunk_rows.to_string(),
    },
    Setting {
        key: "profile.initial_days",
        help: "how far back a newly added profile is collected",
        secret: false,
        set: |s, v| {
            s.profile_initial_days = bounded(v, 0, 366)?;
            Ok(())
        },
        get: |s| s.profile_initial_days.to_string(),
    },
    Setting {
        key: "profile.max_backfill_days",
        help: "the longest gap a backfill covers; rows older than this are skipped (logged)",
        secret: false,
        set: |s, v| {
            s.profile_max_backfill_days = bounded(v, 1, 366)?;
            Ok(())
        },
        get: |s| s.profile_max_backfill_days.to_string(),
    },
    Setting {
        key: "clock.check_interval_s",
        help: "seconds between reads of each meter's clock (drift telemetry, syncs)",
        secret: false,
        set: |s, v| {
            s.clock_check_interval_s = bounded(v, 10, 86_400 * 7)?;
            Ok(())
        },
        get: |s| s.clock_check_interval_s.to_string(),
    },
    Setting {
        key: "bus.turnaround_ms",
        help: "quiet time on a shared serial line (RS-485) between one meter's turn and the next request",
        secret: false,
        set: |s, v| {
            s.bus_turnaround_ms = bounded(v, 0, 10_000)?;
            Ok(())
        },
        get: |s| s.bus_turnaround_ms.to_string(),
    },
    Setting {
        key: "bus.keep_open",
        help: "keep each meter's association open across its turns on a shared line (meters that keep HDLC state per address); false: released after each turn",
        secret: false,
        set: |s, v| {
            s.bus_keep_open = crate::config::values::boolean(v)?;
            Ok(())
        },
        get: |s| s.bus_keep_open.to_string(),
    },
    Setting {
        key: "push.listen",
        help: "address where meters that push over TCP connect (e.g. 0.0.0.0:4059; empty: none; read at start)",
        secret: false,
        set: |s, v| {
            let v = v.trim();
            if !v.is_empty() && v.parse::<std::net::SocketAddr>().is_err() {
                return Err(format!(
                    "{} is not ADDRESS:PORT (e.g. 0.0.0.0:4059)",
                    quoted(v)
                ));
            }
            s.push_listen = v.to_string();
            Ok(())
        },
        get: |s| s.push_listen.clone(),
    },
    Setting {
        key: "push.max_clock_skew_s",
        help: "a pushed notification whose date-time is further than this from the gateway's clock is stamped with the gateway's time (logged); 0: always the meter's time",
        secret: false,
        set: |s, v| {
            s.push_max_clock_skew_s = bounded(v, 0, 86_400 * 366)?;
            Ok(())
        },
        get: |s| s.push_max_clock_skew_s.to_string(),
    },
    Setting {
        key: "meter.auth_retry_s",
        help: "after a meter refuses the password or keys for good (wrong password, unknown mechanism), seconds before it is tried again (a configuration change tries at once); at least 1200: many meters lock after 3 failed authentications",
        secret: false,
        set: |s, v| {
            s.auth_retry_s = bounded(v, 1200, 86_400 * 7)?;
            Ok(())
        },
        get: |s| s.auth_retry_s.to_string(),
    },
    Setting {
        key: "scan.allowed",
        help: "addresses a scan from the page or the scan RPC may probe: auto (the gateway's own IPv4 subnets and loopback) or a comma list of CIDR blocks (e.g. 10.1.0.0/16,127.0.0.0/8)",
        secret: false,
        set: |s, v| {
            let v = v.trim();
            if v != "auto" {
                for block in v.split(',').map(str::trim) {
                    crate::scan::parse_cidr(block)?;
                }
            }
            s.scan_allowed = v.to_string();
            Ok(())
        },
        get: |s| s.scan_allowed.clone(),
    },
    Setting {
        key: "log.status_interval_s",
        help: "seconds between per-meter status lines",
        secret: false,
        set: |s, v| {
            s.status_interval_s = bounded(v, 1, u64::MAX)?;
            Ok(())
        },
        get: |s| s.status_interval_s.to_string(),
    },
    Setting {
        key: "http.bind",
        help: "address of the status page and API (ADDRESS:PORT; empty: no status page)",
        secret: false,
        set: |s, v| {
            let v = v.trim();
            if !v.is_empty() && v.parse::<std::net::SocketAddr>().is_err() {
                return Err(format!(
                    "{} is not ADDRESS:PORT (e.g. 127.0.0.1:8080)",
                    quoted(v)
                ));
            }
            s.http_bind = v.to_string();
            Ok(())
        },
        get: |s| s.http_bind.clone(),
    },
    Setting {
        key: "http.api_token",
        help: "bearer token of the meter API (at least 16 characters, 8 of them different, not a sequence; empty: API off)",
        secret: true,
        set: |s, v| {
            if !v.is_empty() {
                api_token(v)?;
            }
            s.api_token = optional(v);
            Ok(())
        },
        get: |s| s.api_token.clone().unwrap_or_default(),
    },
    Setting {
        key: "http.tls_cert",
        help: "PEM certificate (chain) of the status page's HTTPS, with http.tls_key (empty: plain HTTP; read at start)",
        secret: false,
        set: |s, v| {
            s.http_tls_cert = v.trim().to_string();
            Ok(())
        },
        get: |s| s.http_tls_cert.clone(),
    },
    Setting {
        key: "http.tls_key",
        help: "PEM private key of http.tls_cert (keep it readable by the service user only)",
        secret: false,
        set: |s, v| {
            s.http_tls_key = v.trim().to_string();
            Ok(())
        },
        get: |s| s.http_tls_key.clone(),
    },
    Setting {
        key: "alarm.publisher_offline_s",
        help: "seconds without a broker connection before the publisher alarm is raised",
        secret: false,
        set: |s, v| {
            s.alarm_publisher_offline_s = bounded(v, 1, 86_400 * 30)?;
            Ok(())
        },
        get: |s| s.alarm_publisher_offline_s.to_string(),
    },
    Setting {
        key: "alarm.clock_drift_s",
        help: "seconds a meter's clock may be off (either way) before the clock alarm is raised",
        secret: false,
        set: |s, v| {
            s.alarm_clock_drift_s = bounded(v, 1, 86_400 * 365)?;
            Ok(())
        },
        get: |s| s.alarm_clock_drift_s.to_string(),
    },
    Setting {
        key: "thingsboard.allow_remote_rpc_write",
        help: "true: a shared attribute may set a meter's rpc_write (unlock relay and clock RPCs from ThingsBoard)",
        secret: false,
        set: |s, v| {
            s.allow_remote_rpc_write = boolean(v)?;
            Ok(())
        },
        get: |s| s.allow_remote_rpc_write.to_string(),
    },
    Setting {
        key: "thingsboard.stats_interval_s",
        help: "seconds between the gateway's own telemetry (0: none)",
        secret: false,
        set: |s, v| {
            s.stats_interval_s = bounded(v, 0, 86_400)?;
            Ok(())
        },
        get: |s| s.stats_interval_s.to_string(),
    },
    Setting {
        key: "rpc.queue",
        help: "RPCs waiting per meter; more are answered busy",
        secret: false,
        set: |s, v| {
            s.rpc_queue = bounded(v, 1, 64)?;
            Ok(())
        },
        get: |s| s.rpc_queue.to_string(),
    },
    Setting {
        key: "rpc.timeout_s",
        help: "an RPC not answered in this time gets a timeout error (a late answer is dropped)",
        secret: false,
        set: |s, v| {
            s.rpc_timeout_s = bounded(v, 1, 600)?;
            Ok(())
        },
        get: |s| s.rpc_timeout_s.to_string(),
    },
    Setting {
        key: "rpc.max_rows",
        help: "rows a read_profile RPC returns at most (then truncated: true)",
        secret: false,
        set: |s, v| {
            s.rpc_max_rows = bounded(v, 1, 100_000)?;
            Ok(())
        },
        get: |s| s.rpc_max_rows.to_string(),
    },
];

pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

impl BridgeSettings {
    /// Sets one setting from text; a bad value changes nothing and says why.
    pub fn apply(&mut self, key: &str, v: &str) -> Result<(), String> {
        let Some(setting) = find(key) else {
            let known: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
            return Err(format!(
                "unknown setting {}; known: {}",
                quoted(key),
                known.join(", ")
            ));
        };
        (setting.set)(self, v).map_err(|e| format!("{key}: {e}"))
    }

    /// (key, value) for display; secrets masked.
    pub fn shown(&self) -> Vec<(&'static str, String)> {
        SETTINGS.iter().map(|s| (s.key, s.shown(self))).collect()
    }
}

/// One help line per setting, with its default.
pub fn help_lines() -> String {
    SETTINGS
        .iter()
        .map(|s| {
            format!(
                "  {:38} {} (default {})\n",
                s.key,
                s.help,
                s.default_shown()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// Issue 25 item 4: a build without TLS took `mqtt.tls true` and failed only at run time.
    #[test]
    fn mqtt_tls_is_refused_where_the_build_has_no_tls() {
        let mut s = BridgeSettings::default();
        let got = s.apply("mqtt.tls", "true");
        if cfg!(feature = "tls") {
            assert!(got.is_ok(), "{got:?}");
        } else {
            assert!(got.is_err_and(|e| e.contains("no TLS")));
        }
        assert!(s.apply("mqtt.tls", "false").is_ok());
    }

    use super::*;

    #[test]
    fn every_setting_round_trips_its_default_and_refuses_nonsense() {
        for s in SETTINGS {
            let mut b = BridgeSettings::default();
            let v = (s.get)(&b);
            if !v.is_empty() {
                b.apply(s.key, &v).unwrap();
                assert_eq!(b, BridgeSettings::default(), "{}", s.key);
            }
        }
        let mut b = BridgeSettings::default();
        for (k, v) in [
            ("mqtt.port", "0"),
            ("mqtt.tls", "ture"),
            ("thingsboard.mode", "both"),
            ("outbox.max_rows", "0"),
            ("mqtt.reconnect_max_s", "3601"),
            ("http.bind", "localhost"),
            ("http.api_token", "short"),
        ] {
            let e = b.apply(k, v).unwrap_err();
            assert!(e.starts_with(&format!("{k}: ")), "{e}");
        }
        assert_eq!(b, BridgeSettings::default(), "nothing changed");
        assert!(b
            .apply("mqtt.hots", "x")
            .unwrap_err()
            .contains("http.api_token"));
        assert!(help_lines().contains("mqtt.port") && help_lines().contains("(default 1883)"));
    }

    #[test]
    fn the_broker_host_is_a_host() {
        let mut b = BridgeSettings::default();
        for good in ["", "tb.example.com", "10.0.0.5", "::1", " localhost "] {
            b.apply("mqtt.host", good).unwrap();
        }
        assert_eq!(b.broker.host, "localhost", "trimmed");
        for bad in [
            "a b",
            "tb:1883",
            "a..b",
            "999.1.1.1",
            "255.255.255.255",
            "0.0.0.0",
        ] {
            let e = b.apply("mqtt.host", bad).unwrap_err();
            assert!(
                e.starts_with("mqtt.host: ") && e.contains("not a host name or IP address"),
                "{bad:?}: {e}"
            );
        }
        assert_eq!(b.broker.host, "localhost", "nothing changed");
    }

    #[test]
    fn api_tokens_must_not_be_guessable() {
        let mut b = BridgeSettings::default();
        for good in [
            "test-token-0123456789",
            "T0KEN-0123456789abcdef",
            "9f86d081884c7d659a2feaa0",
            "correct-horse-battery-staple",
        ] {
            b.apply("http.api_token", good).unwrap();
            assert_eq!(b.api_token.as_deref(), Some(good));
        }
        for (bad, why) in [
            ("short", "at least 16"),
            ("0000000000000000", "different characters"),
            ("aaaaaaaaaaaaaaaaaaaa", "different characters"),
            ("abababababababab", "different characters"),
            ("1234567890123456", "sequence"),
            ("abcdefghijklmnop", "sequence"),
            ("ABCDEFGHIJKLMNOP", "sequence"),
            ("zyxwvutsrqponmlk", "sequence"),
            ("0123456789abcdef", "sequence"),
            ("my token with blanks", "no blanks"),
        ] {
            let e = b.apply("http.api_token", bad).unwrap_err();
            assert!(
                e.starts_with("http.api_token: ") && e.contains(why),
                "{bad:?}: {e}"
            );
            assert!(!e.contains(bad), "the token is never repeated: {e}");
        }
        assert_eq!(
            b.api_token.as_deref(),
            Some("correct-horse-battery-staple"),
            "nothing changed"
        );
        b.apply("http.api_token", "").unwrap();
        assert_eq!(b.api_token, None, "empty turns the API off");
    }
}
