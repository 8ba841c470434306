//! RLRQ / RLRE, association release (Green Book 9.4.2.2, "RLRQ", "RLRE").
//!
//! ```text
//! 62 len [80 01 reason] [BE user-information]
//! 63 len [80 01 reason] [BE user-information]
//! ```

use super::{read_user_information, write_user_information, RLRE_TAG, RLRQ_TAG};
use crate::dlms::{ber, DecodeError, Reader};

/// Release-request-reason / release-response-reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    Normal,
    Urgent,
    UserDefined,
    NotFinished,
    Unknown(u8),
}

impl ReleaseReason {
    fn to_u8(self) -> u8 {
        match self {
            ReleaseReason::Normal => 0,
            // The same code means "urgent" in a request and "not finished" in a response.
            ReleaseReason::Urgent | ReleaseReason::NotFinished => 1,
            ReleaseReason::UserDefined => 30,
            ReleaseReason::Unknown(v) => v,
        }
    }

    fn from_u8(v: u8, request: bool) -> Self {
        match v {
            0 => ReleaseReason::Normal,
            1 if request => ReleaseReason::Urgent,
            1 => ReleaseReason::NotFinished,
            30 => ReleaseReason::UserDefined,
            o => ReleaseReason::Unknown(o),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Release {
    reason: Option<ReleaseReason>,
    user_information: Option<Vec<u8>>,
}

impl Release {
    fn encode(&self, tag: u8) -> Vec<u8> {
        let mut body = Vec::new();
        if let Some(r) = self.reason {
            ber::write_tlv(&mut body, 0x80, &[r.to_u8()]);
        }
        if let Some(ui) = &self.user_information {
            write_user_information(&mut body, 0xBE, ui);
        }
        let mut out = Vec::new();
        ber::write_tlv(&mut out, tag, &body);
        out
    }

    fn decode(bytes: &[u8], tag: u8, request: bool) -> Result<Release, DecodeError> {
        let mut outer = Reader::new(bytes);
        let body = ber::expect_tlv(&mut outer, tag, if request { "RLRQ" } else { "RLRE" })?;
        outer.finish()?;
        let mut r = Reader::new(body);
        let mut rel = Release {
            reason: None,
            user_information: None,
        };
        while !r.is_empty() {
            let (t, content) = ber::read_tlv(&mut r)?;
            match t {
                0x80 => {
                    let v = ber::decode_small_integer(content, "release reason")?;
                    rel.reason = Some(ReleaseReason::from_u8(v.min(255) as u8, request));
                }
                0xBE => rel.user_information = Some(read_user_information(content)?),
                _ => {}
            }
        }
        Ok(rel)
    }
}

/// Release request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlrq {
    pub reason: Option<ReleaseReason>,
    pub user_information: Option<Vec<u8>>,
}

/// Release response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlre {
    pub reason: Option<ReleaseReason>,
    pub user_information: Option<Vec<u8>>,
}

impl Rlrq {
    pub fn encode(&self) -> Vec<u8> {
        Release {
            reason: self.reason,
            user_information: self.user_information.clone(),
        }
        .encode(RLRQ_TAG)
    }

    pub fn decode(bytes: &[u8]) -> Result<Rlrq, DecodeError> {
        let r = Release::decode(bytes, RLRQ_TAG, true)?;
        Ok(Rlrq {
            reason: r.reason,
            user_information: r.user_information,
        })
    }
}

impl Rlre {
    pub fn encode(&self) -> Vec<u8> {
        Release {
            reason: self.reason,
            user_information: self.user_information.clone(),
        }
        .encode(RLRE_TAG)
    }

    pub fn decode(bytes: &[u8]) -> Result<Rlre, DecodeError> {
        let r = Release::decode(bytes, RLRE_TAG, false)?;
        Ok(Rlre {
            reason: r.reason,
            user_information: r.user_information,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_release() {
        // RLRQ with reason normal, and the plain RLRE answering it.
        let rlrq = Rlrq {
            reason: Some(ReleaseReason::Normal),
            user_information: None,
        };
        assert_eq!(rlrq.encode(), [0x62, 0x03, 0x80, 0x01, 0x00]);
        assert_eq!(Rlrq::decode(&[0x62, 0x03, 0x80, 0x01, 0x00]).unwrap(), rlrq);
        let rlre = Rlre::decode(&[0x63, 0x03, 0x80, 0x01, 0x00]).unwrap();
        assert_eq!(rlre.reason, Some(ReleaseReason::Normal));
        assert_eq!(Rlre::decode(&[0x63, 0x00]).unwrap().reason, None);
    }

    #[test]
    fn with_user_information_and_malformed() {
        let rlrq = Rlrq {
            reason: Some(ReleaseReason::Urgent),
            user_information: Some(vec![0x01, 0x00, 0x00, 0x00, 0x06]),
        };
        assert_eq!(Rlrq::decode(&rlrq.encode()).unwrap(), rlrq);
        assert!(Rlrq::decode(&[0x63, 0x00]).is_err());
        assert!(Rlrq::decode(&[0x62, 0x03, 0x80, 0x01]).is_err());
    }
}
