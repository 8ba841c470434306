//! DATA-NOTIFICATION (Green Book 9.5, `Data-Notification`, tag 0x0F): what a meter pushes
//! unasked (IDIS/DSMR push setups, the HAN/P1 customer ports).
//!
//! ```text
//! 0F  long-invoke-id-and-priority(4)  date-time  notification-body(Data)
//! ```
//! `date-time` is an OCTET STRING: 0x00 (empty: no time), or 0x0C and the 12 bytes of a COSEM
//! date-time. Some meters (Kaifa, older Kamstrup firmware) send it as a tagged Data value
//! instead (0x09 0x0C ...); both are read.

use crate::dlms::axdr::{Data, DateTime};
use crate::dlms::{DecodeError, Reader};

pub const DATA_NOTIFICATION: u8 = 0x0F;

#[derive(Debug, Clone, PartialEq)]
pub struct DataNotification {
    pub long_invoke_id: u32,
    pub date_time: Option<DateTime>,
    pub body: Data,
}

impl DataNotification {
    pub fn decode(apdu: &[u8]) -> Result<DataNotification, DecodeError> {
        let mut r = Reader::new(apdu);
        let tag = r.u8()?;
        if tag != DATA_NOTIFICATION {
            return Err(DecodeError::UnknownTag {
                what: "DATA-NOTIFICATION",
                tag,
            });
        }
        let long_invoke_id = r.u32()?;
        let mut len = r.u8()?;
        if len == 0x09 {
            // A tagged octet-string (Data) instead of the bare OCTET STRING.
            len = r.u8()?;
        }
        let date_time = match len {
            0 => None,
            12 => Some(DateTime::from_bytes(r.bytes(12)?)?),
            other => {
                return Err(DecodeError::InvalidLength {
                    what: "DATA-NOTIFICATION date-time",
                    length: u64::from(other),
                })
            }
        };
        let body = Data::read(&mut r)?;
        r.finish()?;
        Ok(DataNotification {
            long_invoke_id,
            date_time,
            body,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![DATA_NOTIFICATION];
        out.extend_from_slice(&self.long_invoke_id.to_be_bytes());
        match &self.date_time {
            Some(t) => {
                out.push(12);
                out.extend_from_slice(&t.to_bytes());
            }
            None => out.push(0),
        }
        self.body.encode(&mut out);
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::hex;

    pub(crate) const AIDON_LIST_2: &str =
        include_str!("../../../tests/vectors/push/aidon-list-2.hex");
    pub(crate) const KAIFA_LIST_2: &str =
        include_str!("../../../tests/vectors/push/kaifa-list-2.hex");
    pub(crate) const KAMSTRUP_LIST_2_1P: &str =
        include_str!("../../../tests/vectors/push/kamstrup-list-2-single-phase.hex");

    fn bytes(text: &str) -> Vec<u8> {
        hex::vector(text)
    }

    #[test]
    fn public_han_notifications_decode() {
        let aidon = DataNotification::decode(&bytes(AIDON_LIST_2)).unwrap();
        assert_eq!(aidon.long_invoke_id, 0x4000_0000);
        assert_eq!(aidon.date_time, None);
        assert_eq!(aidon.body.as_items().unwrap().len(), 12);

        let kaifa = DataNotification::decode(&bytes(KAIFA_LIST_2)).unwrap();
        let t = kaifa.date_time.unwrap();
        assert_eq!((t.date.year, t.date.month, t.date.day), (2020, 1, 25));
        assert_eq!((t.time.hour, t.time.minute, t.time.second), (13, 9, 30));
        assert_eq!(kaifa.body.as_items().unwrap().len(), 13);

        let kamstrup = DataNotification::decode(&bytes(KAMSTRUP_LIST_2_1P)).unwrap();
        assert_eq!(kamstrup.date_time.unwrap().date.year, 2017);
        assert_eq!(kamstrup.body.as_items().unwrap().len(), 15);
        // Round trip of our own encoding.
        assert_eq!(DataNotification::decode(&aidon.encode()).unwrap(), aidon);
    }

    #[test]
    fn malformed_notifications_are_errors() {
        let good = bytes(AIDON_LIST_2);
        for cut in 0..good.len() {
            assert!(
                DataNotification::decode(&good[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(DataNotification::decode(&[0x0F, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5, 0]).is_err());
        assert!(DataNotification::decode(&[0xC4]).is_err());
    }
}
