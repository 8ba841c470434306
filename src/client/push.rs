//! What a pushed notification says: (OBIS, value) pairs from a DATA-NOTIFICATION body, sans-I/O.
//!
//! Meters lay their bodies out in three ways (seen in the HAN port descriptions of Aidon,
//! Kamstrup and Kaifa): structures of (OBIS, value, scaler_unit); OBIS and value alternating in
//! one structure; or values only, whose meaning is their position (the meter's documented list).
//! The first two are read by their OBIS codes; the third needs a template naming the OBIS code
//! (and scaler) of each position.

use crate::client::reads::{scale, Value};
use crate::cosem::{Obis, Unit};
use crate::dlms::axdr::Data;
use crate::dlms::xdlms::gbt::{GbtProgress, GbtReassembler, GENERAL_BLOCK_TRANSFER};

/// One position of a values-only list: its OBIS code and scaler, or `None` to skip it
/// (identification strings and the like).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub obis: Option<Obis>,
    pub scaler: i8,
}

impl Slot {
    /// `OBIS[@SCALER]` or `-` (skip).
    pub fn parse(text: &str) -> Result<Slot, String> {
        let text = text.trim();
        if text == "-" {
            return Ok(Slot {
                obis: None,
                scaler: 0,
            });
        }
        let (obis, scaler) = match text.split_once('@') {
            Some((o, s)) => (
                o,
                s.parse::<i8>()
                    .map_err(|_| format!("{text:?}: the scaler after @ is not -128..127"))?,
            ),
            None => (text, 0),
        };
        let obis: Obis = obis.parse().map_err(|e| format!("{e}"))?;
        Ok(Slot {
            obis: Some(obis),
            scaler,
        })
    }
}

/// A template as text: slots separated by commas.
pub fn parse_template(text: &str) -> Result<Vec<Slot>, String> {
    text.split(',').map(Slot::parse).collect()
}

fn obis_of(d: &Data) -> Option<Obis> {
    match d {
        Data::OctetString(b) if b.len() == 6 => Obis::from_bytes(b),
        _ => None,
    }
}

fn scaler_unit(d: &Data) -> Option<(i8, Unit)> {
    match d.as_items()? {
        [s, Data::Enum(u)] => Some((i8::try_from(s.as_i128()?).ok()?, Unit(*u))),
        _ => None,
    }
}

/// The values of a notification body: by template when one is given, else by the OBIS codes
/// in the body.
pub fn values(body: &Data, template: &[Slot]) -> Vec<(Obis, Value)> {
    let mut out = Vec::new();
    if template.is_empty() {
        if let Some(listed) = by_push_object_list(body) {
            return listed;
        }
        tagged(std::slice::from_ref(body), &mut out);
    } else {
        let mut leaves = Vec::new();
        leaves_of(body, &mut leaves);
        for (slot, value) in template.iter().zip(leaves) {
            if let Some(obis) = slot.obis {
                out.push((obis, scale(value.clone(), slot.scaler, Unit(255))));
            }
        }
    }
    out
}

/// The layout of Landis+Gyr E450/E570 pushes: a structure whose first element is the push
/// object list itself (Push setup attribute 2, Blue Book 4.4.8: an array of capture object
/// definitions {class, OBIS, attribute, data index}, the first naming that list), then one
/// value per further definition, in order.
fn by_push_object_list(body: &Data) -> Option<Vec<(Obis, Value)>> {
    let Data::Structure(items) = body else {
        return None;
    };
    let Some(Data::Array(definitions)) = items.first() else {
        return None;
    };
    if definitions.len() != items.len() || items.len() < 2 {
        return None;
    }
    definitions
        .iter()
        .zip(items)
        .skip(1)
        .map(|(definition, value)| match definition.as_items()? {
            [_, obis, _, _] => Some((obis_of(obis)?, scale(value.clone(), 0, Unit(255)))),
            _ => None,
        })
        .collect()
}

fn tagged(items: &[Data], out: &mut Vec<(Obis, Value)>) {
    let mut i = 0;
    while i < items.len() {
        let next = items.get(i + 1);
        match (obis_of(&items[i]), next) {
            (Some(obis), Some(value)) if obis_of(value).is_none() && !is_container(value) => {
                let (scaler, unit, used) = match items.get(i + 2).and_then(scaler_unit) {
                    Some((s, u)) => (s, u, 3),
                    None => (0, Unit(255), 2),
                };
                out.push((obis, scale(value.clone(), scaler, unit)));
                i += used;
            }
            _ => {
                if let Some(inner) = items[i].as_items() {
                    tagged(inner, out);
                }
                i += 1;
            }
        }
    }
}

fn is_container(d: &Data) -> bool {
    matches!(d, Data::Structure(_) | Data::Array(_))
}

fn leaves_of<'a>(d: &'a Data, out: &mut Vec<&'a Data>) {
    match d.as_items() {
        Some(items) if is_container(d) => items.iter().for_each(|i| leaves_of(i, out)),
        _ => out.push(d),
    }
}

/// Why a pushed frame was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// Not a DATA-NOTIFICATION, or a malformed one.
    Decode(String),
    /// Ciphered, and it could not be opened with this meter's keys (or another sender's).
    Security(String),
    /// A ciphered notification whose invocation counter is not above the last one taken.
    Replayed { counter: u32, last: u32 },
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Decode(e) => write!(f, "not a usable DATA-NOTIFICATION: {e}"),
            PushError::Security(e) => write!(f, "cannot be deciphered: {e}"),
            PushError::Replayed { counter, last } => write!(
                f,
                "replayed: invocation counter {counter} is not above the last one taken ({last})"
            ),
        }
    }
}

/// A notification taken: its time (Unix s, if it carries one) and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    pub time_s: Option<i64>,
    pub values: Vec<(Obis, Value)>,
}

/// One APDU as it arrived, with the sender's address (wrapper source wPort, or HDLC source
/// address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub source: u16,
    pub apdu: Vec<u8>,
}

/// Frames and notifications bigger than this are refused (a HAN list is a few hundred bytes).
pub const MAX_NOTIFICATION: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Hdlc,
    Wrapper,
    /// Wired M-Bus long frames (EN 13757-2) carrying DLMS segments (the Austrian customer
    /// interface): `68 L L 68 C A CI STSAP DTSAP data CS 16`, CI bit 4 set on the last segment.
    MBus,
}

/// A pushing sender's byte stream, sans-I/O: HDLC frames (UI or I, segmented ones reassembled,
/// the LLC header removed; garbage, truncated frames and bad checksums skipped) or wrapper PDUs
/// (IEC 62056-47), told by the first byte (0x7E: HDLC) unless fixed.
pub struct PushStream {
    framing: Option<Framing>,
    deframer: crate::dlms::hdlc::Deframer,
    partial: Vec<u8>,
    wrapper: crate::dlms::wrapper::WrapperDecoder,
    mbus: Vec<u8>,
    /// A serial line: no wrapper (garbage before the first frame is skipped, not a header).
    serial_line: bool,
    /// General-block-transfer blocks joined into the APDU they carry (a listener: window 0).
    gbt: GbtReassembler,
    gbt_dropped: u64,
}

impl PushStream {
    /// A stream of either framing (a TCP connection).
    pub fn new() -> PushStream {
        PushStream {
            framing: None,
            deframer: crate::dlms::hdlc::Deframer::new(),
            partial: Vec::new(),
            wrapper: crate::dlms::wrapper::WrapperDecoder::new(),
            mbus: Vec::new(),
            serial_line: false,
            gbt: GbtReassembler::new(MAX_NOTIFICATION, 0),
            gbt_dropped: 0,
        }
    }

    /// A serial line: HDLC, or M-Bus long frames (told by the first 0x7E or 0x68).
    pub fn serial() -> PushStream {
        PushStream {
            serial_line: true,
            ..PushStream::new()
        }
    }

    /// M-Bus long frames: complete segments are appended, a final one completes the APDU.
    /// Bytes that do not start a valid frame are skipped one at a time (resynchronisation).
    fn mbus_push(&mut self, bytes: &[u8]) -> Vec<Arrival> {
        self.mbus.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            let Some(start) = self.mbus.iter().position(|b| *b == 0x68) else {
                self.mbus.clear();
                break;
            };
            self.mbus.drain(..start);
            let b = &self.mbus;
            if b.len() < 4 {
                break;
            }
            let len = usize::from(b[1]);
            if b[2] != b[1] || b[3] != 0x68 || len < 5 {
                self.mbus.remove(0);
                continue;
            }
            let total = len + 6;
            if b.len() < total {
                break;
            }
            let body = &b[4..4 + len];
            let sum = body.iter().fold(0u8, |a, x| a.wrapping_add(*x));
            if b[4 + len] != sum || b[total - 1] != 0x16 {
                self.mbus.remove(0);
                continue;
            }
            let (address, ci) = (body[1], body[2]);
            self.partial.extend_from_slice(&body[5..]);
            self.mbus.drain(..total);
            if self.partial.len() > MAX_NOTIFICATION {
                self.partial.clear();
                continue;
            }
            if ci & 0x10 != 0 {
                out.push(Arrival {
                    source: u16::from(address),
                    apdu: std::mem::take(&mut self.partial),
                });
            }
        }
        out
    }

    /// What the bytes complete. `Err`: the stream cannot be read on (a bad wrapper header or
    /// an oversized PDU: the wrapper has no flag to resynchronise on); the caller drops it.
    /// General-block-transfer blocks come out joined, as the one APDU they carry.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Arrival>, PushError> {
        let arrivals = self.framed(bytes)?;
        Ok(arrivals
            .into_iter()
            .filter_map(|a| self.join_blocks(a))
            .collect())
    }

    /// General-block-transfer transfers dropped: a block lost (a damaged frame, skipped like
    /// any other; a push cannot ask for it again), malformed, or a joined APDU over
    /// [`MAX_NOTIFICATION`].
    pub fn gbt_dropped(&self) -> u64 {
        self.gbt_dropped
    }

    /// A push in general block transfer (L+G E450/E570: IEC 62056-5-3 9.3.11, block-control
    /// streaming with window 0, no acknowledgement) arrives one block per frame, the LLC
    /// header in the first frame only; the blocks are joined before the APDU is read.
    fn join_blocks(&mut self, arrival: Arrival) -> Option<Arrival> {
        if arrival.apdu.first() != Some(&GENERAL_BLOCK_TRANSFER) {
            return Some(arrival);
        }
        match self.gbt.push_apdu(&arrival.apdu) {
            Ok(GbtProgress::Complete(apdu)) => Some(Arrival {
                source: arrival.source,
                apdu,
            }),
            Ok(_) => None,
            Err(_) => {
                self.gbt_dropped += 1;
                None
            }
        }
    }

    fn framed(&mut self, bytes: &[u8]) -> Result<Vec<Arrival>, PushError> {
        let mut bytes = bytes;
        if self.framing.is_none() {
            // A serial line decides at its first frame start (garbage before it is line
            // noise); a TCP stream by its first byte (a wrapper header has no flag).
            if self.serial_line {
                match bytes.iter().position(|b| matches!(b, 0x7E | 0x68)) {
                    Some(at) => bytes = &bytes[at..],
                    None => return Ok(Vec::new()),
                }
            }
            match bytes.first() {
                None => return Ok(Vec::new()),
                Some(0x7E) => self.framing = Some(Framing::Hdlc),
                Some(0x68) => self.framing = Some(Framing::MBus),
                Some(_) => self.framing = Some(Framing::Wrapper),
            }
        }
        if self.framing == Some(Framing::MBus) {
            return Ok(self.mbus_push(bytes));
        }
        let mut out = Vec::new();
        if self.framing == Some(Framing::Wrapper) {
            self.wrapper.push(bytes);
            if self.wrapper.buffered() > MAX_NOTIFICATION + crate::dlms::wrapper::HEADER_LEN {
                return Err(PushError::Decode("a wrapper PDU over 16 KiB".into()));
            }
            loop {
                match self.wrapper.next_pdu() {
                    Ok(Some(pdu)) => out.push(Arrival {
                        source: pdu.source,
                        apdu: pdu.apdu,
                    }),
                    Ok(None) => break,
                    Err(e) => return Err(PushError::Decode(format!("wrapper: {e}"))),
                }
            }
            return Ok(out);
        }
        self.deframer.push(bytes);
        while let Some(frame) = self.deframer.next_frame() {
            if !matches!(
                frame.control,
                crate::dlms::hdlc::Control::Ui { .. } | crate::dlms::hdlc::Control::I { .. }
            ) {
                continue;
            }
            self.partial.extend_from_slice(&frame.info);
            if self.partial.len() > MAX_NOTIFICATION {
                self.partial.clear();
                continue;
            }
            if frame.segmented {
                continue;
            }
            let whole = std::mem::take(&mut self.partial);
            let apdu = whole
                .strip_prefix(&crate::dlms::hdlc::LLC_RESPONSE[..])
                .unwrap_or(&whole)
                .to_vec();
            let source = frame
                .source
                .as_bytes()
                .iter()
                .fold(0u16, |a, b| (a << 7) | u16::from(b >> 1));
            out.push(Arrival { source, apdu });
        }
        Ok(out)
    }
}

impl Default for PushStream {
    fn default() -> Self {
        PushStream::new()
    }
}

/// The system title a general-glo-ciphered APDU names: its sender (Green Book 9.2.7.2.3).
pub fn sender_title(apdu: &[u8]) -> Option<[u8; 8]> {
    match apdu {
        [crate::dlms::security::GENERAL_GLO_CIPHERING, 8, title @ ..] if title.len() >= 8 => {
            title[..8].try_into().ok()
        }
        _ => None,
    }
}

/// The receive side of one pushing meter, sans-I/O: its APDUs in, notifications out. A
/// ciphered APDU (general-glo-ciphering) is opened with the meter's keys and replay-checked.
pub struct Receiver {
    stream: PushStream,
    keys: Option<(crate::dlms::security::Keys, Option<[u8; 8]>)>,
    last_counter: Option<u32>,
    require_authentication: bool,
    template: Vec<Slot>,
    utc_offset_min: i16,
}

impl Receiver {
    pub fn new(
        keys: Option<(crate::dlms::security::Keys, Option<[u8; 8]>)>,
        template: Vec<Slot>,
        utc_offset_min: i16,
    ) -> Receiver {
        Receiver {
            stream: PushStream::serial(),
            keys,
            last_counter: None,
            require_authentication: false,
            template,
            utc_offset_min,
        }
    }

    /// Continues replay protection from `counter`, the last one taken before (kept in the
    /// database across restarts and edits): a notification must come above it.
    pub fn with_last_counter(mut self, counter: Option<u32>) -> Receiver {
        self.last_counter = counter;
        self
    }

    /// Refuses ciphered notifications that are encrypted only (security control without the
    /// authentication bit, Green Book 9.2.7.2.3): with `auth` or `auth-enc` configured, only
    /// what the authentication key vouches for is taken.
    pub fn requiring_authentication(mut self, yes: bool) -> Receiver {
        self.require_authentication = yes;
        self
    }

    /// The invocation counter of the last ciphered notification taken.
    pub fn last_counter(&self) -> Option<u32> {
        self.last_counter
    }

    /// Bytes from the meter's serial line (HDLC): every complete notification in them.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Vec<Result<Pushed, PushError>> {
        match self.stream.push(bytes) {
            Ok(arrivals) => arrivals.iter().map(|a| self.apdu(&a.apdu)).collect(),
            Err(e) => vec![Err(e)],
        }
    }

    /// One APDU (LLC removed): opened if ciphered, decoded, mapped.
    pub fn apdu(&mut self, apdu: &[u8]) -> Result<Pushed, PushError> {
        let first = apdu.first().copied().unwrap_or(0);
        let plain;
        let apdu = if crate::dlms::xdlms::is_ciphered_tag(first) {
            let Some((keys, title)) = &self.keys else {
                return Err(PushError::Security(
                    "ciphered, and this meter has no keys (--encryption-key, --authentication-key)"
                        .into(),
                ));
            };
            let opened = crate::dlms::security::open_apdu(keys, None, title.as_ref(), apdu)
                .map_err(|e| PushError::Security(e.to_string()))?;
            if self.require_authentication
                && opened.protection == crate::dlms::security::Protection::Encrypted
            {
                return Err(PushError::Security(
                    "encrypted only, not authenticated: this meter's security needs the authentication tag".into(),
                ));
            }
            if let Some(last) = self.last_counter {
                if opened.invocation_counter <= last {
                    return Err(PushError::Replayed {
                        counter: opened.invocation_counter,
                        last,
                    });
                }
            }
            self.last_counter = Some(opened.invocation_counter);
            plain = opened.plain;
            &plain[..]
        } else if self.keys.is_some() {
            // Anyone on the LAN can send a plain notification naming this meter's address or
            // logical device name; a meter with keys is heard only through them.
            return Err(PushError::Security(
                "plain (not ciphered), and this meter has keys: only notifications its keys open are taken".into(),
            ));
        } else {
            apdu
        };
        let n = crate::dlms::xdlms::notification::DataNotification::decode(apdu)
            .map_err(|e| PushError::Decode(e.to_string()))?;
        Ok(Pushed {
            time_s: n
                .date_time
                .and_then(|t| t.to_unix_local(self.utc_offset_min)),
            values: values(&n.body, &self.template),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::json;
    use crate::dlms::xdlms::notification::tests as vectors;
    use crate::dlms::xdlms::notification::DataNotification;

    fn decode(vector: &str) -> Data {
        DataNotification::decode(&crate::hex::vector(vector))
            .unwrap()
            .body
    }

    fn find(v: &[(Obis, Value)], obis: &str) -> serde_json::Value {
        let o: Obis = obis.parse().unwrap();
        json::value(&v.iter().find(|(x, _)| *x == o).unwrap().1).0
    }

    /// Aidon: structures of (OBIS, value, scaler_unit), the values its document states.
    #[test]
    fn aidon_structures_carry_their_scalers() {
        let v = values(&decode(vectors::AIDON_LIST_2), &[]);
        assert_eq!(v.len(), 12);
        assert_eq!(find(&v, "1-0:1.7.0"), serde_json::json!(280));
        assert_eq!(find(&v, "1-0:31.7.0"), serde_json::json!(1.3));
        assert_eq!(find(&v, "1-0:32.7.0"), serde_json::json!(227.4));
        assert_eq!(find(&v, "1-0:72.7.0"), serde_json::json!(230.8));
    }

    /// Kaifa: values only, read through the template of its OBIS list.
    #[test]
    fn kaifa_positions_through_a_template() {
        let template = parse_template(
            "-,-,-,1-0:1.7.0,1-0:2.7.0,1-0:3.7.0,1-0:4.7.0,1-0:31.7.0@-3,1-0:51.7.0@-3,\
             1-0:71.7.0@-3,1-0:32.7.0@-1,1-0:52.7.0@-1,1-0:72.7.0@-1",
        )
        .unwrap();
        let v = values(&decode(vectors::KAIFA_LIST_2), &template);
        assert_eq!(v.len(), 10);
        assert_eq!(find(&v, "1-0:1.7.0"), serde_json::json!(9745));
        assert_eq!(find(&v, "1-0:4.7.0"), serde_json::json!(435));
        assert_eq!(find(&v, "1-0:31.7.0"), serde_json::json!(33.813));
        assert_eq!(find(&v, "1-0:32.7.0"), serde_json::json!(216.8));
        assert_eq!(find(&v, "1-0:72.7.0"), serde_json::json!(218.8));
        assert!(parse_template("1-0:1.7.0@x").is_err());
        assert!(parse_template("nonsense").is_err());
    }

    /// Kamstrup: OBIS and value alternating in one structure.
    #[test]
    fn kamstrup_alternating_obis_and_values() {
        let v = values(&decode(vectors::KAMSTRUP_LIST_2_1P), &[]);
        assert_eq!(find(&v, "1-1:1.7.0"), serde_json::json!(0));
        assert_eq!(find(&v, "1-1:1.8.0"), serde_json::json!(0));
        assert_eq!(find(&v, "1-1:32.7.0"), serde_json::json!(0));
        assert_eq!(
            v.len(),
            7,
            "identification strings and the clock included: {v:?}"
        );
    }

    /// A whole captured Kamstrup HDLC frame, with garbage before it and split anywhere.
    #[test]
    fn a_captured_frame_through_the_receiver() {
        let frame = crate::hex::vector(include_str!(
            "../../tests/vectors/push/kamstrup-10s-captured.hex"
        ));
        for split in [1, 7, 100, frame.len() - 1] {
            let mut r = Receiver::new(None, Vec::new(), 0);
            let mut got = r.push_bytes(&[0x55, 0x7E, 0x00, 0xFF]);
            got.extend(r.push_bytes(&frame[..split]));
            got.extend(r.push_bytes(&frame[split..]));
            assert_eq!(got.len(), 1, "split at {split}: {got:?}");
            let p = got.remove(0).unwrap();
            assert_eq!(find(&p.values, "1-1:1.7.0"), serde_json::json!(3889));
            assert_eq!(find(&p.values, "1-1:4.7.0"), serde_json::json!(506));
            assert_eq!(find(&p.values, "1-1:31.7.0"), serde_json::json!(1514));
            assert_eq!(find(&p.values, "1-1:32.7.0"), serde_json::json!(236));
            assert_eq!(find(&p.values, "1-1:72.7.0"), serde_json::json!(235));
            // 2020-11-08 21:44:10, no deviation: UTC here.
            assert_eq!(p.time_s, Some(1_604_871_850));
        }
        // A damaged copy is skipped, not a panic and not a wrong value.
        let mut bad = frame.clone();
        bad[60] ^= 0x40;
        let mut r = Receiver::new(None, Vec::new(), 0);
        assert!(r.push_bytes(&bad).is_empty());
    }

    /// Some M-Bus-to-HAN adapters send an M-Bus short frame (SND_NKE: start 0x10, C 0x40,
    /// A 0x01, checksum 0x41, stop 0x16; EN 13757-2) before each HDLC frame: it is skipped, the
    /// frame after it decodes, and the next frame too.
    #[test]
    fn an_mbus_short_frame_before_the_hdlc_frame_is_skipped() {
        let frame = crate::hex::vector(include_str!(
            "../../tests/vectors/push/kamstrup-10s-captured.hex"
        ));
        let short = [0x10, 0x40, 0x01, 0x41, 0x16];
        let mut stream = short.to_vec();
        stream.extend_from_slice(&frame);
        stream.extend_from_slice(&short);
        stream.extend_from_slice(&frame);
        let mut r = Receiver::new(None, Vec::new(), 0);
        let got = r.push_bytes(&stream);
        assert_eq!(got.len(), 2, "{got:?}");
        for p in got {
            let p = p.unwrap();
            assert_eq!(find(&p.values, "1-1:1.7.0"), serde_json::json!(3889));
            assert_eq!(p.time_s, Some(1_604_871_850));
        }
    }

    /// Gurux's ciphered notification opens with the published keys; the same one again is a
    /// replay; another system title is refused.
    #[test]
    fn ciphered_notifications_open_and_replays_are_refused() {
        let wrapped = crate::hex::vector(include_str!(
            "../../tests/vectors/push/gurux-ciphered-wrapper.hex"
        ));
        let apdu = &wrapped[8..]; // wrapper header: version, source, destination, length
        let keys = crate::dlms::security::Keys {
            block_cipher: crate::hex::array("000102030405060708090A0B0C0D0E0F").unwrap(),
            authentication: crate::hex::array("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF").unwrap(),
        };
        let title = crate::hex::array("4D4D4D0000BC614E").unwrap();
        let mut r = Receiver::new(Some((keys.clone(), Some(title))), Vec::new(), 0);
        let p = r.apdu(apdu).unwrap();
        assert_eq!(find(&p.values, "1-0:1.8.0"), serde_json::json!(123456));
        assert!(matches!(
            r.apdu(apdu),
            Err(PushError::Replayed {
                counter: 0x1234,
                ..
            })
        ));
        let mut other = Receiver::new(Some((keys, Some(*b"SOMEONE!"))), Vec::new(), 0);
        assert!(matches!(other.apdu(apdu), Err(PushError::Security(_))));
        let mut keyless = Receiver::new(None, Vec::new(), 0);
        assert!(matches!(keyless.apdu(apdu), Err(PushError::Security(_))));
    }

    /// Issue 24 items 5 and 6: a meter with keys takes nothing plain (a forged notification
    /// naming its address); replay protection goes on from a counter kept across a restart;
    /// an encrypted-only notification is refused where the meter's security needs the tag.
    #[test]
    fn a_meter_with_keys_takes_only_what_they_open_above_the_kept_counter() {
        let wrapped = crate::hex::vector(include_str!(
            "../../tests/vectors/push/gurux-ciphered-wrapper.hex"
        ));
        let apdu = &wrapped[8..];
        let keys = crate::dlms::security::Keys {
            block_cipher: crate::hex::array("000102030405060708090A0B0C0D0E0F").unwrap(),
            authentication: crate::hex::array("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF").unwrap(),
        };
        let title = crate::hex::array("4D4D4D0000BC614E").unwrap();
        let plain = crate::hex::vector(vectors::AIDON_LIST_2);
        let mut keyed = Receiver::new(Some((keys.clone(), Some(title))), Vec::new(), 0);
        assert!(
            matches!(keyed.apdu(&plain), Err(PushError::Security(ref e)) if e.contains("plain")),
            "a plain notification for a meter with keys"
        );
        assert!(Receiver::new(None, Vec::new(), 0).apdu(&plain).is_ok());
        let mut restarted = Receiver::new(Some((keys.clone(), Some(title))), Vec::new(), 0)
            .with_last_counter(Some(0x2000));
        assert_eq!(
            restarted.apdu(apdu),
            Err(PushError::Replayed {
                counter: 0x1234,
                last: 0x2000
            })
        );
        let mut fresh = Receiver::new(Some((keys, Some(title))), Vec::new(), 0)
            .requiring_authentication(true)
            .with_last_counter(Some(0x1233));
        assert!(
            fresh.apdu(apdu).is_ok(),
            "authenticated and above the counter"
        );
        assert_eq!(fresh.last_counter(), Some(0x1234));
    }

    /// The Tirol example: two M-Bus frames, ciphered (suite 1 label, encryption only) with the
    /// published key; the values the document states. Any split, and garbage before.
    #[test]
    fn a_published_ciphered_mbus_push_decodes_with_its_key() {
        let bytes = crate::hex::vector(include_str!(
            "../../tests/vectors/push/kaifa-tirol-mbus-ciphered.hex"
        ));
        let keys = crate::dlms::security::Keys {
            block_cipher: crate::hex::array("101112131415161718191A1B1C1D1E1F").unwrap(),
            authentication: [0; 16],
        };
        let title = crate::hex::array("4B464D1010000023").unwrap();
        for split in [3, 120, 252, 270] {
            let mut r = Receiver::new(Some((keys.clone(), Some(title))), Vec::new(), 0);
            let mut got = r.push_bytes(&[0x00, 0x16, 0x55]);
            got.extend(r.push_bytes(&bytes[..split]));
            got.extend(r.push_bytes(&bytes[split..]));
            assert_eq!(got.len(), 1, "split at {split}: {got:?}");
            let p = got.remove(0).unwrap();
            assert_eq!(find(&p.values, "1-0:32.7.0"), serde_json::json!(230.8));
            assert_eq!(find(&p.values, "1-0:1.8.0"), serde_json::json!(9108));
            assert_eq!(find(&p.values, "1-0:3.8.0"), serde_json::json!(96));
            assert_eq!(find(&p.values, "1-0:4.8.0"), serde_json::json!(9));
            assert_eq!(
                find(&p.values, "0-0:42.0.0"),
                serde_json::json!("KFM1100100000035")
            );
            // 2021-07-19 15:46:35 local with deviation -120 (CEST): 13:46:35 UTC.
            assert_eq!(p.time_s, Some(1_626_702_395));
        }
        // A flipped byte in the first frame: its checksum fails, nothing comes out.
        let mut bad = bytes.clone();
        bad[40] ^= 1;
        let mut r = Receiver::new(Some((keys.clone(), Some(title))), Vec::new(), 0);
        assert!(r.push_bytes(&bad).iter().all(Result::is_err));
        // Encrypted only: refused where the meter's security asks for authentication.
        let mut strict =
            Receiver::new(Some((keys, Some(title))), Vec::new(), 0).requiring_authentication(true);
        let got = strict.push_bytes(&bytes);
        assert!(
            matches!(got.as_slice(), [Err(PushError::Security(e))] if e.contains("not authenticated")),
            "{got:?}"
        );
    }

    /// The Landis+Gyr E450 capture (esphome/esphome#16942): a DATA-NOTIFICATION in three GBT
    /// blocks, the LLC header in the first frame only; the values the capture holds.
    #[test]
    fn a_captured_e450_push_in_general_block_transfer() {
        let bytes = crate::hex::vector(include_str!(
            "../../tests/vectors/push/landis-gyr-e450-cyprus-gbt.hex"
        ));
        for split in [1, 100, 134, 135, 300, bytes.len() - 1] {
            let mut r = Receiver::new(None, Vec::new(), 120);
            let mut got = r.push_bytes(&bytes[..split]);
            got.extend(r.push_bytes(&bytes[split..]));
            assert_eq!(got.len(), 1, "split at {split}: {got:?}");
            let p = got.remove(0).unwrap();
            assert_eq!(p.values.len(), 12, "{:?}", p.values);
            assert_eq!(
                find(&p.values, "0-0:42.0.0"),
                serde_json::json!("LGZ1020782546371")
            );
            assert_eq!(find(&p.values, "0-0:96.1.1"), serde_json::json!("1299652"));
            assert_eq!(find(&p.values, "1-0:1.8.1"), serde_json::json!(3546968));
            assert_eq!(find(&p.values, "1-0:1.8.2"), serde_json::json!(3589758));
            assert_eq!(find(&p.values, "1-0:2.8.1"), serde_json::json!(102067));
            assert_eq!(find(&p.values, "1-0:2.8.2"), serde_json::json!(2586837));
            assert_eq!(find(&p.values, "1-0:1.8.0"), serde_json::json!(7136726));
            assert_eq!(find(&p.values, "1-0:2.8.0"), serde_json::json!(2688904));
            assert_eq!(find(&p.values, "1-0:3.8.0"), serde_json::json!(313101));
            assert_eq!(find(&p.values, "1-0:4.8.0"), serde_json::json!(2561113));
            assert_eq!(find(&p.values, "0-0:96.3.10"), serde_json::json!(1));
            // 2026-07-18 16:58:00, deviation not specified: the meter's configured offset
            // (+120 min here) applies: 14:58:00 UTC.
            assert_eq!(p.time_s, Some(1_784_386_680));
        }
        // The middle frame lost: the transfer is dropped (a push cannot ask again), and the
        // next notification is taken whole.
        let second = bytes.iter().skip(1).position(|b| *b == 0x7E).unwrap() + 2;
        let third = second
            + bytes[second..]
                .iter()
                .skip(1)
                .position(|b| *b == 0x7E)
                .unwrap()
            + 2;
        let mut lossy = bytes[..second].to_vec();
        lossy.extend_from_slice(&bytes[third..]);
        let mut stream = PushStream::serial();
        assert!(stream.push(&lossy).unwrap().is_empty());
        assert_eq!(stream.gbt_dropped(), 1);
        let again = stream.push(&bytes).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(&again[0].apdu[..5], &[0x0F, 0x00, 0x7C, 0x83, 0xD3]);
    }

    /// Gurux's GBT notifications (tests/interop/gen_gbt_vectors.py), plain and ciphered: the
    /// blocks are joined first, then the joined APDU is deciphered.
    #[test]
    fn gurux_gbt_notifications_plain_and_ciphered() {
        let plain = crate::hex::vector(include_str!(
            "../../tests/vectors/gbt/gurux-push-plain-hdlc.hex"
        ));
        let mut r = Receiver::new(None, Vec::new(), 0);
        let got = r.push_bytes(&plain);
        assert_eq!(got.len(), 1, "{got:?}");
        let p = got[0].as_ref().unwrap();
        for c in 1..=6u32 {
            let obis = format!("1-0:{c}.8.0");
            assert_eq!(find(&p.values, &obis), serde_json::json!(1000 * c + 7));
        }
        let ciphered = crate::hex::vector(include_str!(
            "../../tests/vectors/gbt/gurux-push-ciphered-hdlc.hex"
        ));
        let keys = crate::dlms::security::Keys {
            block_cipher: crate::hex::array("000102030405060708090A0B0C0D0E0F").unwrap(),
            authentication: crate::hex::array("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF").unwrap(),
        };
        let title = crate::hex::array("4D4D4D0000BC614E").unwrap();
        let mut r =
            Receiver::new(Some((keys, Some(title))), Vec::new(), 0).requiring_authentication(true);
        let got = r.push_bytes(&ciphered);
        assert_eq!(got.len(), 1, "{got:?}");
        let p = got[0].as_ref().unwrap();
        assert_eq!(find(&p.values, "1-0:6.8.0"), serde_json::json!(6007));
        assert_eq!(r.last_counter(), Some(0x1234));
        // The same blocks again: joined, opened, refused as a replay.
        assert!(matches!(
            r.push_bytes(&ciphered).as_slice(),
            [Err(PushError::Replayed {
                counter: 0x1234,
                ..
            })]
        ));
    }
}
