//! The simulator's short-name front (`simulate --referencing sn|auto`): SN requests are
//! answered by translating them into the LN requests the rest of the server already serves,
//! so one model is served over both referencings.
//!
//! Base names: object i of the model gets `(i + 1) * 0x100` (room for every attribute and
//! method offset of the Blue Book classes, all below 0x100); Association SN is at 0xFA00
//! (Blue Book 4.4.4). Long answers go in data-block-results (Green Book 9.3.x), each
//! acknowledged by block-number-access with the number received.

use super::ServerSession;
use crate::cosem::Obis;
use crate::dlms::acse::{
    Aare, Aarq, ApplicationContext, AssociationResult, ResultSourceDiagnostic, AARQ_TAG,
};
use crate::dlms::axdr::Data;
use crate::dlms::sn::association::{Referencing, SN_CONFORMANCE, VAA_NAME_SN};
use crate::dlms::sn::names::{
    first_method_offset, CURRENT_ASSOCIATION_BASE, OBJECT_LIST, REPLY_TO_HLS,
};
use crate::dlms::sn::{
    ReadRequest, ReadResponse, ReadResult, SnApdu, SnDataBlock, SnObject, VariableAccess,
    WriteRequest, WriteResponse, WriteResult,
};
use crate::dlms::xdlms::{
    ActionRequest, ActionResponse, AttributeDescriptor, Conformance, DataAccessResult, GetRequest,
    GetResponse, InitiateRequest, InitiateResponse, InvokeIdAndPriority, MethodDescriptor,
    SelectiveAccess, SetRequest, SetResponse,
};

const CLASS_ASSOCIATION_LN: u16 = 15;
const INVOKE: InvokeIdAndPriority = InvokeIdAndPriority(0xC1);
/// block-transfer-with-get-or-read (Green Book 9.4.6.1 bit 11), the same bit in LN and SN.
const BLOCK_READ: u32 = Conformance::BLOCK_TRANSFER_WITH_GET;

/// The SN state of one server session.
#[derive(Debug, Default)]
pub(super) struct ShortNameFront {
    /// `Some` while the association is an SN one: (granted SN conformance, client PDU size).
    association: Option<(Conformance, usize)>,
    pending: Option<PendingRead>,
}

#[derive(Debug)]
struct PendingRead {
    raw: Vec<u8>,
    chunk: usize,
    sent: u16,
}

/// What a short name refers to.
enum Target {
    ObjectList,
    Attribute(AttributeDescriptor),
    Method(MethodDescriptor),
}

impl ServerSession {
    /// `Some(answer)` when the APDU is the front's to answer (an SN AARQ, an LN AARQ to an
    /// SN-only meter, any SN request); `None` leaves it to the LN server.
    pub(super) fn short_name_front(&mut self, apdu: &[u8], now: i64) -> Option<Option<Vec<u8>>> {
        let referencing = self.config.referencing;
        if apdu.first() == Some(&AARQ_TAG) {
            let aarq = Aarq::decode(apdu).ok()?;
            self.sn.association = None;
            self.sn.pending = None;
            return match (aarq.application_context, referencing) {
                (ApplicationContext::ShortName, Referencing::Sn | Referencing::Auto) => {
                    Some(Some(self.associate_sn(aarq, now)))
                }
                (ApplicationContext::ShortNameCiphered, Referencing::Sn | Referencing::Auto) => {
                    Some(Some(self.associate_sn_ciphered(aarq, now)))
                }
                // Green Book 9.4.2.2.2: a context the meter does not speak is refused with
                // application-context-name-not-supported.
                (
                    ApplicationContext::LogicalName | ApplicationContext::LogicalNameCiphered,
                    Referencing::Sn,
                ) => Some(Some(
                    Aare {
                        application_context: aarq.application_context,
                        result: AssociationResult::RejectedPermanent,
                        diagnostic: ResultSourceDiagnostic::User(2),
                        responding_ap_title: None,
                        mechanism: aarq.mechanism,
                        responding_authentication_value: None,
                        user_information: None,
                    }
                    .encode(),
                )),
                _ => None,
            };
        }
        let (granted, client_pdu) = self.sn.association?;
        let answer = match SnApdu::decode(apdu) {
            Ok(Some(SnApdu::ReadRequest(req))) => self.sn_read(req, granted, client_pdu, now),
            Ok(Some(SnApdu::WriteRequest(req))) => self.sn_write(req, now),
            Ok(Some(SnApdu::UnconfirmedWriteRequest(req))) => {
                let _ = self.sn_write(req, now);
                return Some(None);
            }
            Ok(_) => return None,
            Err(_) => super::exception(2, 2),
        };
        Some(Some(answer))
    }

    /// The LN association under the SN one: same authentication, every LN service, the
    /// answer turned back into an SN AARE (context, conformance, vaa-name 0xFA00).
    fn associate_sn(&mut self, mut aarq: Aarq, now: i64) -> Vec<u8> {
        let proposed = aarq
            .user_information
            .as_deref()
            .and_then(|ui| InitiateRequest::decode(ui).ok());
        if let Some(mut initiate) = proposed.clone() {
            // Every LN service underneath (the client's PDU size and DLMS version are checked
            // there as for an LN client); long LN answers are followed by `ln_get`.
            initiate.proposed_conformance = super::SERVER_CONFORMANCE;
            aarq.user_information = Some(initiate.encode());
        }
        aarq.application_context = ApplicationContext::LogicalName;
        let answer = self.handle_ln(&aarq.encode(), now).unwrap_or_default();
        let Ok(mut aare) = Aare::decode(&answer) else {
            return answer;
        };
        aare.application_context = ApplicationContext::ShortName;
        if let (AssociationResult::Accepted, Some(proposed)) = (aare.result, proposed) {
            let ln = aare
                .user_information
                .as_deref()
                .and_then(|ui| InitiateResponse::decode(ui).ok());
            if let Some(mut response) = ln {
                let granted = proposed.proposed_conformance.intersect(SN_CONFORMANCE);
                response.negotiated_conformance = granted;
                response.vaa_name = VAA_NAME_SN;
                aare.user_information = Some(response.encode());
                let pdu = proposed
                    .client_max_receive_pdu_size
                    .min(self.config.max_receive_pdu);
                self.sn.association = Some((granted, usize::from(pdu)));
            }
        }
        aare.encode()
    }

    /// A ciphered SN association: the ciphered LN one underneath (its InitiateRequest and
    /// InitiateResponse stay ciphered, so they pass unchanged: the client reads its granted
    /// SN services from the bits both sides share); answers are ciphered by `handle`.
    fn associate_sn_ciphered(&mut self, mut aarq: Aarq, now: i64) -> Vec<u8> {
        aarq.application_context = ApplicationContext::LogicalNameCiphered;
        let answer = self.handle_ln(&aarq.encode(), now).unwrap_or_default();
        let Ok(mut aare) = Aare::decode(&answer) else {
            return answer;
        };
        aare.application_context = ApplicationContext::ShortNameCiphered;
        if aare.result == AssociationResult::Accepted {
            let pdu = self
                .association
                .map_or(usize::from(self.config.max_receive_pdu), |(_, pdu)| pdu);
            self.sn.association = Some((SN_CONFORMANCE, pdu));
        }
        aare.encode()
    }

    fn sn_objects(&self) -> Vec<SnObject> {
        let mut objects: Vec<SnObject> = self
            .model
            .objects()
            .into_iter()
            .filter(|(class, _)| *class != CLASS_ASSOCIATION_LN)
            .enumerate()
            .filter_map(|(i, (class_id, instance))| {
                let base = u16::try_from(i + 1).ok()?.checked_mul(0x100)?;
                (base < CURRENT_ASSOCIATION_BASE).then_some(SnObject {
                    base_name: base,
                    class_id,
                    version: 0,
                    instance,
                })
            })
            .collect();
        objects.push(SnObject {
            base_name: CURRENT_ASSOCIATION_BASE,
            class_id: 12,
            version: 4,
            instance: Obis::new(0, 0, 40, 0, 0, 255),
        });
        objects
    }

    fn resolve(&self, name: u16) -> Option<Target> {
        if name == OBJECT_LIST {
            return Some(Target::ObjectList);
        }
        let object = self
            .sn_objects()
            .into_iter()
            .find(|o| o.base_name == name & 0xFF00 && o.class_id != 12)?;
        let offset = name - object.base_name;
        if !offset.is_multiple_of(8) {
            return None;
        }
        let index = i8::try_from(offset / 8 + 1).ok()?;
        if let Some((first, count)) = first_method_offset(object.class_id) {
            if offset >= first && (offset - first) / 8 < count as u16 {
                let method = i8::try_from((offset - first) / 8 + 1).ok()?;
                return Some(Target::Method(MethodDescriptor::new(
                    object.class_id,
                    object.instance,
                    method,
                )));
            }
        }
        Some(Target::Attribute(AttributeDescriptor::new(
            object.class_id,
            object.instance,
            index,
        )))
    }

    /// One LN GET (its LN block transfer followed here), as the value an SN read returns.
    fn ln_get(
        &mut self,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
        now: i64,
    ) -> Result<Data, DataAccessResult> {
        let mut request = GetRequest::Normal {
            invoke: INVOKE,
            attribute,
            access,
        };
        let mut raw = Vec::new();
        loop {
            let answer = self.handle_ln(&request.encode(), now).unwrap_or_default();
            match GetResponse::decode(&answer) {
                Ok(GetResponse::Normal { result, .. }) => return result,
                Ok(GetResponse::WithDatablock {
                    last_block,
                    block_number,
                    raw: block,
                    ..
                }) => {
                    raw.extend_from_slice(&block?);
                    if last_block {
                        return Data::decode(&raw).map_err(|_| DataAccessResult::OTHER_REASON);
                    }
                    request = GetRequest::Next {
                        invoke: INVOKE,
                        block_number,
                    };
                }
                _ => return Err(DataAccessResult::OTHER_REASON),
            }
        }
    }

    fn sn_read(
        &mut self,
        req: ReadRequest,
        granted: Conformance,
        client_pdu: usize,
        now: i64,
    ) -> Vec<u8> {
        if let [VariableAccess::BlockNumber(n)] = req.items.as_slice() {
            return self.sn_next_block(*n);
        }
        self.sn.pending = None;
        let results: Vec<ReadResult> = req
            .items
            .iter()
            .map(|item| {
                let (name, access) = match item {
                    VariableAccess::Name(n) => (*n, None),
                    VariableAccess::Parameterized {
                        name,
                        selector,
                        parameter,
                    } => (
                        *name,
                        Some(SelectiveAccess {
                            selector: *selector,
                            parameters: parameter.clone(),
                        }),
                    ),
                    _ => return ReadResult::Error(DataAccessResult(250)),
                };
                if let (REPLY_TO_HLS, Some(proof)) = (name, &access) {
                    return self.sn_reply_to_hls(proof.parameters.clone(), now);
                }
                let result = match self.resolve(name) {
                    Some(Target::ObjectList) => Ok(Data::Array(
                        self.sn_objects().iter().map(SnObject::to_data).collect(),
                    )),
                    Some(Target::Attribute(a)) => self.ln_get(a, access, now),
                    _ => Err(DataAccessResult::OBJECT_UNDEFINED),
                };
                match result {
                    Ok(d) => ReadResult::Data(d),
                    Err(e) => ReadResult::Error(e),
                }
            })
            .collect();
        let single = results.len() == 1;
        let response = ReadResponse { results };
        let encoded = response.encode();
        if encoded.len() <= client_pdu {
            return encoded;
        }
        if !granted.has(BLOCK_READ) {
            return ReadResponse {
                results: vec![ReadResult::Error(DataAccessResult::OTHER_REASON)],
            }
            .encode();
        }
        // The raw data: one Data alone, else the count and the results (the response without
        // its tag).
        let raw = match (single, response.results.first()) {
            (true, Some(ReadResult::Data(d))) => d.to_bytes(),
            _ => encoded[1..].to_vec(),
        };
        // Header of a block answer: 0C 01 02 last(1) number(2) length(<=3).
        let chunk = client_pdu.saturating_sub(9).max(1);
        self.sn.pending = Some(PendingRead {
            raw,
            chunk,
            sent: 0,
        });
        self.sn_next_block(0)
    }

    /// HLS pass 3 over short names: Association SN method 8 read with its parameter, served
    /// as the LN reply_to_HLS_authentication underneath (which checks f(StoC), and drops the
    /// association when it does not verify); what that returns, f(CtoS), is the read's data.
    fn sn_reply_to_hls(&mut self, proof: Data, now: i64) -> ReadResult {
        let request = ActionRequest::Normal {
            invoke: INVOKE,
            method: MethodDescriptor::new(CLASS_ASSOCIATION_LN, Obis::new(0, 0, 40, 0, 0, 255), 1),
            parameters: Some(proof),
        };
        let answer = self.handle_ln(&request.encode(), now).unwrap_or_default();
        match ActionResponse::decode(&answer) {
            Ok(ActionResponse::Normal {
                return_parameters: Some(Ok(data)),
                ..
            }) => ReadResult::Data(data),
            Ok(ActionResponse::Normal { result, .. }) if result != DataAccessResult::SUCCESS => {
                self.sn.association = None;
                ReadResult::Error(result)
            }
            _ => ReadResult::Error(DataAccessResult::OTHER_REASON),
        }
    }

    fn sn_next_block(&mut self, acknowledged: u16) -> Vec<u8> {
        let refuse = |code| {
            ReadResponse {
                results: vec![ReadResult::Error(DataAccessResult(code))],
            }
            .encode()
        };
        let Some(p) = self.sn.pending.as_mut() else {
            return refuse(16); // no-long-get-in-progress
        };
        if acknowledged != p.sent {
            self.sn.pending = None;
            return refuse(19); // data-block-number-invalid
        }
        let start = usize::from(p.sent) * p.chunk;
        let end = (start + p.chunk).min(p.raw.len());
        let last = end >= p.raw.len();
        // SN block numbers are 16 bits: an answer that needs more blocks is refused.
        let Some(next) = p.sent.checked_add(1) else {
            self.sn.pending = None;
            return refuse(250);
        };
        p.sent = next;
        let block = SnDataBlock {
            last_block: last,
            block_number: p.sent,
            raw_data: p.raw.get(start..end).unwrap_or_default().to_vec(),
        };
        if last {
            self.sn.pending = None;
        }
        ReadResponse {
            results: vec![ReadResult::DataBlock(block)],
        }
        .encode()
    }

    fn sn_write(&mut self, req: WriteRequest, now: i64) -> Vec<u8> {
        if req.items.len() != req.values.len() {
            return super::exception(2, 2);
        }
        let results = req
            .items
            .iter()
            .zip(req.values)
            .map(|(item, value)| {
                let VariableAccess::Name(name) = item else {
                    return WriteResult::Error(DataAccessResult(250));
                };
                let result = match self.resolve(*name) {
                    Some(Target::Attribute(attribute)) => {
                        let set = SetRequest::Normal {
                            invoke: INVOKE,
                            attribute,
                            access: None,
                            value,
                        };
                        match self
                            .handle_ln(&set.encode(), now)
                            .as_deref()
                            .map(SetResponse::decode)
                        {
                            Some(Ok(SetResponse::Normal { result, .. })) => result,
                            _ => DataAccessResult::OTHER_REASON,
                        }
                    }
                    Some(Target::Method(method)) => {
                        let action = ActionRequest::Normal {
                            invoke: INVOKE,
                            method,
                            parameters: Some(value),
                        };
                        match self
                            .handle_ln(&action.encode(), now)
                            .as_deref()
                            .map(ActionResponse::decode)
                        {
                            Some(Ok(ActionResponse::Normal { result, .. })) => result,
                            _ => DataAccessResult::OTHER_REASON,
                        }
                    }
                    _ => DataAccessResult::OBJECT_UNDEFINED,
                };
                if result == DataAccessResult::SUCCESS {
                    WriteResult::Success
                } else {
                    WriteResult::Error(result)
                }
            })
            .collect();
        WriteResponse { results }.encode()
    }
}
