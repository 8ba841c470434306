//! SN codec vectors. Requests: emitted by gurux-dlms 1.0.203's GXDLMSClient with
//! useLogicalNameReferencing=False (and GXDLMSNotify for the InformationReport); responses:
//! written per the Green Book and read back by Gurux's SN client, whose reading is the value
//! asserted here. All printed by `python3 tests/interop/gen_sn_vectors.py`.

use super::*;
use crate::cosem::Obis;
use crate::dlms::acse::Aarq;
use crate::dlms::axdr::{Data, DateTime};
use crate::dlms::test_util::hex;
use crate::dlms::xdlms::{
    CaptureObject, Conformance, DataAccessResult, InitiateRequest, SelectiveAccess,
};

fn round_trip(bytes: &[u8]) -> SnApdu {
    let apdu = SnApdu::decode(bytes).unwrap().unwrap();
    assert_eq!(apdu.encode(), bytes);
    apdu
}

#[test]
fn read_register_value_and_scaler_like_gurux() {
    // Register base name 0x2000: value (attribute 2) at 0x2008, scaler_unit (3) at 0x2010.
    let base = 0x2000;
    let value = names::attribute_name(base, 2).unwrap();
    let scaler = names::attribute_name(base, 3).unwrap();
    let req = ReadRequest {
        items: vec![VariableAccess::Name(value)],
    };
    assert_eq!(req.encode(), hex("0501022008"));
    let req = ReadRequest {
        items: vec![VariableAccess::Name(scaler)],
    };
    assert_eq!(req.encode(), hex("0501022010"));
    let two = ReadRequest {
        items: vec![VariableAccess::Name(value), VariableAccess::Name(scaler)],
    };
    assert_eq!(two.encode(), hex("0502022008022010"));
    assert_eq!(round_trip(&two.encode()), SnApdu::ReadRequest(two));
    assert_eq!(
        ReadRequest {
            items: vec![VariableAccess::Name(names::OBJECT_LIST)]
        }
        .encode(),
        hex("050102FA08")
    );
}

#[test]
fn profile_range_and_entries_are_parameterized_access_like_gurux() {
    // Profile base 0x3000: buffer (attribute 2) at 0x3008, selector 1 (range) with the
    // clock's time as restricting object; Gurux writes the dates without deviation (0x0000).
    let mut from = DateTime::from_unix(1_795_478_400, 0); // 2026-11-24 00:00
    let mut to = DateTime::from_unix(1_795_482_000, 0); // 01:00
    for d in [&mut from, &mut to] {
        d.date.day_of_week = 0xFF;
    }
    let range = SelectiveAccess::profile_range(CaptureObject::CLOCK_TIME, from, to, &[]);
    let req = ReadRequest {
        items: vec![VariableAccess::Parameterized {
            name: 0x3008,
            selector: range.selector,
            parameter: range.parameters,
        }],
    };
    assert_eq!(
        req.encode(),
        hex("0501043008010204020412000809060000010000FF0F02120000\
             090C07EA0B18FF00000000000000090C07EA0B18FF010000000000000100")
    );
    round_trip(&req.encode());
    let entries = SelectiveAccess::profile_entries(1, 4, 1, 0);
    let req = ReadRequest {
        items: vec![VariableAccess::Parameterized {
            name: 0x3008,
            selector: entries.selector,
            parameter: entries.parameters,
        }],
    };
    assert_eq!(
        req.encode(),
        hex("050104300802020406000000010600000004120001120000")
    );
}

#[test]
fn write_clock_time_like_gurux() {
    // Clock base 0x2800, time (attribute 2) at 0x2808; 2026-12-02 07:30:00, no deviation.
    let time = hex("07EA0C02FF071E0000000000");
    let req = WriteRequest {
        items: vec![VariableAccess::Name(0x2808)],
        values: vec![Data::OctetString(time)],
    };
    let bytes = hex("060102280801090C07EA0C02FF071E0000000000");
    assert_eq!(req.encode(), bytes);
    assert_eq!(round_trip(&bytes), SnApdu::WriteRequest(req.clone()));
    // The same body under tag 0x16 is the unconfirmed write.
    let mut unconfirmed = bytes.clone();
    unconfirmed[0] = UNCONFIRMED_WRITE_REQUEST;
    assert_eq!(req.encode_unconfirmed(), unconfirmed);
    assert_eq!(
        round_trip(&unconfirmed),
        SnApdu::UnconfirmedWriteRequest(req)
    );
}

#[test]
fn responses_read_as_gurux_reads_them() {
    // Gurux reads 2301.
    let r = ReadResponse::decode(&hex("0C010005000008FD")).unwrap();
    assert_eq!(r.results, [ReadResult::Data(Data::DoubleLong(2301))]);
    // Gurux reads [-1, 35]: scaler -1, unit V.
    let r = ReadResponse::decode(&hex("0C010002020FFF1623")).unwrap();
    assert_eq!(
        r.results,
        [ReadResult::Data(Data::Structure(vec![
            Data::Integer(-1),
            Data::Enum(35)
        ]))]
    );
    // Gurux reads [2301, [-1, 35]].
    let two = hex("0C020005000008FD0002020FFF1623");
    let SnApdu::ReadResponse(r) = round_trip(&two) else {
        panic!("not a ReadResponse")
    };
    assert_eq!(r.results.len(), 2);
    // Gurux reads error 4 (object-undefined).
    let r = ReadResponse::decode(&hex("0C010104")).unwrap();
    assert_eq!(
        r.results,
        [ReadResult::Error(DataAccessResult::OBJECT_UNDEFINED)]
    );
    // Gurux reads success, then error 3 (read-write-denied).
    assert_eq!(
        WriteResponse::decode(&hex("0D0100")).unwrap().results,
        [WriteResult::Success]
    );
    assert_eq!(
        WriteResponse::decode(&hex("0D010103")).unwrap().results,
        [WriteResult::Error(DataAccessResult::READ_WRITE_DENIED)]
    );
}

#[test]
fn information_report_like_gurux_notify() {
    let bytes = hex("1800010220080105000008FD");
    let SnApdu::InformationReport(r) = round_trip(&bytes) else {
        panic!("not an InformationReport")
    };
    assert_eq!(r.current_time, None);
    assert_eq!(r.items, [VariableAccess::Name(0x2008)]);
    assert_eq!(r.values, [Data::DoubleLong(2301)]);
    // With a current-time (an octet string of 12 bytes).
    let timed = InformationReport {
        current_time: Some(hex("07EA0C02FF071E0000000000")),
        ..r
    };
    round_trip(&timed.encode());
}

#[test]
fn aarq_with_the_sn_context_matches_gurux() {
    // Gurux proposes read, write, unconfirmed-write, multiple-references, information-report
    // and parameterized-access (0x1C0320), max PDU 0xFFFF.
    let initiate = InitiateRequest::new(Conformance(0x1C0320), 0xFFFF).encode();
    let aarq = Aarq {
        application_context: association::context(false),
        calling_ap_title: None,
        mechanism: None,
        calling_authentication_value: None,
        user_information: Some(initiate),
    };
    assert_eq!(
        aarq.encode(),
        hex("601DA109060760857405080102BE10040E01000000065F1F04001C0320FFFF")
    );
    assert!(association::SN_CONFORMANCE.has(0x1C0320));
    assert_eq!(association::context(true).id(), 4);
}

#[test]
fn long_read_response_is_reassembled_with_block_number_acks() {
    // Green Book 9.3.x: each data-block-result but the last is acknowledged by a ReadRequest
    // with block-number-access carrying the number received (Gurux's server checks it so).
    let value = Data::OctetString((0..=255u8).collect());
    let raw = value.to_bytes();
    let (a, b) = raw.split_at(100);
    let blocks = [
        SnDataBlock {
            last_block: false,
            block_number: 1,
            raw_data: a.to_vec(),
        },
        SnDataBlock {
            last_block: true,
            block_number: 2,
            raw_data: b.to_vec(),
        },
    ];
    let mut asm = ReadBlockAssembler::new(1 << 16);
    let first = ReadResponse {
        results: vec![ReadResult::DataBlock(blocks[0].clone())],
    }
    .encode();
    assert_eq!(&first[..6], &[0x0C, 0x01, 0x02, 0x00, 0x00, 0x01]);
    let SnApdu::ReadResponse(first) = round_trip(&first) else {
        panic!()
    };
    let ReadResult::DataBlock(block) = &first.results[0] else {
        panic!()
    };
    match asm.push(block).unwrap() {
        SnBlockProgress::Next(ack) => assert_eq!(ack.encode(), hex("0501050001")),
        other => panic!("{other:?}"),
    }
    match asm.push(&blocks[1]).unwrap() {
        SnBlockProgress::Complete(joined) => assert_eq!(Data::decode(&joined).unwrap(), value),
        other => panic!("{other:?}"),
    }
    let mut asm = ReadBlockAssembler::new(1 << 16);
    assert_eq!(
        asm.push(&blocks[1]).unwrap_err(),
        SnBlockError::WrongNumber {
            expected: 1,
            received: 2
        }
    );
    let mut small = ReadBlockAssembler::new(50);
    assert!(matches!(
        small.push(&blocks[0]),
        Err(SnBlockError::TooLong { .. })
    ));
}

#[test]
fn names_of_attributes_and_methods() {
    let clock = Obis::new(0, 0, 1, 0, 0, 255);
    let map = ShortNameMap::from_object_list(&Data::Array(vec![
        SnObject {
            base_name: 0x2800,
            class_id: 8,
            version: 0,
            instance: clock,
        }
        .to_data(),
        SnObject {
            base_name: 0xFA00,
            class_id: 12,
            version: 2,
            instance: Obis::new(0, 0, 40, 0, 0, 255),
        }
        .to_data(),
    ]))
    .unwrap();
    // 0xFA00 travels as long -1536 and comes back as the 16-bit name.
    assert_eq!(
        map.base_name(12, Obis::new(0, 0, 40, 0, 0, 255)),
        Ok(0xFA00)
    );
    assert_eq!(map.attribute(8, clock, 2), Ok(0x2808));
    assert_eq!(map.attribute(8, clock, 9), Ok(0x2840));
    // Blue Book Clock: adjust_to_quarter at 0x60 .. shift_time (method 6) at 0x88.
    assert_eq!(map.method(8, clock, 1), Ok(0x2860));
    assert_eq!(map.method(8, clock, 6), Ok(0x2888));
    assert_eq!(
        map.method(8, clock, 7),
        Err(ShortNameError::NoMethod {
            class_id: 8,
            method: 7
        })
    );
    // Disconnect control: remote_disconnect 0x20, remote_reconnect 0x28.
    assert_eq!(names::method_name(0x4000, 70, 2), Ok(0x4028));
    assert_eq!(
        map.attribute(3, clock, 2),
        Err(ShortNameError::UnknownObject {
            class_id: 3,
            instance: clock
        })
    );
    assert!(matches!(
        names::attribute_name(0xFFF8, 3),
        Err(ShortNameError::OutOfRange { .. })
    ));
    assert!(matches!(
        names::attribute_name(0x2000, 0),
        Err(ShortNameError::InvalidIndex { index: 0 })
    ));
    assert!(ShortNameMap::from_object_list(&Data::Array(vec![Data::Null])).is_err());
    assert!(ShortNameMap::from_object_list(&Data::Null).is_err());
}

#[test]
fn every_truncation_is_an_error_and_describe_names_it() {
    let vectors = [
        hex("0502022008022010"),
        hex("0501043008010204020412000809060000010000FF0F02120000090C07EA0B18FF00000000000000090C07EA0B18FF010000000000000100"),
        hex("060102280801090C07EA0C02FF071E0000000000"),
        hex("0C020005000008FD0002020FFF1623"),
        hex("0D010103"),
        hex("1800010220080105000008FD"),
        hex("0C0102000001050102120001"),
    ];
    for v in &vectors {
        assert!(describe(v).is_some_and(|d| d.contains("(SN)")), "{v:02X?}");
        for cut in 1..v.len() {
            assert!(SnApdu::decode(&v[..cut]).is_err(), "{:02X?}", &v[..cut]);
            assert!(describe(&v[..cut]).is_some_and(|d| d.contains("malformed")));
        }
        let mut long = v.clone();
        long.push(0);
        assert_eq!(
            SnApdu::decode(&long),
            Err(crate::dlms::DecodeError::TrailingBytes(1))
        );
    }
    assert_eq!(
        describe(&hex("0502022008022010")).unwrap(),
        "ReadRequest (SN) 0x2008, 0x2010"
    );
    assert_eq!(describe(&[0xC0, 0x01]), None);
    assert_eq!(SnApdu::decode(&[0xC4]), Ok(None));
    // A count larger than the bytes left allocates nothing and is an error.
    assert!(SnApdu::decode(&[0x05, 0x84, 0x7F, 0xFF, 0xFF, 0xFF]).is_err());
    assert!(SnApdu::decode(&[0x05, 0x01, 0x03, 0x00]).is_err()); // detailed-access
}

#[test]
fn sn_services_have_glo_and_ded_tags() {
    use crate::dlms::security::{self, Envelope, Keys, Protection};
    // Green Book 9.5: glo-readRequest [37] .. ded-informationReportRequest [88].
    let pairs = [
        (READ_REQUEST, 0x25, 0x45),
        (WRITE_REQUEST, 0x26, 0x46),
        (READ_RESPONSE, 0x2C, 0x4C),
        (WRITE_RESPONSE, 0x2D, 0x4D),
        (UNCONFIRMED_WRITE_REQUEST, 0x36, 0x56),
        (INFORMATION_REPORT, 0x38, 0x58),
    ];
    for (plain, glo, ded) in pairs {
        assert_eq!(security::glo_tag(plain), Some(glo));
        assert_eq!(security::ded_tag(plain), Some(ded));
        assert!(crate::dlms::xdlms::is_ciphered_tag(glo));
        assert!(crate::dlms::xdlms::is_ciphered_tag(ded));
    }
    let keys = Keys {
        block_cipher: [0x11; 16],
        authentication: [0x22; 16],
    };
    let title = *b"BRIDGE01";
    let read = hex("0501022008");
    let sealed = security::seal_apdu(
        &keys,
        None,
        Envelope::Global,
        &title,
        7,
        Protection::AuthenticatedEncrypted,
        &read,
    )
    .unwrap();
    assert_eq!(sealed[0], 0x25);
    let opened = security::open_apdu(&keys, None, Some(&title), &sealed).unwrap();
    assert_eq!(opened.plain, read);
}
