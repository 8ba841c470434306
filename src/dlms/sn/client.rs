//! The client's SN exchanges, sans-I/O: the LN descriptors callers pass (class, OBIS,
//! attribute or method) are translated to short names through the meter's object list, so
//! `Connection::get/set/action` work alike on LN and SN meters.
//!
//! - GET -> ReadRequest (variable-name, or parameterized-access for selective access);
//!   long answers in data-block-results, acknowledged by block-number-access.
//! - SET -> WriteRequest.
//! - ACTION -> WriteRequest of the method's short name with its parameter (Blue Book 4.1.3:
//!   a method without return value is invoked by writing; no parameter sends integer 0, as
//!   the Blue Book's methods "data ::= integer(0)" take).
//! - A method that returns data (reply_to_HLS_authentication) -> ReadRequest with
//!   parameterized-access: its short name, selector 0, the method's parameter; the
//!   ReadResponse carries what it returns (Green Book 9.3.x, SN mapping of ACTION; Gurux's
//!   server serves HLS pass 3 over SN so).

use super::blocks::{ReadBlockAssembler, SnBlockProgress};
use super::names::{ShortNameMap, OBJECT_LIST};
use super::read::{ReadRequest, ReadResponse, ReadResult};
use super::variable::{ShortName, VariableAccess};
use super::write::{WriteRequest, WriteResponse, WriteResult};
use super::SnApdu;
use crate::dlms::axdr::Data;
use crate::dlms::session::{SessionError, Step};
use crate::dlms::xdlms::{AttributeDescriptor, GetDataResult, MethodDescriptor, SelectiveAccess};

/// Answers every exchange treats alike: exceptions and service errors are LN APDUs too.
fn not_sn(apdu: &[u8], expected: &'static str) -> SessionError {
    use crate::dlms::xdlms::Apdu;
    match Apdu::decode(apdu) {
        Ok(Apdu::ExceptionResponse(e)) => SessionError::Exception(e),
        Ok(Apdu::ConfirmedServiceError(e)) => SessionError::ServiceError(e),
        _ => SessionError::Unexpected(expected),
    }
}

/// One ReadRequest, possibly answered in blocks.
#[derive(Debug)]
pub struct SnReadExchange {
    count: usize,
    request: Vec<u8>,
    assembler: ReadBlockAssembler,
}

impl SnReadExchange {
    pub fn new(
        map: &ShortNameMap,
        items: &[(AttributeDescriptor, Option<SelectiveAccess>)],
        block_limit: usize,
    ) -> Result<Self, SessionError> {
        let accesses = items
            .iter()
            .map(|(a, access)| {
                let name = map
                    .attribute(a.class_id, a.instance, a.attribute)
                    .map_err(SessionError::ShortName)?;
                Ok(match access {
                    None => VariableAccess::Name(name),
                    Some(s) => VariableAccess::Parameterized {
                        name,
                        selector: s.selector,
                        parameter: s.parameters.clone(),
                    },
                })
            })
            .collect::<Result<Vec<_>, SessionError>>()?;
        Ok(Self::from_accesses(accesses, block_limit))
    }

    /// Invokes the method at `name` for what it returns (see the module's notes).
    pub fn method_with_return(name: ShortName, parameter: Data, block_limit: usize) -> Self {
        let access = VariableAccess::Parameterized {
            name,
            selector: 0,
            parameter,
        };
        Self::from_accesses(vec![access], block_limit)
    }

    /// Reads Association SN's object_list (0xFA08), the map's source.
    pub fn object_list(block_limit: usize) -> Self {
        Self::from_accesses(vec![VariableAccess::Name(OBJECT_LIST)], block_limit)
    }

    fn from_accesses(items: Vec<VariableAccess>, block_limit: usize) -> Self {
        SnReadExchange {
            count: items.len(),
            request: ReadRequest { items }.encode(),
            assembler: ReadBlockAssembler::new(block_limit),
        }
    }

    pub fn request(&self) -> &[u8] {
        &self.request
    }

    pub fn on_response(&mut self, apdu: &[u8]) -> Result<Step<Vec<GetDataResult>>, SessionError> {
        let response = match SnApdu::decode(apdu) {
            Ok(Some(SnApdu::ReadResponse(r))) => r,
            Err(e) => return Err(SessionError::Decode(e)),
            Ok(_) => return Err(not_sn(apdu, "not a ReadResponse")),
        };
        let results = match response.results.as_slice() {
            [ReadResult::DataBlock(block)] => {
                match self.assembler.push(block).map_err(SessionError::SnBlock)? {
                    SnBlockProgress::Next(ack) => return Ok(Step::Send(ack.encode())),
                    SnBlockProgress::Complete(raw) => self.decode_blocks(&raw)?,
                }
            }
            results => results
                .iter()
                .map(|r| match r {
                    ReadResult::Data(d) => Ok(Ok(d.clone())),
                    ReadResult::Error(e) => Ok(Err(*e)),
                    _ => Err(SessionError::Unexpected("block result inside a list")),
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if results.len() != self.count {
            return Err(SessionError::ResultCount {
                requested: self.count,
                received: results.len(),
            });
        }
        Ok(Step::Done(results))
    }

    /// One Data for one variable; for several, the count and Read-Data-Results (the same
    /// convention as LN's GET with list in blocks, Green Book 9.3.7).
    fn decode_blocks(&self, raw: &[u8]) -> Result<Vec<GetDataResult>, SessionError> {
        if self.count == 1 {
            return Ok(vec![Ok(Data::decode(raw)?)]);
        }
        let mut pdu = vec![super::READ_RESPONSE];
        pdu.extend_from_slice(raw);
        ReadResponse::decode(&pdu)?
            .results
            .into_iter()
            .map(|r| match r {
                ReadResult::Data(d) => Ok(Ok(d)),
                ReadResult::Error(e) => Ok(Err(e)),
                _ => Err(SessionError::Unexpected("block inside a block transfer")),
            })
            .collect()
    }
}

/// One WriteRequest: an attribute write, or a method invoked by writing.
#[derive(Debug)]
pub struct SnWriteExchange {
    request: Vec<u8>,
}

impl SnWriteExchange {
    pub fn attribute(
        map: &ShortNameMap,
        attribute: AttributeDescriptor,
        value: &Data,
        max_pdu: usize,
    ) -> Result<Self, SessionError> {
        let name = map
            .attribute(attribute.class_id, attribute.instance, attribute.attribute)
            .map_err(SessionError::ShortName)?;
        Self::write(name, value, max_pdu)
    }

    pub fn method(
        map: &ShortNameMap,
        method: MethodDescriptor,
        parameters: Option<&Data>,
        max_pdu: usize,
    ) -> Result<Self, SessionError> {
        let name = map
            .method(method.class_id, method.instance, method.method)
            .map_err(SessionError::ShortName)?;
        Self::write(name, parameters.unwrap_or(&Data::Integer(0)), max_pdu)
    }

    fn write(name: u16, value: &Data, max_pdu: usize) -> Result<Self, SessionError> {
        let request = WriteRequest {
            items: vec![VariableAccess::Name(name)],
            values: vec![value.clone()],
        }
        .encode();
        // Long writes (write-data-block-access) are not sent: no RPC or clock write needs one.
        if request.len() > max_pdu {
            return Err(SessionError::TooLarge);
        }
        Ok(SnWriteExchange { request })
    }

    pub fn request(&self) -> &[u8] {
        &self.request
    }

    pub fn on_response(&mut self, apdu: &[u8]) -> Result<Step<()>, SessionError> {
        let response = match SnApdu::decode(apdu) {
            Ok(Some(SnApdu::WriteResponse(r))) => r,
            Err(e) => return Err(SessionError::Decode(e)),
            Ok(_) => return Err(not_sn(apdu, "not a WriteResponse")),
        };
        match response.results.as_slice() {
            [WriteResult::Success] => Ok(Step::Done(())),
            [WriteResult::Error(e)] => Err(SessionError::Refused(*e)),
            [WriteResult::BlockNumber(_)] => Err(SessionError::Unexpected(
                "block acknowledgement of a short write",
            )),
            other => Err(SessionError::ResultCount {
                requested: 1,
                received: other.len(),
            }),
        }
    }
}

impl WriteResponse {
    /// One result per written variable.
    pub fn single(result: WriteResult) -> Self {
        WriteResponse {
            results: vec![result],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosem::Obis;
    use crate::dlms::sn::{SnDataBlock, SnObject};
    use crate::dlms::test_util::hex;
    use crate::dlms::xdlms::DataAccessResult;

    const VOLTAGE: Obis = Obis::new(1, 0, 32, 7, 0, 255);
    const CLOCK: Obis = Obis::new(0, 0, 1, 0, 0, 255);

    fn map() -> ShortNameMap {
        ShortNameMap::new(vec![
            SnObject {
                base_name: 0x2000,
                class_id: 3,
                version: 0,
                instance: VOLTAGE,
            },
            SnObject {
                base_name: 0x2800,
                class_id: 8,
                version: 0,
                instance: CLOCK,
            },
        ])
    }

    #[test]
    fn ln_reads_become_the_gurux_read_requests() {
        let items = [
            (AttributeDescriptor::new(3, VOLTAGE, 2), None),
            (AttributeDescriptor::new(3, VOLTAGE, 3), None),
        ];
        let mut ex = SnReadExchange::new(&map(), &items, 1 << 16).unwrap();
        // The bytes of tests.rs's gurux-dlms vector `read_two`.
        assert_eq!(ex.request(), hex("0502022008022010"));
        let done = ex
            .on_response(&hex("0C020005000008FD0002020FFF1623"))
            .unwrap();
        let Step::Done(results) = done else {
            panic!("{done:?}")
        };
        assert_eq!(results[0], Ok(Data::DoubleLong(2301)));
        // One answer for two names is refused.
        let mut ex = SnReadExchange::new(&map(), &items, 1 << 16).unwrap();
        assert!(matches!(
            ex.on_response(&hex("0C010104")),
            Err(SessionError::ResultCount {
                requested: 2,
                received: 1
            })
        ));
    }

    #[test]
    fn blocks_are_acknowledged_and_joined() {
        let items = [(AttributeDescriptor::new(8, CLOCK, 2), None)];
        let mut ex = SnReadExchange::new(&map(), &items, 1 << 16).unwrap();
        assert_eq!(ex.request(), hex("0501022808"));
        let value = Data::OctetString(vec![7; 40]);
        let raw = value.to_bytes();
        let block = |n: u16, last: bool, part: &[u8]| {
            ReadResponse {
                results: vec![ReadResult::DataBlock(SnDataBlock {
                    last_block: last,
                    block_number: n,
                    raw_data: part.to_vec(),
                })],
            }
            .encode()
        };
        let step = ex.on_response(&block(1, false, &raw[..20])).unwrap();
        assert_eq!(step, Step::Send(hex("0501050001")));
        let step = ex.on_response(&block(2, true, &raw[20..])).unwrap();
        assert_eq!(step, Step::Done(vec![Ok(value)]));
        // A block out of order is an error.
        let mut ex = SnReadExchange::new(&map(), &items, 1 << 16).unwrap();
        assert!(matches!(
            ex.on_response(&block(2, true, &raw)),
            Err(SessionError::SnBlock(_))
        ));
    }

    #[test]
    fn writes_methods_and_errors() {
        let time = Data::OctetString(hex("07EA0C02FF071E0000000000"));
        let mut ex =
            SnWriteExchange::attribute(&map(), AttributeDescriptor::new(8, CLOCK, 2), &time, 1024)
                .unwrap();
        // The bytes of tests.rs's gurux-dlms vector `write_clock_time`.
        assert_eq!(
            ex.request(),
            hex("060102280801090C07EA0C02FF071E0000000000")
        );
        assert_eq!(ex.on_response(&hex("0D0100")).unwrap(), Step::Done(()));
        assert_eq!(
            ex.on_response(&hex("0D010103")),
            Err(SessionError::Refused(DataAccessResult::READ_WRITE_DENIED))
        );
        // Clock method 6 (shift_time) at 0x2888 with its parameter; no parameter sends
        // integer 0.
        let ex = SnWriteExchange::method(
            &map(),
            MethodDescriptor::new(8, CLOCK, 6),
            Some(&Data::Long(60)),
            1024,
        )
        .unwrap();
        assert_eq!(ex.request(), hex("0601022888011000 3C"));
        let ex = SnWriteExchange::method(&map(), MethodDescriptor::new(8, CLOCK, 1), None, 1024)
            .unwrap();
        assert_eq!(ex.request(), hex("060102286001 0F00"));
        // Too long for the meter, and an object the meter does not list.
        assert_eq!(
            SnWriteExchange::attribute(&map(), AttributeDescriptor::new(8, CLOCK, 2), &time, 10)
                .unwrap_err(),
            SessionError::TooLarge
        );
        assert!(matches!(
            SnWriteExchange::method(&map(), MethodDescriptor::new(70, CLOCK, 1), None, 1024),
            Err(SessionError::ShortName(_))
        ));
        // Exceptions are LN APDUs in SN associations too.
        let mut ex =
            SnWriteExchange::method(&map(), MethodDescriptor::new(8, CLOCK, 1), None, 1024)
                .unwrap();
        assert!(matches!(
            ex.on_response(&[0xD8, 0x01, 0x02]),
            Err(SessionError::Exception(_))
        ));
        assert!(matches!(
            ex.on_response(&hex("C401C100")),
            Err(SessionError::Unexpected(_))
        ));
    }
}
