//! What a simulated meter pushes, sans-I/O: a DATA-NOTIFICATION of its registers (structures of
//! OBIS, value, scaler_unit, the layout of Aidon's HAN port) in HDLC UI frames, or with
//! `gbt` in general block transfer the way Landis+Gyr E450 meters push (IEC 62056-5-3 9.3.11):
//! streaming blocks with window 0 (nothing is acknowledged), one per frame, the LLC header
//! in the first frame only.

use super::model::MeterModel;
use crate::dlms::axdr::{Data, DateTime};
use crate::dlms::hdlc::{Control, Frame, RawAddress, LLC_RESPONSE};
use crate::dlms::xdlms::gbt::GeneralBlock;
use crate::dlms::xdlms::notification::DataNotification;

/// The HDLC address the simulator pushes from (the E450 capture's: server 1).
pub const PUSH_SOURCE: u8 = 1;

/// Data bytes per GBT block (an E450 sends about 110).
const BLOCK_DATA: usize = 110;

/// The notification of `model`'s registers at Unix time `now` (UTC).
pub fn notification(model: &MeterModel, now: i64, invoke: u32) -> Vec<u8> {
    let entries = MeterModel::register_codes()
        .into_iter()
        .filter_map(|obis| {
            let value = model.get(3, obis, 2, None, now).ok()?;
            let scaler_unit = model.get(3, obis, 3, None, now).ok()?;
            Some(Data::Structure(vec![
                Data::OctetString(obis.0.to_vec()),
                value,
                scaler_unit,
            ]))
        })
        .collect();
    DataNotification {
        long_invoke_id: invoke,
        date_time: Some(DateTime::from_unix(now, 0)),
        body: Data::Array(entries),
    }
    .encode()
}

/// The frames that carry `apdu`: one UI frame, or with `gbt` one frame per block.
pub fn frames(apdu: &[u8], gbt: bool) -> Vec<Vec<u8>> {
    let infos: Vec<Vec<u8>> = if gbt {
        GeneralBlock::split(apdu, BLOCK_DATA, 0, 0)
            .unwrap_or_default()
            .into_iter()
            .map(|mut block| {
                // The E450 marks every block of its push as streamed (0x40, last 0xC0).
                block.control.streaming = true;
                block.encode()
            })
            .collect()
    } else {
        vec![apdu.to_vec()]
    };
    infos
        .into_iter()
        .enumerate()
        .filter_map(|(i, data)| {
            let mut info = if i == 0 {
                LLC_RESPONSE.to_vec()
            } else {
                Vec::new()
            };
            info.extend_from_slice(&data);
            Frame {
                segmented: false,
                destination: RawAddress::client(0x10),
                source: RawAddress::client(PUSH_SOURCE),
                control: Control::Ui { poll: true },
                info,
            }
            .emit()
            .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::push::{PushStream, Receiver};

    #[test]
    fn pushes_in_gbt_frames_decode_to_the_model_values() {
        let model = MeterModel::new(2, 0);
        let now = 1_796_025_600;
        let apdu = notification(&model, now, 7);
        let plain = frames(&apdu, false);
        let gbt = frames(&apdu, true);
        assert_eq!(plain.len(), 1);
        assert!(gbt.len() >= 3, "{} frames", gbt.len());
        // The LLC header in the first frame only; every block streamed, the last one last.
        assert_eq!(&gbt[0][8..12], &[0xE6, 0xE7, 0x00, 0xE0]);
        assert_eq!(gbt[0][12], 0x40);
        assert_eq!(gbt[1][8..10], [0xE0, 0x40]);
        assert_eq!(gbt.last().unwrap()[9], 0xC0);
        for frames in [plain, gbt] {
            let mut r = Receiver::new(None, Vec::new(), 0);
            let got: Vec<_> = frames.iter().flat_map(|f| r.push_bytes(f)).collect();
            assert_eq!(got.len(), 1);
            let p = got[0].as_ref().unwrap();
            assert_eq!(p.time_s, Some(now));
            let energy = model
                .truth(super::super::model::ENERGY_IMPORT, now)
                .unwrap();
            let (_, value) = p
                .values
                .iter()
                .find(|(o, _)| *o == super::super::model::ENERGY_IMPORT)
                .unwrap();
            assert_eq!(
                crate::client::json::value(value).0,
                serde_json::json!(energy.raw)
            );
        }
        let mut stream = PushStream::serial();
        let one: Vec<u8> = frames(&apdu, true).concat();
        assert_eq!(stream.push(&one).unwrap()[0].apdu, apdu);
        assert_eq!(stream.gbt_dropped(), 0);
    }
}
