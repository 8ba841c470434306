//! IEC 62056-21 data readout (modes A, B and C) over a serial line or a TCP serial server: the
//! I/O around the sans-I/O [`crate::iec21`] messages.
//!
//! Serial (IEC 62056-21 6.4, protocol modes A, B, C): the request at 300 baud 7E1; the identification; then mode A
//! reads the readout at 300 baud, mode B switches to its rate at once, mode C (and a mode E
//! meter asked for a readout) is acknowledged with `ACK 0 Z 0` and both switch to Z. Over TCP
//! the serial server's line rate is fixed: the acknowledgement asks for 300 baud ('0'), that is
//! no switch, and nothing is reconfigured.

use super::error::{ClientError, Heard};
use super::target::Endpoint;
use super::transport::{SerialSettings, SerialTransport, TcpTransport, Transport};
use crate::iec21::sign_on::{self, Identification, ProtocolMode};
use crate::iec21::{DataSet, Iec21Error, ReadoutReader};
use std::time::{Duration, Instant};

/// How long to wait, and how fast to go.
#[derive(Debug, Clone)]
pub struct ReadoutOptions {
    /// For the identification and for the readout's first byte.
    pub response_timeout: Duration,
    /// Between two pieces of the readout once it has begun.
    pub inter_byte_timeout: Duration,
    pub connect_timeout: Duration,
    /// The fastest rate to switch to (the meter's proposal if lower).
    pub max_baud: u32,
    /// The device address of the request (empty: any meter on the port).
    pub device_address: String,
}

/// A readout: who the meter said it is, and its data sets.
#[derive(Debug, Clone)]
pub struct Readout {
    pub identification: Identification,
    pub data_sets: Vec<DataSet>,
    pub bytes_received: u64,
}

/// No readout takes longer, even at 300 baud (about 9 KB).
const MAX_READOUT_TIME: Duration = Duration::from_secs(300);

/// The acknowledgement takes 200 ms on the line at 300 baud (6 characters of 10 bits); the
/// meter answers at the new rate no sooner than 200 ms after it (IEC 62056-21 reaction
/// time tr: 200 ms to 1500 ms). Switching 300 ms after the acknowledgement began is between both.
const SWITCH_AFTER_ACK: Duration = Duration::from_millis(300);

/// One readout from the meter at `endpoint`.
pub fn read(endpoint: &Endpoint, options: &ReadoutOptions) -> Result<Readout, ClientError> {
    match endpoint {
        Endpoint::Tcp { host, port } => {
            let mut t = TcpTransport::connect(host, *port, options.connect_timeout)?;
            exchange(&mut t, options)
        }
        Endpoint::Serial { settings, .. } => {
            let sign_on = SerialSettings {
                baud: 300,
                data_bits: serialport::DataBits::Seven,
                parity: serialport::Parity::Even,
                ..settings.clone()
            };
            let mut port = SerialTransport::open(&sign_on)?;
            exchange(&mut port, options)
        }
        Endpoint::Bus(bus) => Err(ClientError::Io(std::io::Error::other(format!(
            "{}: IEC 62056-21 readouts need a line of their own, not a shared one",
            bus.path
        )))),
    }
}

/// What a transport does when the meter and we change rate: a serial port reconfigures, a
/// TCP connection cannot (the serial server's rate is fixed).
trait LineRate: Transport {
    /// Whether the rate can follow the meter.
    const SWITCHES: bool;
    fn switch_to(&mut self, baud: u32) -> Result<(), ClientError>;
}

impl LineRate for SerialTransport {
    const SWITCHES: bool = true;
    fn switch_to(&mut self, baud: u32) -> Result<(), ClientError> {
        // The readout keeps 7E1 (IEC 62056-21 6.4: only mode E's HDLC changes the character format).
        self.reconfigure(baud, serialport::DataBits::Seven, serialport::Parity::Even)?;
        Ok(())
    }
}

impl LineRate for TcpTransport {
    const SWITCHES: bool = false;
    fn switch_to(&mut self, _baud: u32) -> Result<(), ClientError> {
        Ok(())
    }
}

fn exchange<T: LineRate>(t: &mut T, options: &ReadoutOptions) -> Result<Readout, ClientError> {
    t.send(&sign_on::request(&options.device_address))?;
    let (identification, after) = read_identification(t, options.response_timeout)?;
    let mut reader = ReadoutReader::new();
    // Bytes that came with the identification (mode A: the readout follows at once).
    let early = reader.push(&after);
    let mut received = after.len() as u64;
    if early.is_none() {
        match identification.mode {
            ProtocolMode::A => {}
            ProtocolMode::B { baud } => t.switch_to(baud)?,
            ProtocolMode::C { .. } | ProtocolMode::E { .. } => {
                let z = if T::SWITCHES {
                    sign_on::choose_baud_char(&identification, options.max_baud)
                } else {
                    b'0'
                };
                let began = Instant::now();
                t.send(&sign_on::readout_acknowledgement(z))?;
                if T::SWITCHES {
                    std::thread::sleep(SWITCH_AFTER_ACK.saturating_sub(began.elapsed()));
                    t.switch_to(sign_on::mode_c_baud(z).unwrap_or(300))?;
                }
            }
        }
    }
    let data_sets = match early {
        Some(result) => result,
        None => read_data_message(t, &mut reader, options, &mut received)?,
    }
    .map_err(ClientError::Iec21)?;
    Ok(Readout {
        identification,
        data_sets,
        bytes_received: received,
    })
}

/// Reads up to the identification's CR LF; returns it parsed and whatever followed it.
fn read_identification<T: Transport>(
    t: &mut T,
    timeout: Duration,
) -> Result<(Identification, Vec<u8>), ClientError> {
    let deadline = Instant::now() + timeout;
    let mut line: Vec<u8> = Vec::new();
    loop {
        super::iec21_wait::receive_7bit(
            t,
            &mut line,
            deadline,
            timeout,
            "the IEC 62056-21 request",
        )?;
        while let Some(end) = line.windows(2).position(|w| w == b"\r\n") {
            let rest = line.split_off(end + 2);
            let this = std::mem::replace(&mut line, rest);
            // A half-duplex line (RS-485, some optical heads) echoes our own request.
            if this.starts_with(b"/?") {
                continue;
            }
            // Anything before the '/' is noise from the line turning around.
            let from = this.iter().position(|b| *b == b'/').unwrap_or(0);
            let id = sign_on::parse_identification(this.get(from..).unwrap_or_default())
                .map_err(ClientError::Iec21)?;
            return Ok((id, line));
        }
        if line.len() > 200 {
            return Err(ClientError::Iec21(Iec21Error::NotIdentification(
                String::from_utf8_lossy(&line).into_owned(),
            )));
        }
    }
}

fn read_data_message<T: Transport>(
    t: &mut T,
    reader: &mut ReadoutReader,
    options: &ReadoutOptions,
    received: &mut u64,
) -> Result<Result<Vec<DataSet>, Iec21Error>, ClientError> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let mut last_byte: Option<Instant> = None;
    loop {
        let wait = match last_byte {
            None => options.response_timeout,
            Some(_) => options.inter_byte_timeout,
        };
        let n = t.recv(&mut buf, wait)?;
        if n == 0 || started.elapsed() > MAX_READOUT_TIME {
            return Err(ClientError::NoAnswer {
                waiting_for: "the IEC 62056-21 data readout",
                after: started.elapsed(),
                heard: match reader.received() {
                    0 => Heard::Nothing,
                    got => Heard::Incomplete(got as u64),
                },
            });
        }
        *received += n as u64;
        last_byte = Some(Instant::now());
        if let Some(result) = reader.push(buf.get(..n).unwrap_or_default()) {
            return Ok(result);
        }
    }
}

/// A data set's reading as JSON, as DLMS values are published ([`super::json::value`]):
/// whole numbers as integers, other decimals as the nearest f64 of the exact decimal, text as
/// text; a number in a prefixed unit (kWh, kvarh, kW) in the base unit DLMS meters publish
/// (Wh, varh, W: `iec21::units`), other units as the meter wrote them.
pub fn reading_json(reading: &crate::iec21::Reading) -> JsonReading {
    use crate::iec21::data_set::ReadingValue;
    let unit = reading.unit.clone().filter(|u| !u.is_empty());
    let (value, unit) = match (&reading.value, unit) {
        (ReadingValue::Number(n), Some(u)) => match crate::iec21::units::to_base(*n, &u) {
            Some((base, symbol)) => (number_json(base), Some(symbol.to_string())),
            None => (number_json(*n), Some(u)),
        },
        (ReadingValue::Number(n), None) => (number_json(*n), None),
        (ReadingValue::Text(t), unit) => (serde_json::json!(t), unit),
    };
    (value, unit)
}

/// Whole numbers as integers, other decimals as the nearest f64 of the exact decimal.
fn number_json(n: crate::cosem::ScaledValue) -> serde_json::Value {
    match (n.exponent >= 0, n.to_string().parse::<i64>()) {
        (true, Ok(i)) => serde_json::json!(i),
        _ => serde_json::Number::from_f64(n.to_f64())
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
    }
}

/// A reading as published: the JSON value and the unit.
pub type JsonReading = (serde_json::Value, Option<String>);

/// The readings of `wanted` (key, OBIS) in a readout, `None` for a code it lacks.
pub fn pick<'a>(
    data_sets: &[DataSet],
    wanted: impl IntoIterator<Item = (&'a str, crate::cosem::Obis)>,
) -> Vec<(&'a str, Option<JsonReading>)> {
    wanted
        .into_iter()
        .map(|(key, obis)| {
            let found = crate::iec21::data_set::find(data_sets, obis)
                .and_then(|set| set.reading())
                .map(|r| reading_json(&r));
            (key, found)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosem::Obis;
    use serde_json::json;

    #[test]
    fn readings_are_picked_by_obis_with_their_units() {
        let sets = crate::iec21::data_set::parse_data_block(
            b"0.0.0(12345678)\r\n1.8.0(0012345.678*kWh)\r\n32.7.0(230.1*V)\r\n1.8.1(42*kWh)\r\n",
        )
        .unwrap();
        let got = pick(
            &sets,
            [
                ("e", Obis::new(1, 0, 1, 8, 0, 255)),
                ("v", Obis::new(1, 0, 32, 7, 0, 255)),
                ("t1", Obis::new(1, 0, 1, 8, 1, 255)),
                ("id", Obis::new(1, 0, 0, 0, 0, 255)),
                ("f", Obis::new(1, 0, 14, 7, 0, 255)),
            ],
        );
        // In Wh, as a DLMS meter publishes the same register (exactly: 12345.678 kWh).
        assert_eq!(got[0].1, Some((json!(12345678), Some("Wh".into()))));
        assert_eq!(got[1].1, Some((json!(230.1), Some("V".into()))));
        assert_eq!(got[2].1, Some((json!(42000), Some("Wh".into()))));
        assert_eq!(got[3].1, Some((json!(12345678), None)));
        assert_eq!(got[4], ("f", None));
    }
}
