//! The meter side of an association, sans-I/O: one APDU in, at most one APDU out.
//!
//! It accepts AARQs with no authentication or with the configured LLS password, negotiates
//! conformance and PDU size, answers GET (normal, with-list, with block transfer when the answer
//! exceeds the client's receive size), SET of the clock, and RLRQ. Anything else gets the
//! answer a strict meter would give.

use super::model::{MeterModel, CLASS_CLOCK, CLOCK};
use crate::dlms::acse::{
    Aare, Aarq, ApplicationContext, AssociationResult, Mechanism, ReleaseReason,
    ResultSourceDiagnostic, Rlre,
};
use crate::dlms::axdr::Data;
use crate::dlms::xdlms::{
    Apdu, ConfirmedServiceError, Conformance, DataAccessResult, ExceptionResponse, GetDataResult,
    GetRequest, GetResponse, InitiateRequest, InitiateResponse, InvokeIdAndPriority, SetRequest,
    SetResponse, DLMS_VERSION, VAA_NAME_LN,
};

/// What the simulated meter grants.
pub const SERVER_CONFORMANCE: Conformance = Conformance(
    Conformance::BLOCK_TRANSFER_WITH_GET
        | Conformance::MULTIPLE_REFERENCES
        | Conformance::GET
        | Conformance::SET
        | Conformance::SELECTIVE_ACCESS
        | Conformance::ACTION,
);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// LLS password; `None` accepts clients without authentication.
    pub password: Option<Vec<u8>>,
    pub max_receive_pdu: u16,
    pub conformance: Conformance,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            password: None,
            max_receive_pdu: 1024,
            conformance: SERVER_CONFORMANCE,
        }
    }
}

#[derive(Debug)]
struct PendingBlocks {
    invoke: InvokeIdAndPriority,
    data: Vec<u8>,
    chunk: usize,
    sent: u32,
}

#[derive(Debug)]
pub struct ServerSession {
    model: MeterModel,
    config: ServerConfig,
    /// (granted conformance, client's max receive PDU).
    association: Option<(Conformance, usize)>,
    pending: Option<PendingBlocks>,
    /// Seconds added to the system clock (the meter's clock after a SET).
    pub clock_offset: i64,
}

impl ServerSession {
    pub fn new(model: MeterModel, config: ServerConfig) -> Self {
        ServerSession {
            model,
            config,
            association: None,
            pending: None,
            clock_offset: 0,
        }
    }

    pub fn is_associated(&self) -> bool {
        self.association.is_some()
    }

    /// Handles one request APDU at system time `now` (Unix seconds).
    pub fn handle(&mut self, apdu: &[u8], now: i64) -> Option<Vec<u8>> {
        let meter_now = now + self.clock_offset;
        let decoded = match Apdu::decode(apdu) {
            Ok(a) => a,
            Err(_) => return Some(exception(2, 2)),
        };
        match decoded {
            Apdu::Aarq(aarq) => Some(self.associate(&aarq)),
            Apdu::Rlrq(_) => {
                self.association = None;
                self.pending = None;
                Some(
                    Rlre {
                        reason: Some(ReleaseReason::Normal),
                        user_information: None,
                    }
                    .encode(),
                )
            }
            Apdu::GetRequest(req) => Some(match self.association {
                None => exception(1, 1),
                Some((conformance, client_pdu)) => {
                    self.get(req, conformance, client_pdu, meter_now)
                }
            }),
            Apdu::SetRequest(req) => Some(match self.association {
                None => exception(1, 1),
                Some(_) => self.set(req, now),
            }),
            _ => Some(exception(2, 2)),
        }
    }

    fn associate(&mut self, aarq: &Aarq) -> Vec<u8> {
        self.association = None;
        let reject = |diag: u8, ui: Option<Vec<u8>>| {
            Aare {
                application_context: aarq.application_context,
                result: AssociationResult::RejectedPermanent,
                diagnostic: ResultSourceDiagnostic::User(diag),
                responding_ap_title: None,
                mechanism: aarq.mechanism,
                responding_authentication_value: None,
                user_information: ui,
            }
            .encode()
        };
        if aarq.application_context != ApplicationContext::LogicalName {
            return reject(2, None);
        }
        match (
            &self.config.password,
            aarq.mechanism,
            &aarq.calling_authentication_value,
        ) {
            (None, None | Some(Mechanism::Lowest), _) => {}
            (None, Some(_), _) => return reject(11, None),
            (Some(_), None | Some(Mechanism::Lowest), _) => return reject(14, None),
            (Some(pw), Some(Mechanism::Low), Some(given)) if pw == given => {}
            (Some(_), Some(Mechanism::Low), _) => return reject(13, None),
            (Some(_), Some(_), _) => return reject(11, None),
        }
        let Some(initiate) = aarq
            .user_information
            .as_deref()
            .and_then(|ui| InitiateRequest::decode(ui).ok())
        else {
            return reject(1, None);
        };
        let initiate_error = |code| {
            Some(
                ConfirmedServiceError {
                    service: 1,
                    error_class: 6,
                    error: code,
                }
                .encode(),
            )
        };
        if initiate.proposed_dlms_version < DLMS_VERSION {
            return reject(1, initiate_error(1));
        }
        if initiate.client_max_receive_pdu_size < 64 {
            return reject(1, initiate_error(3));
        }
        let granted = initiate
            .proposed_conformance
            .intersect(self.config.conformance);
        // Answers are limited by the client's receive size and by our own PDU size, as on
        // real meters (their send buffer is their receive buffer).
        let pdu = initiate
            .client_max_receive_pdu_size
            .min(self.config.max_receive_pdu);
        self.association = Some((granted, usize::from(pdu)));
        self.pending = None;
        Aare {
            application_context: ApplicationContext::LogicalName,
            result: AssociationResult::Accepted,
            diagnostic: ResultSourceDiagnostic::User(0),
            responding_ap_title: None,
            mechanism: aarq.mechanism,
            responding_authentication_value: None,
            user_information: Some(
                InitiateResponse {
                    negotiated_quality_of_service: None,
                    negotiated_dlms_version: DLMS_VERSION,
                    negotiated_conformance: granted,
                    server_max_receive_pdu_size: self.config.max_receive_pdu,
                    vaa_name: VAA_NAME_LN,
                }
                .encode(),
            ),
        }
        .encode()
    }

    fn get(
        &mut self,
        req: GetRequest,
        conformance: Conformance,
        client_pdu: usize,
        now: i64,
    ) -> Vec<u8> {
        let read =
            |a: &crate::dlms::xdlms::AttributeDescriptor, access: &Option<_>| -> GetDataResult {
                self.model
                    .get(a.class_id, a.instance, a.attribute, access.as_ref(), now)
            };
        let (invoke, response, raw) = match req {
            GetRequest::Normal {
                invoke,
                attribute,
                access,
            } => {
                let result = read(&attribute, &access);
                let raw = result.as_ref().ok().map(Data::to_bytes);
                (invoke, GetResponse::Normal { invoke, result }, raw)
            }
            GetRequest::WithList { invoke, items } => {
                if !conformance.has(Conformance::MULTIPLE_REFERENCES) {
                    return exception(1, 2);
                }
                let results: Vec<GetDataResult> = items.iter().map(|(a, s)| read(a, s)).collect();
                let response = GetResponse::WithList { invoke, results };
                // The raw data of a list in blocks is the count and the results (9.3.7):
                // the response without its tag, choice and invoke-id bytes.
                let raw = response.encode()[3..].to_vec();
                (invoke, response, Some(raw))
            }
            GetRequest::Next {
                invoke,
                block_number,
            } => return self.next_block(invoke, block_number),
        };
        let encoded = response.encode();
        if encoded.len() <= client_pdu {
            return encoded;
        }
        match raw {
            Some(data) if conformance.has(Conformance::BLOCK_TRANSFER_WITH_GET) => {
                // Header of a block response: C4 02 iip last(1) number(4) choice(1) length(<=3).
                let chunk = client_pdu.saturating_sub(12).max(1);
                self.pending = Some(PendingBlocks {
                    invoke,
                    data,
                    chunk,
                    sent: 0,
                });
                self.next_block(invoke, 0)
            }
            _ => GetResponse::Normal {
                invoke,
                result: Err(DataAccessResult::OTHER_REASON),
            }
            .encode(),
        }
    }

    /// Sends the block after `acknowledged` (Green Book 9.3.7: the client acknowledges the last
    /// block number it received).
    fn next_block(&mut self, invoke: InvokeIdAndPriority, acknowledged: u32) -> Vec<u8> {
        let abort = |code| GetResponse::WithDatablock {
            invoke,
            last_block: true,
            block_number: acknowledged.wrapping_add(1),
            raw: Err(DataAccessResult(code)),
        };
        let Some(p) = self.pending.as_mut() else {
            return abort(16).encode(); // no-long-get-in-progress
        };
        if acknowledged != p.sent {
            self.pending = None;
            return abort(19).encode(); // data-block-number-invalid
        }
        let start = p.sent as usize * p.chunk;
        let end = (start + p.chunk).min(p.data.len());
        p.sent += 1;
        let last = end >= p.data.len();
        let response = GetResponse::WithDatablock {
            invoke: p.invoke,
            last_block: last,
            block_number: p.sent,
            raw: Ok(p.data[start..end].to_vec()),
        };
        if last {
            self.pending = None;
        }
        response.encode()
    }

    fn set(&mut self, req: SetRequest, now: i64) -> Vec<u8> {
        let SetRequest::Normal {
            invoke,
            attribute,
            value,
            ..
        } = req
        else {
            return exception(1, 2);
        };
        let result = if (attribute.class_id, attribute.instance, attribute.attribute)
            == (CLASS_CLOCK, CLOCK, 2)
        {
            match value.as_date_time().and_then(|d| d.to_unix()) {
                Some(t) => {
                    self.clock_offset = t - now;
                    DataAccessResult::SUCCESS
                }
                None => DataAccessResult(12), // type-unmatched
            }
        } else if self
            .model
            .has_object(attribute.class_id, attribute.instance)
        {
            DataAccessResult::READ_WRITE_DENIED
        } else {
            DataAccessResult::OBJECT_UNDEFINED
        };
        SetResponse::Normal { invoke, result }.encode()
    }
}

fn exception(state: u8, service: u8) -> Vec<u8> {
    ExceptionResponse {
        state_error: state,
        service_error: service,
        invocation_counter: None,
    }
    .encode()
}
