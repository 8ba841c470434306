//! IEC 62056-21 decoders from untrusted bytes (a meter, a line, a TCP serial server): the
//! identification, the data message and its data sets (and the meter's time in them), the
//! streaming reader and the simulator's side. No panic; an accepted readout re-encodes (`DataSet::to_line`, framed with
//! its BCC) to the same data sets; the reader fed in two pieces agrees with the whole.
#![no_main]
use dlms_bridge::iec21::message::{data_message, parse_data_message, ReadoutReader};
use dlms_bridge::iec21::sign_on::{parse_identification, ProtocolMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = parse_identification(data) {
        let proposed = id.proposed_baud();
        assert!((300..=19200).contains(&proposed));
        if id.mode == ProtocolMode::A {
            assert_eq!(proposed, 300);
        }
    }
    let _ = dlms_bridge::client::mode_e::parse_identification(data);
    let _ = dlms_bridge::client::mode_e::is_readout(data);
    let whole = parse_data_message(data);
    if let Ok(sets) = &whole {
        if let Some(t) = dlms_bridge::iec21::clock::meter_time(sets) {
            assert!(t.to_unix_local(0).is_some());
        }
        let mut block = String::new();
        for set in sets {
            let _ = set.obis();
            let _ = set.reading();
            block.push_str(&set.to_line());
            block.push_str("\r\n");
        }
        let again = parse_data_message(&data_message(block.as_bytes()));
        assert_eq!(again.as_ref(), Ok(sets), "{block:?}");
    }
    // The reader in two pieces: a message it completes parses as the bytes from STX on.
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut reader = ReadoutReader::new();
    let got = reader.push(&data[..cut]).or_else(|| reader.push(&data[cut..]));
    if let (Some(Ok(sets)), Ok(whole)) = (&got, &whole) {
        assert_eq!(sets, whole);
    }
    // The simulator's meter takes any bytes a client sends.
    let mut meter = dlms_bridge::sim::mode_c::ReadoutMeter::new(
        dlms_bridge::sim::MeterModel::new(1, 0),
        dlms_bridge::sim::mode_c::ReadoutMode::C,
    );
    let _ = meter.receive(data, 0);
});
