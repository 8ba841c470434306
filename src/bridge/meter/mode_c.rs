//! A meter read by IEC 62056-21 data readout (`protocol mode-c`): one readout per slot (the
//! sign-on each time: a readout meter keeps no session), its data sets mapped to the meter's
//! measurements by OBIS code with the units the meter wrote, published like DLMS readings.
//! The schedule, backoff and breaker are the DLMS meters' ([`PollCycle`], `drive`).

use super::drive::Flow;
use super::poll::{PollCycle, Step};
use super::Worker;
use crate::bridge::event::Event;
use crate::bridge::mqtt::ToPublisher;
use crate::bridge::rpc::{MeterCall, RpcCall};
use crate::client::mode_c::{self, Readout};
use crate::clock::now_ms;
use crate::status::state::MeterState;
use log::{info, warn};
use serde_json::{json, Map, Value};
use std::time::Instant;

impl Worker {
    pub(super) fn run_mode_c(mut self) {
        let name = self.config.name.clone();
        let Some(target) = self.config.target() else {
            warn!("meter {name:?}: invalid configuration, not polled");
            return;
        };
        let endpoint = match &self.bus {
            Some(bus) => crate::client::Endpoint::Bus(bus.clone()),
            None => target.endpoint,
        };
        let mut cycle = self.new_cycle();
        let mut identity_sent = false;
        info!(
            "meter {name:?}: IEC 62056-21 readout from {endpoint} every {} s",
            self.config.interval_s
        );
        self.drive(
            &mut cycle,
            &mut (),
            |w, (), call, cycle| w.serve_mode_c_rpc(call, cycle),
            |w, (), cycle, step| w.readout_slot(&endpoint, cycle, step, &mut identity_sent),
        );
        info!("meter {name:?}: stopped");
    }

    /// One due slot of a readout meter: sign on, read the whole readout, deliver the
    /// measurements it has.
    fn readout_slot(
        &mut self,
        endpoint: &crate::client::Endpoint,
        cycle: &mut PollCycle,
        step: Step,
        identity_sent: &mut bool,
    ) -> Flow {
        let name = self.config.name.clone();
        let ts_ms = now_ms();
        if step == Step::Connect {
            self.set_state(MeterState::Connecting);
        }
        match mode_c::read(endpoint, &self.config.readout_options()) {
            Ok(readout) => {
                cycle.connected();
                cycle.read_ok(false);
                self.status.update_meter(&name, |m| {
                    m.net.bytes_received += readout.bytes_received;
                    m.net.round_trips += 1;
                });
                // A gateway clock that is not set stamps nothing (gateway_clock.rs): the
                // meter's own date and time in the readout do, as a DLMS meter's clock
                // does; without them the reading is held back.
                let ts_ms = if self.status.gateway_clock.trusted(ts_ms) {
                    ts_ms
                } else {
                    let offset = self.config.utc_offset_min;
                    match crate::iec21::clock::meter_time(&readout.data_sets)
                        .and_then(|t| t.to_unix_local(offset))
                    {
                        Some(t) => t * 1000,
                        None => {
                            self.status.update_meter(&name, |m| {
                                m.note_error(
                                    "reading held back: the gateway clock is not set and \
                                     the readout has no date and time (0.9.2, 0.9.1)"
                                        .into(),
                                )
                            });
                            return Flow::Next;
                        }
                    }
                };
                if !*identity_sent {
                    *identity_sent = self.send_readout_identity(&readout, ts_ms);
                }
                if !self.deliver_readout(ts_ms, &readout) {
                    return Flow::Stop;
                }
            }
            Err(e) => {
                if let crate::client::ClientError::NoAnswer { .. } = &e {
                    self.status.update_meter(&name, |m| m.net.timeouts += 1);
                }
                self.connect_failed(cycle, &e, "failed readouts");
            }
        }
        Flow::Next
    }

    /// The readout's values of this meter's measurements.
    fn deliver_readout(&self, ts_ms: i64, readout: &Readout) -> bool {
        let (mut map, mut units, mut errors) = (Map::new(), Map::new(), Vec::new());
        let wanted = self
            .config
            .measurements
            .iter()
            .map(|m| (m.key.as_str(), m.obis));
        let picked = mode_c::pick(&readout.data_sets, wanted);
        for ((key, found), m) in picked.into_iter().zip(&self.config.measurements) {
            match found {
                Some((value, unit)) => {
                    map.insert(key.to_string(), value);
                    if let Some(u) = unit {
                        units.insert(key.to_string(), json!(u));
                    }
                }
                None => errors.push(format!("{key} ({}): not in the meter's readout", m.obis)),
            }
        }
        if let Some(code) = crate::iec21::data_set::error_code(&readout.data_sets) {
            errors.push(format!("the meter reports error code F.F({code})"));
        }
        self.publish(ts_ms, map, units, errors)
    }

    /// The identification and the serial number (C.1.0 or 0.0.0 where the readout has
    /// one) as ThingsBoard attributes, once per worker.
    fn send_readout_identity(&self, readout: &Readout, ts_ms: i64) -> bool {
        let id = &readout.identification;
        let mut attrs = Map::new();
        attrs.insert(
            "identification".into(),
            json!(format!(
                "/{}{}{}",
                id.manufacturer,
                char::from(id.baud_char),
                id.ident
            )),
        );
        let serial = [
            crate::cosem::Obis::new(0, 0, 96, 1, 0, 255),
            crate::cosem::Obis::new(1, 0, 0, 0, 0, 255),
        ]
        .into_iter()
        .find_map(|o| crate::iec21::data_set::find(&readout.data_sets, o))
        .and_then(|s| s.groups.first());
        if let Some(serial) = serial {
            attrs.insert("serialNumber".into(), json!(serial.value));
        }
        let obis_map: Map<String, Value> = self
            .config
            .measurements
            .iter()
            .map(|m| (m.key.clone(), json!(m.obis.to_string())))
            .collect();
        attrs.insert("obisMap".into(), Value::Object(obis_map));
        attrs.insert("deviceType".into(), json!(self.config.device_type));
        attrs.insert("protocol".into(), json!("IEC 62056-21"));
        self.events
            .send(Event::Attributes {
                device: self.config.name.clone(),
                ts_ms,
                values: attrs,
            })
            .is_ok()
    }

    /// A readout meter answers `poll_now` only: it has no objects to get, set or act on.
    fn serve_mode_c_rpc(&self, call: RpcCall, cycle: &mut PollCycle) {
        if Instant::now() >= call.deadline {
            return;
        }
        let result = if call.call == MeterCall::PollNow {
            cycle.poll_now(Instant::now());
            Ok(json!({"polled": true}))
        } else {
            Err(format!(
                "{}: meter {:?} is read by IEC 62056-21 readout (protocol mode-c): only \
                 poll_now is answered",
                call.method, self.config.name
            ))
        };
        let _ = self.to_publisher.send(ToPublisher::RpcReply {
            reply: call.reply,
            result,
        });
    }
}
