//! What goes with `protocol mode-c` (an IEC 62056-21 data readout): the combinations it
//! refuses, and the client options it reads with.

use super::error::ConfigError;
use super::meter::MeterConfig;
use super::values::{AuthKind, Ciphering, Push, Transport};
use crate::client::mode_c::ReadoutOptions;
use std::time::Duration;

impl MeterConfig {
    /// A readout meter has none of DLMS's association: no authentication, no ciphering, no
    /// profiles, no clock to set, no HDLC opening (mode E) and no wrapper. Each is refused
    /// with a word on why, rather than ignored (a password given would be silently unused).
    pub(super) fn mode_c_combination(&self) -> Result<(), ConfigError> {
        let err = ConfigError::new;
        if self.push != Push::None {
            return Err(err(
                "{protocol} mode-c meters are polled (one readout per interval): not with {push}",
            ));
        }
        if self.auth != AuthKind::None
            || self.password.is_some()
            || self.security != Ciphering::None
            || self.system_title.is_some()
            || self.encryption_key.is_some()
            || self.authentication_key.is_some()
            || self.dedicated_key
            || self.general_ciphering
            || self.frame_counter.is_some()
        {
            return Err(err(
                "{protocol} mode-c (an IEC 62056-21 readout) has no DLMS authentication or \
                 security: give {auth} none and {security} none, without {password}, \
                 {system_title} or keys",
            ));
        }
        if self.mode_e {
            return Err(err(
                "{protocol} mode-c signs on by itself: {mode_e} is the DLMS (HDLC) opening; \
                 give {mode_e} false",
            ));
        }
        if self.transport == Transport::Wrapper {
            return Err(err(
                "{transport} wrapper is DLMS framing: a {protocol} mode-c meter over TCP uses \
                 {transport} hdlc (the default)",
            ));
        }
        if !self.profiles.is_empty() || self.clock_sync_threshold_s.is_some() {
            return Err(err(
                "{protocol} mode-c reads the readout only: profiles and \
                 {clock_sync_threshold_s} need {protocol} dlms",
            ));
        }
        Ok(())
    }

    /// How to take this meter's readout: the meter's time-outs; on a serial line at most
    /// `baud` after the 300 baud sign-on.
    pub fn readout_options(&self) -> ReadoutOptions {
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        ReadoutOptions {
            response_timeout: ms(self.response_timeout_ms),
            inter_byte_timeout: ms(self.inter_frame_timeout_ms),
            connect_timeout: ms(self.connect_timeout_ms),
            max_baud: self.baud,
            device_address: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::values::{Protocol, Secret};
    use super::*;
    use crate::config::Naming;

    fn mode_c() -> MeterConfig {
        MeterConfig {
            protocol: Protocol::ModeC,
            ..MeterConfig::tcp("M", "127.0.0.1", 1)
        }
    }

    #[test]
    fn serial_and_tcp_readout_meters_are_valid() {
        assert_eq!(mode_c().validate(), Ok(()));
        let serial = MeterConfig {
            host: None,
            port: None,
            serial_device: Some("/dev/ttyUSB0".into()),
            ..mode_c()
        };
        assert_eq!(serial.validate(), Ok(()));
        assert_eq!(serial.readout_options().max_baud, 9600);
    }

    #[test]
    fn dlms_only_settings_are_refused_with_a_reason() {
        type Mutation = fn(&mut MeterConfig);
        let cases: &[(Mutation, &str)] = &[
            (
                |m| {
                    m.auth = AuthKind::Low;
                    m.password = Some(Secret("pw".into()));
                },
                "no DLMS authentication or security",
            ),
            (
                |m| m.security = Ciphering::AuthEnc,
                "no DLMS authentication or security",
            ),
            (
                |m| m.encryption_key = Some(Secret([0; 16])),
                "no DLMS authentication or security",
            ),
            (|m| m.transport = Transport::Wrapper, "wrapper is DLMS"),
            (
                |m| m.clock_sync_threshold_s = Some(5),
                "need --protocol dlms",
            ),
            (|m| m.push = Push::Serial, "are polled"),
            (
                |m| {
                    m.host = None;
                    m.port = None;
                    m.serial_device = Some("/dev/ttyUSB0".into());
                    m.mode_e = true;
                },
                "give --mode-e false",
            ),
        ];
        for (mutate, needle) in cases {
            let mut m = mode_c();
            mutate(&mut m);
            let e = m.validate().unwrap_err().render(Naming::Flags);
            assert!(e.contains(needle), "{e} should mention {needle}");
            assert!(
                e.starts_with("meter \"M\": ") && e.contains("--protocol mode-c"),
                "{e}"
            );
        }
    }
}
