//! Every meter field, defined once: its name (API, files, database column), its flag, its
//! help, its parser and how it is shown. `meter add|edit`, `read`, `scan`, the API, import,
//! export and the database all go through this table, so help text, defaults, parsing and
//! messages cannot disagree. (ripgrep's `flags/defs.rs` is the model.)
//!
//! Adding a field: a member of [`MeterConfig`], its default in `Default`, one entry here,
//! and its use. The database gains the column by itself (`store::config`).

use super::error::ConfigError;
use super::meter::MeterConfig;
use super::values::{
    boolean, bounded, device_path, hex_bytes, hex_text, host, label, secret_text, visible_label,
    word, word_of, Secret,
};
use crate::cosem::Obis;

/// The JSON type of a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    Bool,
}

pub struct Field {
    /// The API, file and column name.
    pub name: &'static str,
    /// The command-line flag, without `--`.
    pub flag: &'static str,
    /// What the flag takes, for the help.
    pub value: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// Accepted, stored and used; never shown, logged or exported.
    pub secret: bool,
    /// May be cleared: `none` on the command line, `null` in JSON.
    pub optional: bool,
    /// Taken up between polls by a running meter; any other change restarts the meter's
    /// thread and association.
    pub live: bool,
    set: fn(&mut MeterConfig, &str) -> Result<(), String>,
    clear: fn(&mut MeterConfig),
    get: fn(&MeterConfig) -> Option<String>,
}

impl Field {
    /// Sets the field from text (`None`: clear it).
    pub fn apply(&self, m: &mut MeterConfig, value: Option<&str>) -> Result<(), ConfigError> {
        match value {
            Some(v) => (self.set)(m, v).map_err(|e| ConfigError::field(self.name, e)),
            None if self.optional => {
                (self.clear)(m);
                Ok(())
            }
            None => Err(ConfigError::field(self.name, "cannot be cleared")),
        }
    }

    /// The value as text (secrets included: only the database asks for those).
    pub fn text(&self, m: &MeterConfig) -> Option<String> {
        (self.get)(m)
    }

    /// The default as the help shows it.
    pub fn default_text(&self) -> String {
        match (self.get)(&MeterConfig::default()) {
            Some(v) if !self.secret => v,
            _ => "none".to_string(),
        }
    }
}

fn no_clear(_: &mut MeterConfig) {}

fn s(v: impl ToString) -> Option<String> {
    Some(v.to_string())
}

fn obis(v: &str) -> Result<Obis, String> {
    v.parse()
        .map_err(|e: crate::cosem::obis::ObisParseError| e.to_string())
}

pub static FIELDS: &[Field] = &[
    Field {
        name: "name",
        flag: "name",
        value: "NAME",
        help: "the meter's name: its ThingsBoard device name (1-128 characters, not a number)",
        kind: Kind::Text,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{v:?} is a number; numbers name meters by id"));
            }
            m.name = visible_label(v, 128)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(&m.name),
    },
    Field {
        name: "enabled",
        flag: "enabled",
        value: "true|false",
        help: "poll the meter",
        kind: Kind::Bool,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.enabled = boolean(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.enabled),
    },
    Field {
        name: "transport",
        flag: "transport",
        value: "hdlc|wrapper",
        help: "HDLC (TCP or serial) or the TCP wrapper",
        kind: Kind::Text,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.transport = word(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(word_of(m.transport)),
    },
    Field {
        name: "referencing",
        flag: "referencing",
        value: "ln|sn|auto",
        help: "logical names, short names (older meters), or auto: LN, then SN if the meter refuses LN or does not answer (remembered until restart)",
        kind: Kind::Text,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.referencing = word(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(word_of(m.referencing)),
    },
    Field {
        name: "host",
        flag: "host",
        value: "HOST",
        help: "TCP: host name or address (with --port)",
        kind: Kind::Text,
        secret: false,
        optional: true,
        live: false,
        set: |m, v| {
            m.host = Some(host(v)?);
            Ok(())
        },
        clear: |m| m.host = None,
        get: |m| m.host.clone(),
    },
    Field {
        name: "port",
        flag: "port",
        value: "N",
        help: "TCP: port (4059 is the IANA DLMS port)",
        kind: Kind::Int,
        secret: false,
        optional: true,
        live: false,
        set: |m, v| {
            m.port = Some(bounded(v, 1, u16::MAX)?);
            Ok(())
        },
        clear: |m| m.port = None,
        get: |m| m.port.map(|p| p.to_string()),
    },
    Field {
        name: "serial_device",
        flag: "serial",
        value: "DEVICE",
        help: "serial line, e.g. /dev/ttyUSB0 (instead of --host/--port)",
        kind: Kind::Text,
        secret: false,
        optional: true,
        live: false,
        set: |m, v| {
            m.serial_device = Some(device_path(v)?);
            Ok(())
        },
        clear: |m| m.serial_device = None,
        get: |m| m.serial_device.clone(),
    },
    Field {
        name: "baud",
        flag: "baud",
        value: "N",
        help: "serial: line speed",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.baud = bounded(v, 300, 4_000_000)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.baud),
    },
    Field {
        name: "data_bits",
        flag: "data-bits",
        value: "7|8",
        help: "serial: data bits",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.data_bits = bounded(v, 7, 8)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.data_bits),
    },
    Field {
        name: "parity",
        flag: "parity",
        value: "none|even|odd",
        help: "serial: parity",
        kind: Kind::Text,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.parity = word(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(word_of(m.parity)),
    },
    Field {
        name: "stop_bits",
        flag: "stop-bits",
        value: "1|2",
        help: "serial: stop bits",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.stop_bits = bounded(v, 1, 2)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.stop_bits),
    },
    Field {
        name: "mode_e",
        flag: "mode-e",
        value: "true|false",
        help: "serial: IEC 62056-21 mode E sign-on at 300 baud first (optical probes)",
        kind: Kind::Bool,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.mode_e = boolean(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.mode_e),
    },
    Field {
        name: "protocol",
        flag: "protocol",
        value: "dlms|mode-c",
        help: "DLMS/COSEM, or the IEC 62056-21 data readout (modes A, B, C; serial or TCP)",
        kind: Kind::Text,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.protocol = word(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(word_of(m.protocol)),
    },
    Field {
        name: "client_address",
        flag: "client-address",
        value: "N",
        help: "our client SAP: 16 public client, 1 management, 17 reading client ...",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.client_address = bounded(v, 0, 127)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.client_address),
    },
    Field {
        name: "server_logical",
        flag: "server-logical",
        value: "N",
        help: "the meter's logical device (1: management logical device)",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.server_logical = bounded(v, 0, 16383)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.server_logical),
    },
    Field {
        name: "server_physical",
        flag: "server-physical",
        value: "N|none",
        help: "HDLC: the meter's physical address (none: a one-byte address)",
        kind: Kind::Int,
        secret: false,
        optional: true,
        live: false,
        set: |m, v| {
            m.server_physical = Some(bounded(v, 0, 16383)?);
            Ok(())
        },
        clear: |m| m.server_physical = None,
        get: |m| m.server_physical.map(|p| p.to_string()),
    },
    Field {
        name: "auth",
        flag: "auth",
        value: "none|low|high-gmac|high-md5|high-sha1|high-sha256",
        help: "authentication: none, LLS password, HLS-GMAC (needs --security), or HLS with \
               MD5, SHA-1 or SHA-256 of the challenges and the --password (SHA-256 also needs \
               --system-title)",
        kind: Kind::Text,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.auth = word(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(word_of(m.auth)),
    },
    Field {
        name: "password",
        flag: "password",
        value: "P",
        help: "the LLS password (--auth low), or the HLS secret (--auth high-md5|sha1|sha256)",
        kind: Kind::Text,
        secret: true,
        optional: true,
        live: false,
        set: |m, v| {
            m.password = Some(secret_text(v, 255)?);
            Ok(())
        },
        clear: |m| m.password = None,
        get: |m| m.password.as_ref().map(|p| p.0.clone()),
    },
    Field {
        name: "security",
        flag: "security",
        value: "none|auth|enc|auth-enc",
        help: "suite-0 ciphering of every APDU (needs the title and both keys)",
        kind: Kind::Text,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.security = word(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(word_of(m.security)),
    },
    Field {
        name: "system_title",
        flag: "system-title",
        value: "HEX",
        help: "our system title: 8 bytes as 16 hex digits",
        kind: Kind::Text,
        secret: false,
        optional: true,
        live: false,
        set: |m, v| {
            m.system_title = Some(hex_bytes(v)?);
            Ok(())
        },
        clear: |m| m.system_title = None,
        get: |m| m.system_title.map(|t| hex_text(&t)),
    },
    Field {
        name: "encryption_key",
        flag: "encryption-key",
        value: "HEX",
        help: "global unicast encryption key: 16 bytes as 32 hex digits",
        kind: Kind::Text,
        secret: true,
        optional: true,
        live: false,
        set: |m, v| {
            m.encryption_key = Some(Secret(hex_bytes(v)?));
            Ok(())
        },
        clear: |m| m.encryption_key = None,
        get: |m| m.encryption_key.as_ref().map(|k| hex_text(&k.0)),
    },
    Field {
        name: "authentication_key",
        flag: "authentication-key",
        value: "HEX",
        help: "authentication key: 16 bytes as 32 hex digits",
        kind: Kind::Text,
        secret: true,
        optional: true,
        live: false,
        set: |m, v| {
            m.authentication_key = Some(Secret(hex_bytes(v)?));
            Ok(())
        },
        clear: |m| m.authentication_key = None,
        get: |m| m.authentication_key.as_ref().map(|k| hex_text(&k.0)),
    },
    Field {
        name: "dedicated_key",
        flag: "dedicated-key",
        value: "true|false",
        help: "a fresh random dedicated key in every association (ded- ciphering)",
        kind: Kind::Bool,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.dedicated_key = boolean(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.dedicated_key),
    },
    Field {
        name: "general_ciphering",
        flag: "general-ciphering",
        value: "true|false",
        help: "general-glo/ded ciphering when the meter grants general-protection",
        kind: Kind::Bool,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.general_ciphering = boolean(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.general_ciphering),
    },
    Field {
        name: "gbt",
        flag: "gbt",
        value: "off|auto|on",
        help: "general block transfer for long answers: off (the default: GET data blocks), auto proposes it and takes long answers in it when granted (window 1), on requires it",
        kind: Kind::Text,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.gbt = word(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(word_of(m.gbt)),
    },
    Field {
        name: "frame_counter",
        flag: "frame-counter",
        value: "OBIS|none",
        help: "the meter's frame counter (e.g. 0.0.43.1.0.255): start above it",
        kind: Kind::Text,
        secret: false,
        optional: true,
        live: false,
        set: |m, v| {
            m.frame_counter = Some(obis(v)?);
            Ok(())
        },
        clear: |m| m.frame_counter = None,
        get: |m| m.frame_counter.map(|o| o.to_string()),
    },
    Field {
        name: "connect_timeout_ms",
        flag: "connect-timeout-ms",
        value: "N",
        help: "TCP connect time-out",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.connect_timeout_ms = bounded(v, 10, 600_000)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.connect_timeout_ms),
    },
    Field {
        name: "response_timeout_ms",
        flag: "response-timeout-ms",
        value: "N",
        help: "wait this long for the first frame of each answer",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.response_timeout_ms = bounded(v, 10, 600_000)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.response_timeout_ms),
    },
    Field {
        name: "inter_frame_timeout_ms",
        flag: "inter-frame-timeout-ms",
        value: "N",
        help: "wait this long for each further frame of a segmented answer",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.inter_frame_timeout_ms = bounded(v, 10, 600_000)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.inter_frame_timeout_ms),
    },
    Field {
        name: "max_info",
        flag: "max-info",
        value: "N",
        help: "HDLC: the largest information field we propose (the meter grants up to its own; \
               128 with --hdlc-window 1 sends a SNRM without parameters)",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.max_info = bounded(v, 32, 2030)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.max_info),
    },
    Field {
        name: "hdlc_window",
        flag: "hdlc-window",
        value: "N",
        help: "HDLC: the window we propose (segments per acknowledgement, 1..7; the meter \
               grants up to its own)",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.hdlc_window = bounded(v, 1, 7)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.hdlc_window),
    },
    Field {
        name: "interval_s",
        flag: "interval-s",
        value: "N",
        help: "poll every N seconds (a meter that pushes: the time expected between its notifications; offline after 3 of them missed)",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: true,
        set: |m, v| {
            m.interval_s = bounded(v, 1, 86_400)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.interval_s),
    },
    Field {
        name: "inactivity_timeout_s",
        flag: "inactivity-timeout-s",
        value: "N",
        help: "the meter drops an idle association after this; polls closer keep it open",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: true,
        set: |m, v| {
            m.inactivity_timeout_s = bounded(v, 1, 86_400)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.inactivity_timeout_s),
    },
    Field {
        name: "reconnect_gap_s",
        flag: "reconnect-gap-s",
        value: "N",
        help: "the least seconds between one connection's close and the next (polls, RPCs, \
               profiles, scans): meters that garble a quick reconnect (Microstar: 15)",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.reconnect_gap_s = bounded(v, 0, 600)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.reconnect_gap_s),
    },
    Field {
        name: "single_connection",
        flag: "single-connection",
        value: "true|false",
        help: "the meter takes one connection at a time (2N MeterCom, many modems, MEM600): \
               scans and other reads of it wait while the bridge's connection is open",
        kind: Kind::Bool,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.single_connection = boolean(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.single_connection),
    },
    Field {
        name: "device_type",
        flag: "device-type",
        value: "T",
        help: "the ThingsBoard device type (device profile) in gateway mode",
        kind: Kind::Text,
        secret: false,
        optional: false,
        live: true,
        set: |m, v| {
            m.device_type = label(v, 64)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(&m.device_type),
    },
    Field {
        name: "access_token",
        flag: "access-token",
        value: "T",
        help: "the ThingsBoard device token (device mode)",
        kind: Kind::Text,
        secret: true,
        optional: true,
        live: true,
        set: |m, v| {
            m.access_token = Some(secret_text(v, 255)?);
            Ok(())
        },
        clear: |m| m.access_token = None,
        get: |m| m.access_token.as_ref().map(|t| t.0.clone()),
    },
    Field {
        name: "rpc_write",
        flag: "rpc-write",
        value: "true|false",
        help: "allow ThingsBoard RPCs that write to the meter (clock, relay, set, action)",
        kind: Kind::Bool,
        secret: false,
        optional: false,
        live: true,
        set: |m, v| {
            m.rpc_write = boolean(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.rpc_write),
    },
    Field {
        name: "push",
        flag: "push",
        value: "none|serial|tcp",
        help: "serial: the meter pushes DATA-NOTIFICATIONs on --serial (a HAN/P1 port: receive \
               only); tcp: it connects to the bridge's push.listen (known by --system-title or \
               --push-address)",
        kind: Kind::Text,
        secret: false,
        optional: false,
        live: false,
        set: |m, v| {
            m.push = word(v)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(word_of(m.push)),
    },
    Field {
        name: "push_template",
        flag: "push-template",
        value: "OBIS[@SCALER],...|none",
        help: "pushed lists without OBIS codes: the OBIS code (and scaler) of each position, - to \
               skip one",
        kind: Kind::Text,
        secret: false,
        optional: true,
        live: false,
        set: |m, v| {
            crate::client::push::parse_template(v)?;
            m.push_template = Some(v.trim().to_string());
            Ok(())
        },
        clear: |m| m.push_template = None,
        get: |m| m.push_template.clone(),
    },
    Field {
        name: "push_address",
        flag: "push-address",
        value: "N|none",
        help: "tcp push meters that do not cipher: the source wPort (wrapper) or HDLC address \
               their notifications carry",
        kind: Kind::Int,
        secret: false,
        optional: true,
        live: false,
        set: |m, v| {
            m.push_address = Some(bounded(v, 0, u16::MAX)?);
            Ok(())
        },
        clear: |m| m.push_address = None,
        get: |m| m.push_address.map(|a| a.to_string()),
    },
    Field {
        name: "logical_device_name",
        flag: "logical-device-name",
        value: "TEXT|none",
        help: "tcp push meters: the logical device name (0-0:42.0.0) their notifications carry",
        kind: Kind::Text,
        secret: false,
        optional: true,
        live: false,
        set: |m, v| {
            m.logical_device_name = Some(label(v, 64)?);
            Ok(())
        },
        clear: |m| m.logical_device_name = None,
        get: |m| m.logical_device_name.clone(),
    },
    Field {
        name: "utc_offset_min",
        flag: "utc-offset-min",
        value: "N",
        help: "for meters whose clock is local time without a deviation: minutes east of UTC \
               (the clock's daylight-saving flag adds 60)",
        kind: Kind::Int,
        secret: false,
        optional: false,
        live: true,
        set: |m, v| {
            m.utc_offset_min = bounded(v, -840, 840)?;
            Ok(())
        },
        clear: no_clear,
        get: |m| s(m.utc_offset_min),
    },
    Field {
        name: "clock_sync_threshold_s",
        flag: "clock-sync-threshold-s",
        value: "N|none",
        help: "set the meter's clock when it is off by more than this (at most once per \
               clock.check_interval_s); none: never",
        kind: Kind::Int,
        secret: false,
        optional: true,
        live: true,
        set: |m, v| {
            m.clock_sync_threshold_s = Some(bounded(v, 1, 86_400)?);
            Ok(())
        },
        clear: |m| m.clock_sync_threshold_s = None,
        get: |m| m.clock_sync_threshold_s.map(|t| t.to_string()),
    },
];

impl MeterConfig {
    /// Sets a field by its name from text, as the API and import files do.
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), ConfigError> {
        match find(field) {
            Some(f) => f.apply(self, Some(value)),
            None => Err(ConfigError::new(super::error::literal(&format!(
                "unknown field {field:?}"
            )))),
        }
    }

    /// A field's value as text, by name (secrets included).
    pub fn get(&self, field: &str) -> Option<String> {
        find(field).and_then(|f| f.text(self))
    }
}

/// The measurements' flag: `--measure KEY=OBIS[:CLASS:ATTR]`, repeatable.
pub const MEASURE_HELP: &str =
    "--measure KEY=OBIS[:CLASS:ATTR]  repeatable; replaces the default 3-phase set (class 3, attribute 2 unless given)";

pub fn find(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

pub fn find_flag(flag: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.flag == flag)
}

/// Flags that set several fields at once.
pub static SHORTHANDS: &[(&str, &str, &[&str])] = &[(
    "timeout-ms",
    "N  sets --connect-timeout-ms and --response-timeout-ms",
    &["connect_timeout_ms", "response_timeout_ms"],
)];

/// Whether `--flag` is a meter field's flag (or a shorthand for some).
pub fn is_flag(flag: &str) -> bool {
    find_flag(flag).is_some() || SHORTHANDS.iter().any(|s| s.0 == flag)
}

/// Applies `--flag VALUE` from the command line: `none` clears an optional field.
pub fn apply_flag(m: &mut MeterConfig, flag: &str, value: &str) -> Result<(), ConfigError> {
    let targets: Vec<&Field> = match (find_flag(flag), SHORTHANDS.iter().find(|s| s.0 == flag)) {
        (Some(f), _) => vec![f],
        (None, Some((_, _, names))) => names.iter().filter_map(|n| find(n)).collect(),
        (None, None) => {
            return Err(ConfigError::new(super::error::literal(&format!(
                "--{flag} is not a meter option"
            ))))
        }
    };
    for f in targets {
        let v = (value == "none" && f.optional)
            .then_some(())
            .map_or(Some(value), |()| None);
        f.apply(m, v)?;
    }
    Ok(())
}

/// One help line per field, with its default.
pub fn help_lines(skip: &[&str]) -> String {
    let mut out = String::new();
    for f in FIELDS.iter().filter(|f| !skip.contains(&f.name)) {
        let flag = format!("--{} {}", f.flag, f.value);
        out.push_str(&format!(
            "  {flag:38} {} (default {})\n",
            f.help,
            f.default_text()
        ));
    }
    for (flag, help, _) in SHORTHANDS {
        out.push_str(&format!("  --{flag} {help}\n"));
    }
    out.push_str("  ");
    out.push_str(MEASURE_HELP);
    out
}

/// The fields in which `a` and `b` differ.
pub fn changed(a: &MeterConfig, b: &MeterConfig) -> Vec<&'static Field> {
    FIELDS.iter().filter(|f| f.text(a) != f.text(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_distinct_and_round_trips_its_default() {
        let mut names = std::collections::HashSet::new();
        let mut flags = std::collections::HashSet::new();
        for f in FIELDS {
            assert!(names.insert(f.name) && flags.insert(f.flag), "{}", f.name);
            let mut m = MeterConfig::default();
            if let Some(v) = f.text(&m).filter(|v| !v.is_empty()) {
                f.apply(&mut m, Some(&v)).unwrap();
                assert_eq!(f.text(&m).as_deref(), Some(v.as_str()), "{}", f.name);
            }
        }
        assert!(help_lines(&[]).contains("--server-physical N|none"));
        assert!(help_lines(&[]).contains("(default 17)"));
    }

    #[test]
    fn values_are_checked_where_they_enter() {
        let mut m = MeterConfig::default();
        let err = find("enabled")
            .unwrap()
            .apply(&mut m, Some("flase"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "enabled: \"flase\" is not true or false (yes/no, 1/0)"
        );
        assert!(m.enabled, "nothing changed");
        assert!(find("name").unwrap().apply(&mut m, Some("12")).is_err());
        assert!(find("host").unwrap().apply(&mut m, Some("a b")).is_err());
        let e = find("name")
            .unwrap()
            .apply(&mut m, Some("Meter\u{202E}A"))
            .unwrap_err();
        assert_eq!(e.field_name(), Some("name"));
        assert!(e.to_string().contains("U+202E"), "{e}");
        let e = find("host")
            .unwrap()
            .apply(&mut m, Some("localhost:80"))
            .unwrap_err();
        assert!(e.to_string().starts_with("host: \"localhost:80\""), "{e}");
        assert!(find("baud").unwrap().apply(&mut m, None).is_err());
        find("server_physical")
            .unwrap()
            .apply(&mut m, None)
            .unwrap();
        assert_eq!(m.server_physical, None);
    }

    /// Every member of `MeterConfig` (but the row id, the measurements and the profiles) is in `FIELDS`:
    /// a member without an entry would be neither stored nor settable.
    #[test]
    fn every_member_has_a_field() {
        let shown = format!("{:?}", MeterConfig::default());
        let inner = &shown[shown.find('{').unwrap() + 1..shown.rfind('}').unwrap()];
        let (mut depth, mut members, mut start) = (0i32, Vec::new(), 0usize);
        for (i, c) in inner.char_indices() {
            match c {
                '{' | '[' | '(' => depth += 1,
                '}' | ']' | ')' => depth -= 1,
                ',' if depth == 0 => {
                    members.push(inner[start..i].trim().to_string());
                    start = i + 1;
                }
                _ => {}
            }
        }
        members.push(inner[start..].trim().to_string());
        for m in members {
            let name = m.split(':').next().unwrap().trim();
            if name == "id" || name == "measurements" || name == "profiles" {
                continue;
            }
            assert!(
                find(name).is_some(),
                "MeterConfig::{name} has no entry in FIELDS"
            );
        }
    }
}
