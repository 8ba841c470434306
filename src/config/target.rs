//! From a validated meter to what the client needs to reach it: the one place where the
//! configuration's values become protocol settings.

use super::meter::MeterConfig;
use super::values::{AuthKind, Ciphering, Parity, Transport};
use crate::client::{ConnectionOptions, Endpoint, Framing, MeterTarget, SerialSettings};
use crate::dlms::hdlc::ServerAddress;
use crate::dlms::hls::HlsHash;
use crate::dlms::security::{Keys, Protection};
use crate::dlms::session::{Authentication, Security, SessionConfig};
use std::time::Duration;

impl MeterConfig {
    /// What a poll of this meter reads: its measurements, in their order.
    pub fn measurement_targets(&self) -> Vec<crate::client::reads::Target> {
        self.measurements
            .iter()
            .map(|m| crate::client::reads::Target::new(m.class_id, m.obis, m.attribute))
            .collect()
    }

    /// How to reach and read this meter, with an empty HLS challenge, no dedicated key and
    /// the invocation counter at 0: [`fresh_association`] sets those for each association.
    /// `None` only for a meter that fails [`MeterConfig::usable`].
    pub fn target(&self) -> Option<MeterTarget> {
        // Not `validate`: a meter stored with a password and auth none (accepted by older
        // versions) is still polled; only new input is refused.
        self.usable().ok()?;
        let endpoint = match (&self.host, self.port, &self.serial_device) {
            (Some(host), Some(port), _) => Endpoint::Tcp {
                host: host.clone(),
                port,
            },
            (_, _, Some(dev)) => Endpoint::Serial {
                settings: SerialSettings {
                    data_bits: if self.data_bits == 7 {
                        serialport::DataBits::Seven
                    } else {
                        serialport::DataBits::Eight
                    },
                    parity: match self.parity {
                        Parity::None => serialport::Parity::None,
                        Parity::Even => serialport::Parity::Even,
                        Parity::Odd => serialport::Parity::Odd,
                    },
                    stop_bits: if self.stop_bits == 2 {
                        serialport::StopBits::Two
                    } else {
                        serialport::StopBits::One
                    },
                    ..SerialSettings::hdlc(dev, self.baud)
                },
                mode_e: self.mode_e,
            },
            _ => return None,
        };
        let framing = match self.transport {
            Transport::Wrapper => Framing::Wrapper {
                client: u16::from(self.client_address),
                server: self.server_logical,
            },
            Transport::Hdlc => Framing::Hdlc {
                client: self.client_address,
                server: ServerAddress::new(self.server_logical, self.server_physical),
            },
        };
        let authentication = match (self.auth, &self.password) {
            (AuthKind::Low, Some(p)) => Authentication::Low(p.0.clone().into_bytes()),
            (AuthKind::HighGmac, _) => Authentication::HighGmac {
                challenge: Vec::new(),
            },
            (AuthKind::HighMd5 | AuthKind::HighSha1 | AuthKind::HighSha256, Some(p)) => {
                Authentication::HighHash {
                    mechanism: match self.auth {
                        AuthKind::HighMd5 => HlsHash::Md5,
                        AuthKind::HighSha1 => HlsHash::Sha1,
                        _ => HlsHash::Sha256,
                    },
                    secret: p.0.clone().into_bytes(),
                    challenge: Vec::new(),
                    client_title: self.system_title,
                }
            }
            _ => Authentication::None,
        };
        // `referencing auto` remembers per meter: its endpoint names it.
        let meter_key = endpoint.to_string();
        Some(MeterTarget {
            endpoint,
            framing,
            session: SessionConfig {
                authentication,
                security: self.security_settings(),
                gbt: self.gbt,
                referencing: self.referencing,
                ..SessionConfig::default()
            },
            options: ConnectionOptions {
                response_timeout: Duration::from_millis(u64::from(self.response_timeout_ms)),
                inter_frame_timeout: Duration::from_millis(u64::from(self.inter_frame_timeout_ms)),
                max_info: self.max_info,
                window: self.hdlc_window,
                reconnect_gap: Duration::from_secs(u64::from(self.reconnect_gap_s)),
                single_connection: self.single_connection,
                meter_key,
                ..ConnectionOptions::default()
            },
            connect_timeout: Duration::from_millis(u64::from(self.connect_timeout_ms)),
            trace: crate::client::Tracer::off(),
        })
    }

    fn security_settings(&self) -> Option<Security> {
        let protection = match self.security {
            Ciphering::None => return None,
            Ciphering::Auth => Protection::Authenticated,
            Ciphering::Enc => Protection::Encrypted,
            Ciphering::AuthEnc => Protection::AuthenticatedEncrypted,
        };
        let keys = Keys {
            block_cipher: self.encryption_key.as_ref()?.0,
            authentication: self.authentication_key.as_ref()?.0,
        };
        let mut sec = Security::new(keys, self.system_title?, protection, 0);
        sec.general_ciphering = self.general_ciphering;
        Some(sec)
    }
}

/// The target of one association: a fresh HLS challenge (Green Book 9.2.7.4: a new random
/// challenge each time) and, where configured, a fresh dedicated key.
pub fn fresh_association(base: &MeterTarget, dedicated_key: bool) -> std::io::Result<MeterTarget> {
    let mut target = base.clone();
    let random = crate::client::entropy::random_bytes::<16>;
    if let Authentication::HighGmac { challenge } | Authentication::HighHash { challenge, .. } =
        &mut target.session.authentication
    {
        *challenge = random("the HLS challenge")?.to_vec();
    }
    if let (true, Some(sec)) = (dedicated_key, target.session.security.as_mut()) {
        sec.dedicated_key = Some(random("the dedicated key")?);
    }
    Ok(target)
}
