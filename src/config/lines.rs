//! Meters that share a serial line (RS-485 multi-drop) share its settings: a line has one
//! speed and one frame format. Checked across all meters whenever one changes.

use super::error::{literal, ConfigError};
use super::meter::MeterConfig;

/// The first disagreement between two meters on one serial device, as one sentence.
pub fn check_lines(meters: &[MeterConfig]) -> Result<(), ConfigError> {
    for (i, a) in meters.iter().enumerate() {
        let Some(line) = &a.serial_device else {
            continue;
        };
        for b in &meters[i + 1..] {
            if b.serial_device.as_ref() != Some(line) {
                continue;
            }
            let differs = [
                ("baud", a.get("baud"), b.get("baud")),
                ("data_bits", a.get("data_bits"), b.get("data_bits")),
                ("parity", a.get("parity"), b.get("parity")),
                ("stop_bits", a.get("stop_bits"), b.get("stop_bits")),
                ("mode_e", a.get("mode_e"), b.get("mode_e")),
            ]
            .into_iter()
            .find(|(_, x, y)| x != y);
            if let Some((field, x, y)) = differs {
                let (x, y) = (x.unwrap_or_default(), y.unwrap_or_default());
                return Err(ConfigError::new(literal(&format!(
                    "meters {:?} and {:?} share the serial line {line} but disagree on {field} \
                     ({x} and {y}): a line has one setting for it",
                    a.name, b.name
                ))));
            }
            if a.mode_e {
                return Err(ConfigError::new(literal(&format!(
                    "meters {:?} and {:?} share the serial line {line}, but mode E signs on to \
                     one meter per line",
                    a.name, b.name
                ))));
            }
            // The readout's sign-on goes to whatever meter is on the line (no device address).
            let readout = super::values::Protocol::ModeC;
            if a.protocol == readout || b.protocol == readout {
                return Err(ConfigError::new(literal(&format!(
                    "meters {:?} and {:?} share the serial line {line}, but an IEC 62056-21 \
                     readout (protocol mode-c) needs a line of its own",
                    a.name, b.name
                ))));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serial(name: &str, baud: u32) -> MeterConfig {
        MeterConfig {
            name: name.into(),
            host: None,
            port: None,
            serial_device: Some("/dev/ttyUSB0".into()),
            baud,
            ..MeterConfig::default()
        }
    }

    #[test]
    fn meters_on_one_line_share_its_settings() {
        let ok = [serial("A", 9600), serial("B", 9600)];
        assert_eq!(check_lines(&ok), Ok(()));
        let bad = [serial("A", 9600), serial("B", 19200)];
        let e = check_lines(&bad).unwrap_err().to_string();
        assert!(
            e.contains(r#""A" and "B""#) && e.contains("baud (9600 and 19200)"),
            "{e}"
        );
        let mut other_line = serial("C", 19200);
        other_line.serial_device = Some("/dev/ttyUSB1".into());
        assert_eq!(check_lines(&[serial("A", 9600), other_line]), Ok(()));
        let mut readout = serial("R", 9600);
        readout.protocol = crate::config::values::Protocol::ModeC;
        let e = check_lines(&[serial("A", 9600), readout])
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs a line of its own"), "{e}");
    }
}
