//! A simulated IEC 62056-21 readout meter (modes A, B and C): the model's registers as a data
//! readout. [`ReadoutMeter`] is the meter's side of the exchange, sans-I/O (bytes in, what to
//! send and when to switch out); [`serve`] runs it on a byte stream (TCP, or a
//! pseudo-terminal, where baud rates have no effect but the sequence is the real one), and
//! [`serve_switching`] on a serial line that changes rate with it.

use super::model::{MeterModel, ENERGY_EXPORT, ENERGY_IMPORT};
use super::net::SimStream;
use crate::cosem::{Obis, Unit};
use crate::iec21::message::data_message;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which protocol mode the simulated meter offers (IEC 62056-21 6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadoutMode {
    /// The readout follows the identification at 300 baud.
    A,
    /// Both switch to 9600 baud ('E') after the identification; no acknowledgement.
    B,
    /// 9600 baud ('5') after the acknowledgement `ACK 0 Z 0`.
    C,
}

impl std::str::FromStr for ReadoutMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "a" | "A" => Ok(ReadoutMode::A),
            "b" | "B" => Ok(ReadoutMode::B),
            "c" | "C" => Ok(ReadoutMode::C),
            other => Err(format!("{other:?} is not an IEC 62056-21 mode: a, b or c")),
        }
    }
}

impl ReadoutMode {
    /// The identification message (IEC 62056-21 6.3.2): manufacturer "SIM", Z by mode.
    pub fn identification(self) -> &'static [u8] {
        match self {
            ReadoutMode::A => b"/SIM:DLMS-BRIDGE\r\n",
            ReadoutMode::B => b"/SIMEDLMS-BRIDGE\r\n",
            ReadoutMode::C => b"/SIM5DLMS-BRIDGE\r\n",
        }
    }
}

/// `mantissa` x 10^`exponent` with exactly -`exponent` decimals, as meters print registers
/// (`049.90`, not `49.9`).
fn fixed(mantissa: i64, exponent: i8) -> String {
    if exponent >= 0 {
        return (mantissa * 10i64.pow(u32::from(exponent.unsigned_abs()))).to_string();
    }
    let decimals = usize::from(exponent.unsigned_abs());
    let sign = if mantissa < 0 { "-" } else { "" };
    let digits = format!("{:0>width$}", mantissa.unsigned_abs(), width = decimals + 1);
    let (int, frac) = digits.split_at(digits.len() - decimals);
    format!("{sign}{int}.{frac}")
}

/// One data line per register of the model at `now`: energy in kWh with three decimals (as
/// readout meters print it: the same value as the DLMS register's Wh), the others with their
/// DLMS scaler and unit; the serial number (C.1.0), the error register (F.F), the meter's
/// time and date (0.9.1, 0.9.2).
pub fn readout_block(model: &MeterModel, now: i64) -> Vec<u8> {
    let mut out = String::new();
    out.push_str(&format!("C.1.0({})\r\n", model.serial_number()));
    out.push_str("F.F(00000000)\r\n");
    // The meter's clock (UTC, moved by the model's offset as its DLMS clock is).
    let clock = now
        + model
            .clock_offset
            .load(std::sync::atomic::Ordering::Relaxed);
    let t = crate::dlms::axdr::DateTime::from_unix(clock, 0);
    out.push_str(&format!(
        "0.9.1({:02}{:02}{:02})\r\n0.9.2({:02}{:02}{:02})\r\n",
        t.time.hour,
        t.time.minute,
        t.time.second,
        t.date.year % 100,
        t.date.month,
        t.date.day
    ));
    for obis in MeterModel::register_codes() {
        let Some(t) = model.truth(obis, now) else {
            continue;
        };
        let [_, _, c, d, e, _] = obis.0;
        let address = format!("{c}.{d}.{e}");
        let line = if obis == ENERGY_IMPORT || obis == ENERGY_EXPORT {
            format!("{address}({}*kWh)", fixed(t.raw, t.scaler - 3))
        } else {
            match Unit(t.unit)
                .symbol()
                .filter(|s| !s.is_empty() && t.unit != 255)
            {
                Some(unit) => format!("{address}({}*{unit})", fixed(t.raw, t.scaler)),
                None => format!("{address}({})", fixed(t.raw, t.scaler)),
            }
        };
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// What the meter does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send(Vec<u8>),
    /// The line changes rate here (no effect on a pty; a serial line would reconfigure).
    Switch(u32),
    /// The meter's reaction time before its next message (IEC 62056-21 tr: 200 ms at least).
    Wait(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for `/?...!` CR LF at 300 baud.
    Request,
    /// Mode C: waiting for the acknowledgement/option select.
    Acknowledgement,
}

/// The meter's side of the exchange.
#[derive(Debug)]
pub struct ReadoutMeter {
    model: MeterModel,
    mode: ReadoutMode,
    stage: Stage,
    line: Vec<u8>,
}

const REACTION: Duration = Duration::from_millis(220);

impl ReadoutMeter {
    pub fn new(model: MeterModel, mode: ReadoutMode) -> Self {
        ReadoutMeter {
            model,
            mode,
            stage: Stage::Request,
            line: Vec::new(),
        }
    }

    /// Takes received bytes (parity bits stripped); returns what to do, in order.
    pub fn receive(&mut self, bytes: &[u8], now: i64) -> Vec<Action> {
        let mut actions = Vec::new();
        self.line.extend(bytes.iter().map(|b| b & 0x7F));
        while let Some(end) = self.line.windows(2).position(|w| w == b"\r\n") {
            let message: Vec<u8> = self.line.drain(..end + 2).collect();
            // A request is taken in any state: a client that gave up starts again.
            if message.starts_with(b"/?") && message.ends_with(b"!\r\n") {
                actions.push(Action::Wait(REACTION));
                actions.push(Action::Send(self.mode.identification().to_vec()));
                match self.mode {
                    ReadoutMode::A => {
                        actions.push(Action::Wait(REACTION));
                        actions.push(self.readout(now));
                    }
                    ReadoutMode::B => {
                        actions.push(Action::Switch(9600));
                        actions.push(Action::Wait(REACTION));
                        actions.push(self.readout(now));
                        actions.push(Action::Switch(300));
                    }
                    ReadoutMode::C => self.stage = Stage::Acknowledgement,
                }
                continue;
            }
            // ACK 0 Z 0: the readout at the rate Z (IEC 62056-21 6.3.3); a programming request
            // (Y '1') or anything else sends the meter back to its initial state.
            if self.stage == Stage::Acknowledgement {
                self.stage = Stage::Request;
                if let [0x06, b'0', z, b'0', b'\r', b'\n'] = message.as_slice() {
                    if let Some(baud) = crate::iec21::sign_on::mode_c_baud(*z) {
                        actions.push(Action::Switch(baud));
                        actions.push(Action::Wait(REACTION));
                        actions.push(self.readout(now));
                        actions.push(Action::Switch(300));
                    }
                }
            }
        }
        // A line that never ends is noise: keep the buffer bounded.
        if self.line.len() > 256 {
            self.line.clear();
        }
        actions
    }

    fn readout(&self, now: i64) -> Action {
        Action::Send(data_message(&readout_block(&self.model, now)))
    }
}

/// Serves one readout meter on `stream` until EOF or `stop` (TCP, or a line whose rate does
/// not matter).
pub fn serve<S: SimStream>(
    stream: S,
    model: &MeterModel,
    mode: ReadoutMode,
    stop: &AtomicBool,
) -> io::Result<()> {
    serve_switching(stream, model, mode, stop, |_| {})
}

/// [`serve`] on a serial line: `switch` changes the line's rate where the meter does.
pub fn serve_switching<S: SimStream>(
    mut stream: S,
    model: &MeterModel,
    mode: ReadoutMode,
    stop: &AtomicBool,
    mut switch: impl FnMut(u32),
) -> io::Result<()> {
    let mut meter = ReadoutMeter::new(model.clone(), mode);
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for action in meter.receive(buf.get(..n).unwrap_or_default(), now) {
            match action {
                Action::Send(bytes) => {
                    stream.write_all(&bytes)?;
                    stream.flush()?;
                }
                Action::Wait(d) => std::thread::sleep(d),
                Action::Switch(baud) => switch(baud),
            }
        }
    }
    Ok(())
}

/// The OBIS codes the simulated readout carries (the model's registers, serial, error, time).
pub fn readout_codes() -> Vec<Obis> {
    let mut v = vec![
        Obis::new(0, 0, 96, 1, 0, 255),
        Obis::new(0, 0, 97, 97, 0, 255),
        Obis::new(1, 0, 0, 9, 1, 255),
        Obis::new(1, 0, 0, 9, 2, 255),
    ];
    v.extend(MeterModel::register_codes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iec21::{parse_data_message, DataSet};

    fn readout_of(actions: &[Action]) -> Vec<DataSet> {
        let Some(Action::Send(m)) = actions.iter().rev().find(|a| matches!(a, Action::Send(_)))
        else {
            panic!("no readout in {actions:?}")
        };
        parse_data_message(m).unwrap()
    }

    #[test]
    fn fixed_decimals() {
        assert_eq!(fixed(4990, -2), "49.90");
        assert_eq!(fixed(5, -3), "0.005");
        assert_eq!(fixed(-5, -1), "-0.5");
        assert_eq!(fixed(1234, 0), "1234");
    }

    #[test]
    fn mode_c_sequence_and_values() {
        let model = MeterModel::new(1, 0);
        let mut meter = ReadoutMeter::new(model.clone(), ReadoutMode::C);
        let a = meter.receive(b"/?!\r\n", 1_800_000_000);
        assert_eq!(
            a.last(),
            Some(&Action::Send(b"/SIM5DLMS-BRIDGE\r\n".to_vec()))
        );
        // Split anywhere, with parity bits: ACK 0 5 0 CR LF.
        assert!(meter.receive(&[0x86, b'0'], 0).is_empty());
        let a = meter.receive(b"50\r\n", 1_800_000_000);
        assert_eq!(a.first(), Some(&Action::Switch(9600)));
        assert_eq!(a.last(), Some(&Action::Switch(300)));
        let sets = readout_of(&a);
        let codes: Vec<Obis> = sets.iter().filter_map(DataSet::obis).collect();
        assert_eq!(codes, readout_codes());
        // Every register equals the DLMS model's truth (energy: Wh as kWh).
        for obis in MeterModel::register_codes() {
            let t = model.truth(obis, 1_800_000_000).unwrap();
            let set = crate::iec21::data_set::find(&sets, obis).unwrap();
            let v = crate::iec21::data_set::decimal(&set.groups[0].value).unwrap();
            let shift = if t.unit == 30 { 3 } else { 0 };
            assert_eq!(v.exponent, t.scaler - shift, "{obis}");
            assert_eq!(v.mantissa, i128::from(t.raw), "{obis}");
        }
        // The meter's clock is in the readout: the time of the readout.
        let t = crate::iec21::clock::meter_time(&sets).unwrap();
        assert_eq!(t.to_unix_local(0), Some(1_800_000_000));
        // A programming request is not served.
        meter.receive(b"/?!\r\n", 0);
        assert!(meter.receive(b"\x06051\r\n", 0).is_empty());
    }

    #[test]
    fn modes_a_and_b_send_without_acknowledgement() {
        let mut a = ReadoutMeter::new(MeterModel::new(1, 0), ReadoutMode::A);
        let acts = a.receive(b"/?12345678!\r\n", 0);
        assert!(!acts.iter().any(|x| matches!(x, Action::Switch(_))));
        assert!(!readout_of(&acts).is_empty());
        let mut b = ReadoutMeter::new(MeterModel::new(1, 0), ReadoutMode::B);
        let acts = b.receive(b"/?!\r\n", 0);
        assert!(acts.contains(&Action::Switch(9600)));
        assert!(!readout_of(&acts).is_empty());
    }
}
