//! Raw command-line options, validated into the library's configuration types (the ripgrep
//! split: flags here, meaning there). Every mistake is one clear line and exit code 2.

use dlms_bridge::client::{ConnectionOptions, Endpoint, Framing, MeterTarget, SerialSettings};
use dlms_bridge::dlms::hdlc::ServerAddress;
use dlms_bridge::dlms::session::{Authentication, SessionConfig};
use lexopt::prelude::*;
use std::time::Duration;

/// A usage error: printed as one line, exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl From<lexopt::Error> for UsageError {
    fn from(e: lexopt::Error) -> Self {
        UsageError(e.to_string())
    }
}

pub fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Hdlc,
    Wrapper,
}

/// The options shared by `read` and `scan` that say how to reach and address a meter.
#[derive(Debug, Clone)]
pub struct MeterOptions {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub serial: Option<String>,
    pub baud: u32,
    pub mode_e: bool,
    pub transport: Option<TransportKind>,
    pub client_address: u8,
    pub server_logical: u16,
    pub server_physical: Option<u16>,
    pub auth_low: bool,
    pub auth_high_gmac: bool,
    pub password: Option<String>,
    pub protection: Option<dlms_bridge::dlms::security::Protection>,
    pub system_title: Option<[u8; 8]>,
    pub encryption_key: Option<[u8; 16]>,
    pub authentication_key: Option<[u8; 16]>,
    pub invocation_counter: Option<u32>,
    pub dedicated_key: Option<[u8; 16]>,
    pub general_ciphering: bool,
    pub frame_counter: Option<dlms_bridge::cosem::Obis>,
    pub timeout_ms: u64,
    pub inter_frame_timeout_ms: Option<u64>,
    pub retries: u32,
    pub data_bits: serialport::DataBits,
    pub parity: serialport::Parity,
    pub stop_bits: serialport::StopBits,
    pub max_info: u16,
}

impl Default for MeterOptions {
    fn default() -> Self {
        MeterOptions {
            host: None,
            port: None,
            serial: None,
            baud: 9600,
            mode_e: false,
            transport: None,
            client_address: 16,
            server_logical: 1,
            server_physical: Some(17),
            auth_low: false,
            auth_high_gmac: false,
            password: None,
            protection: None,
            system_title: None,
            encryption_key: None,
            authentication_key: None,
            invocation_counter: None,
            dedicated_key: None,
            general_ciphering: false,
            frame_counter: None,
            timeout_ms: 5000,
            inter_frame_timeout_ms: None,
            retries: 2,
            data_bits: serialport::DataBits::Eight,
            parity: serialport::Parity::None,
            stop_bits: serialport::StopBits::One,
            max_info: 128,
        }
    }
}

pub fn parse_num<T: std::str::FromStr>(flag: &str, v: std::ffi::OsString) -> Result<T, UsageError> {
    let s = v.string()?;
    s.parse()
        .map_err(|_| usage(format!("{flag}: invalid value {s:?}")))
}

impl MeterOptions {
    /// Names of the shared long options.
    pub fn is_shared(name: &str) -> bool {
        matches!(
            name,
            "host"
                | "port"
                | "serial"
                | "baud"
                | "mode-e"
                | "transport"
                | "client-address"
                | "server-logical"
                | "server-physical"
                | "auth"
                | "password"
                | "timeout-ms"
                | "retries"
                | "max-info"
                | "inter-frame-timeout-ms"
                | "data-bits"
                | "parity"
                | "stop-bits"
                | "security"
                | "system-title"
                | "encryption-key"
                | "authentication-key"
                | "invocation-counter"
                | "dedicated-key"
                | "general-ciphering"
                | "frame-counter"
        )
    }

    /// Consumes the shared option `--name` (and its value).
    pub fn take(&mut self, name: &str, parser: &mut lexopt::Parser) -> Result<(), UsageError> {
        match name {
            "host" => self.host = Some(parser.value()?.string()?),
            "port" => self.port = Some(parse_num("--port", parser.value()?)?),
            "serial" => self.serial = Some(parser.value()?.string()?),
            "baud" => self.baud = parse_num("--baud", parser.value()?)?,
            "mode-e" => self.mode_e = true,
            "transport" => {
                self.transport = Some(match parser.value()?.string()?.as_str() {
                    "hdlc" => TransportKind::Hdlc,
                    "wrapper" => TransportKind::Wrapper,
                    other => {
                        return Err(usage(format!(
                            "--transport: {other:?} is not hdlc or wrapper"
                        )))
                    }
                })
            }
            "client-address" => {
                self.client_address = parse_num("--client-address", parser.value()?)?
            }
            "server-logical" => {
                self.server_logical = parse_num("--server-logical", parser.value()?)?
            }
            "server-physical" => {
                let v = parser.value()?.string()?;
                self.server_physical =
                    if v == "none" {
                        None
                    } else {
                        Some(v.parse().map_err(|_| {
                            usage(format!("--server-physical: invalid value {v:?}"))
                        })?)
                    };
            }
            "auth" => {
                let v = parser.value()?.string()?;
                (self.auth_low, self.auth_high_gmac) = match v.as_str() {
                    "none" => (false, false),
                    "low" => (true, false),
                    "high-gmac" => (false, true),
                    other => {
                        return Err(usage(format!(
                            "--auth: {other:?} is not none, low or high-gmac"
                        )))
                    }
                }
            }
            "security" => {
                let v = parser.value()?.string()?;
                self.protection = dlms_bridge::dlms::security::Protection::from_policy(&v)
                    .ok_or_else(|| {
                        usage(format!(
                            "--security: {v:?} is not none, auth, enc or auth-enc"
                        ))
                    })?
            }
            "system-title" => {
                self.system_title = Some(hex_array("--system-title", &parser.value()?.string()?)?)
            }
            "encryption-key" => {
                self.encryption_key =
                    Some(hex_array("--encryption-key", &parser.value()?.string()?)?)
            }
            "authentication-key" => {
                self.authentication_key = Some(hex_array(
                    "--authentication-key",
                    &parser.value()?.string()?,
                )?)
            }
            "invocation-counter" => {
                self.invocation_counter = Some(parse_num("--invocation-counter", parser.value()?)?)
            }
            "dedicated-key" => {
                let v = parser.value()?.string()?;
                self.dedicated_key = Some(if v == "random" {
                    dlms_bridge::client::entropy::random_bytes("the dedicated key")
                        .map_err(|e| usage(e.to_string()))?
                } else {
                    hex_array("--dedicated-key", &v)?
                })
            }
            "general-ciphering" => self.general_ciphering = true,
            "frame-counter" => {
                let v = parser.value()?.string()?;
                self.frame_counter = Some(
                    v.parse()
                        .map_err(|e| usage(format!("--frame-counter: {e}")))?,
                )
            }
            "password" => self.password = Some(parser.value()?.string()?),
            "timeout-ms" => self.timeout_ms = parse_num("--timeout-ms", parser.value()?)?,
            "retries" => self.retries = parse_num("--retries", parser.value()?)?,
            "max-info" => self.max_info = parse_num("--max-info", parser.value()?)?,
            "inter-frame-timeout-ms" => {
                self.inter_frame_timeout_ms =
                    Some(parse_num("--inter-frame-timeout-ms", parser.value()?)?)
            }
            "data-bits" => {
                self.data_bits = match parser.value()?.string()?.as_str() {
                    "7" => serialport::DataBits::Seven,
                    "8" => serialport::DataBits::Eight,
                    other => return Err(usage(format!("--data-bits: {other:?} is not 7 or 8"))),
                }
            }
            "parity" => {
                self.parity = match parser.value()?.string()?.as_str() {
                    "none" => serialport::Parity::None,
                    "even" => serialport::Parity::Even,
                    "odd" => serialport::Parity::Odd,
                    other => {
                        return Err(usage(format!(
                            "--parity: {other:?} is not none, even or odd"
                        )))
                    }
                }
            }
            "stop-bits" => {
                self.stop_bits = match parser.value()?.string()?.as_str() {
                    "1" => serialport::StopBits::One,
                    "2" => serialport::StopBits::Two,
                    other => return Err(usage(format!("--stop-bits: {other:?} is not 1 or 2"))),
                }
            }
            other => return Err(usage(format!("--{other} is not a meter option"))),
        }
        Ok(())
    }

    pub fn authentication(&self) -> Result<Authentication, UsageError> {
        if self.auth_high_gmac {
            return Ok(Authentication::HighGmac {
                challenge: random_challenge()?,
            });
        }
        match (self.auth_low, &self.password) {
            (false, None) => Ok(Authentication::None),
            (false, Some(_)) => Err(usage("--password given without --auth low")),
            (true, Some(p)) => Ok(Authentication::Low(p.clone().into_bytes())),
            (true, None) => Err(usage("--auth low needs --password")),
        }
    }

    /// Suite-0 security from --security/--auth high-gmac and the keys.
    pub fn security(&self) -> Result<Option<dlms_bridge::dlms::session::Security>, UsageError> {
        use dlms_bridge::dlms::security::{Keys, Protection};
        if self.protection.is_none() && !self.auth_high_gmac {
            if self.dedicated_key.is_some()
                || self.general_ciphering
                || self.frame_counter.is_some()
            {
                return Err(usage(
                    "--dedicated-key, --general-ciphering and --frame-counter need --security",
                ));
            }
            return Ok(None);
        }
        let (Some(title), Some(ek), Some(ak)) = (
            self.system_title,
            self.encryption_key,
            self.authentication_key,
        ) else {
            return Err(usage("--security and --auth high-gmac need --system-title, --encryption-key and --authentication-key"));
        };
        // Without a stored counter, the time in seconds is a counter that never goes back
        // between runs (at most one run per second; the bridge persists its counters).
        let ic = self.invocation_counter.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() as u32)
        });
        let mut security = dlms_bridge::dlms::session::Security::new(
            Keys {
                block_cipher: ek,
                authentication: ak,
            },
            title,
            self.protection
                .unwrap_or(Protection::AuthenticatedEncrypted),
            ic,
        );
        security.dedicated_key = self.dedicated_key;
        security.general_ciphering = self.general_ciphering;
        Ok(Some(security))
    }

    pub fn framing(&self, kind: TransportKind) -> Result<Framing, UsageError> {
        if self.client_address > 0x7F {
            return Err(usage("--client-address must be 0..127"));
        }
        Ok(match kind {
            TransportKind::Hdlc => {
                let server = ServerAddress::new(self.server_logical, self.server_physical);
                if server.encode().is_none() {
                    return Err(usage(
                        "--server-logical/--server-physical must be below 16384",
                    ));
                }
                Framing::Hdlc {
                    client: self.client_address,
                    server,
                }
            }
            TransportKind::Wrapper => Framing::Wrapper {
                client: u16::from(self.client_address),
                server: self.server_logical,
            },
        })
    }

    pub fn connection_options(&self) -> Result<ConnectionOptions, UsageError> {
        if self.timeout_ms == 0 {
            return Err(usage("--timeout-ms must be positive"));
        }
        if !(32..=2030).contains(&self.max_info) {
            return Err(usage("--max-info must be 32..2030"));
        }
        let inter_frame = self.inter_frame_timeout_ms.unwrap_or(self.timeout_ms);
        if inter_frame == 0 {
            return Err(usage("--inter-frame-timeout-ms must be positive"));
        }
        Ok(ConnectionOptions {
            response_timeout: Duration::from_millis(self.timeout_ms),
            inter_frame_timeout: Duration::from_millis(inter_frame),
            max_info: self.max_info,
            always_send_snrm_params: false,
        })
    }

    /// The complete target for `read`.
    pub fn target(&self) -> Result<MeterTarget, UsageError> {
        let endpoint = match (&self.host, &self.serial) {
            (Some(host), None) => {
                let port = self.port.ok_or_else(|| usage("--host needs --port"))?;
                if self.mode_e {
                    return Err(usage("--mode-e applies to --serial only"));
                }
                Endpoint::Tcp {
                    host: host.clone(),
                    port,
                }
            }
            (None, Some(path)) => Endpoint::Serial {
                settings: SerialSettings {
                    data_bits: self.data_bits,
                    parity: self.parity,
                    stop_bits: self.stop_bits,
                    ..SerialSettings::hdlc(path, self.baud)
                },
                mode_e: self.mode_e,
            },
            (Some(_), Some(_)) => return Err(usage("give either --host or --serial, not both")),
            (None, None) => return Err(usage("give --host HOST --port PORT, or --serial DEVICE")),
        };
        let kind = self.transport.unwrap_or(TransportKind::Hdlc);
        if matches!(endpoint, Endpoint::Serial { .. }) && kind == TransportKind::Wrapper {
            return Err(usage("the wrapper is for TCP; serial lines use HDLC"));
        }
        Ok(MeterTarget {
            endpoint,
            framing: self.framing(kind)?,
            session: SessionConfig {
                authentication: self.authentication()?,
                security: self.security()?,
                ..SessionConfig::default()
            },
            options: self.connection_options()?,
            connect_timeout: Duration::from_millis(self.timeout_ms),
        })
    }
}

/// Bytes from hex digits (whitespace ignored); `None` if anything else is there.
pub use dlms_bridge::hex::parse as parse_hex;

/// `N` bytes from hex (spaces allowed), or a usage error naming the flag.
pub fn hex_array<const N: usize>(flag: &str, s: &str) -> Result<[u8; N], UsageError> {
    dlms_bridge::hex::array(s).ok_or_else(|| {
        usage(format!(
            "{flag}: expected {N} bytes as {} hex digits",
            2 * N
        ))
    })
}

/// 16 random bytes for the HLS challenge.
fn random_challenge() -> Result<Vec<u8>, UsageError> {
    dlms_bridge::client::entropy::random_bytes::<16>("the HLS challenge")
        .map(|b| b.to_vec())
        .map_err(|e| usage(e.to_string()))
}
