//! The describer on captured bytes: tests/vectors/independent.json (gurux-dlms 1.0.203 and
//! dlms-cosem 25.1.0, see tests/interop/gen_vectors.py) and the push vectors of
//! tests/vectors/push/ (each file says where its bytes come from and what they state).

use super::*;
use crate::dlms::security::Keys;
use crate::dlms::test_util::hex;

fn vector(name: &str) -> Vec<u8> {
    let all: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/vectors/independent.json")).unwrap();
    hex(all[name]["hex"]
        .as_str()
        .unwrap_or_else(|| panic!("no vector {name}")))
}

fn line(name: &str) -> String {
    Describer::new().describe(&vector(name))
}

fn contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "{p:?} missing in {text:?}");
    }
}

/// The Green Book example keys gurux-dlms used for the ciphered vectors.
fn green_book_keys() -> Keys {
    Keys {
        block_cipher: crate::hex::array("000102030405060708090A0B0C0D0E0F").unwrap(),
        authentication: crate::hex::array("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF").unwrap(),
    }
}

const TITLE: &str = "4D4D4D0000BC614E";

#[test]
fn hdlc_frame_types_addresses_and_sequence_numbers() {
    contains(
        &line("hdlc_snrm_512"),
        &[
            "HDLC SNRM P/F",
            "dst 1 (0x03) src 16 (0x21)",
            "max info transmit 512 receive 512, window transmit 1 receive 1",
        ],
    );
    contains(
        &line("hdlc_snrm_default"),
        &["SNRM", "no parameters (defaults"],
    );
    contains(
        &line("hdlc_ua_from_meter"),
        &[
            "HDLC UA P/F dst 16 (0x21) src 1 (0x03)",
            "max info transmit 128 receive 128",
        ],
    );
    contains(&line("hdlc_rr_from_client"), &["HDLC RR N(R)=3 P/F"]);
    contains(&line("hdlc_disc_from_client"), &["HDLC DISC P/F"]);
    contains(
        &line("hdlc_get_voltage"),
        &[
            "HDLC I N(S)=0 N(R)=0 P/F",
            "GET-Request-Normal invoke 1: class 3 1-0:32.7.0*255 attribute 2",
        ],
    );
    contains(
        &line("hdlc_iframe_from_meter"),
        &[
            "GET-Response-With-List invoke 1: 3 result(s)",
            "2301; error object-undefined", // long-unsigned 0x08FD, then data-access-result 4
            "structure[-1, enum 35]",       // scaler_unit: 10^-1 V
        ],
    );
}

#[test]
fn a_bad_fcs_is_reported_not_decoded() {
    let mut frame = vector("hdlc_get_voltage");
    let n = frame.len();
    frame[n - 5] ^= 0xFF;
    contains(&Describer::new().describe(&frame), &["not decoded", "FCS"]);
}

#[test]
fn association_apdus() {
    let aarq = line("hdlc_aarq_lls");
    contains(
        &aarq,
        &[
            "AARQ LogicalName",
            "mechanism Low",
            "calling-authentication-value (8 bytes, masked)",
            "InitiateRequest dlms-version 6",
            "client-max-receive-pdu-size 65535",
        ],
    );
    assert!(!aarq.contains("12345678"), "{aarq}");
    contains(
        &Describer::new().describe_apdu(&vector("aare_accepted")),
        &[
            "AARE accepted LogicalName",
            "InitiateResponse dlms-version 6",
            "server-max-receive-pdu-size 1024",
            "get",
            "selective-access",
            "vaa-name 0x0007",
        ],
    );
    contains(
        &Describer::new().describe_apdu(&vector("aare_rejected_auth")),
        &["AARE rejected-permanent", "authentication failure"],
    );
    contains(
        &Describer::new().describe_apdu(&vector("release_response")),
        &["RLRE reason Normal"],
    );
    contains(
        &Describer::new().describe_apdu(&vector("exception_response")),
        &["ExceptionResponse"],
    );
}

#[test]
fn services_over_the_wrapper() {
    contains(
        &line("wrapper_get_voltage"),
        &["wrapper wPort 16 -> 1, length 13", "GET-Request-Normal"],
    );
    contains(
        &line("wrapper_get_with_list"),
        &[
            "GET-Request-With-List invoke 1: 3 item(s)",
            "1-0:52.7.0*255 attribute 2",
        ],
    );
    contains(
        &line("wrapper_get_profile_range"),
        &[
            "1-0:99.1.0*255 attribute 2 selective access 1",
            "2026-11-24 00:00:00",
        ],
    );
    contains(
        &line("wrapper_set_clock"),
        &[
            "SET-Request-Normal invoke 1: class 8 0-0:1.0.0*255 attribute 2 = ",
            "2026-11-24 06:00:00",
        ],
    );
    contains(
        &line("wrapper_action_octets"),
        &["ACTION-Request-Normal invoke 1: class 15 0-0:40.0.0*255 method 1 parameters 000102"],
    );
    contains(
        &Describer::new().describe_apdu(&vector("get_response_block")),
        &["GET-Response-With-Datablock invoke 1: block 1, 2 raw byte(s)"],
    );
    contains(
        &Describer::new().describe_apdu(&vector("set_response_normal")),
        &["SET-Response-Normal invoke 1: success (0)"],
    );
    contains(
        &Describer::new().describe_apdu(&vector("action_response_with_data")),
        &["ACTION-Response-Normal invoke 1: success (0), return DEADBEEF"],
    );
}

#[test]
fn ciphered_apdus_stay_ciphered_without_keys() {
    let text = line("wrapper_glo_get_clock");
    contains(
        &text,
        &[
            "glo-get-request",
            "security control 0x30 (suite 0, authenticated and encrypted)",
            "invocation counter 19088744", // 0x01234568: gurux counts up before sending
        ],
    );
    assert!(!text.contains("GET-Request"), "{text}");
    contains(
        &line("wrapper_general_glo_get_clock"),
        &["general-glo-ciphering system-title 4D4D4D0000BC614E"],
    );
}

#[test]
fn ciphered_apdus_open_with_the_keys() {
    let keys = || DecodeKeys::with_keys(green_book_keys(), crate::hex::array(TITLE));
    let clock = "GET-Request-Normal invoke 1: class 8 0-0:1.0.0*255 attribute 2";
    for name in [
        "wrapper_glo_get_clock",
        "wrapper_glo_get_clock_auth_only",
        "wrapper_general_glo_get_clock",
    ] {
        let text = Describer::with_keys(keys()).describe(&vector(name));
        contains(&text, &["deciphered: ", clock]);
    }
    // A wrong key: the tag does not verify.
    let mut wrong = green_book_keys();
    wrong.authentication[0] ^= 1;
    let text = Describer::with_keys(DecodeKeys::with_keys(wrong, crate::hex::array(TITLE)))
        .describe(&vector("wrapper_glo_get_clock"));
    contains(&text, &["not deciphered: authentication tag mismatch"]);
    // No title given and none learnt.
    let text = Describer::with_keys(DecodeKeys::with_keys(green_book_keys(), None))
        .describe(&vector("wrapper_glo_get_clock"));
    contains(&text, &["no system title"]);
}

#[test]
fn a_dedicated_key_learnt_from_the_aarq_opens_ded_apdus() {
    // No --system-title: the title comes from the AARQ's calling-AP-title, the dedicated key
    // from its glo-ciphered InitiateRequest.
    let mut d = Describer::with_keys(DecodeKeys::with_keys(green_book_keys(), None));
    let aarq = d.describe(&vector("wrapper_aarq_dedicated_key"));
    contains(
        &aarq,
        &[
            "calling-AP-title 4D4D4D0000BC614E",
            "glo-initiateRequest",
            "deciphered: InitiateRequest",
            "dedicated-key (16 bytes, masked)",
        ],
    );
    assert!(!aarq.contains("00112233445566778899AABBCCDDEEFF"), "{aarq}");
    let get = d.describe(&vector("wrapper_ded_get_clock"));
    contains(&get, &["ded-get-request", "deciphered: GET-Request-Normal"]);
    // Without the AARQ, the dedicated key is unknown.
    let alone = Describer::with_keys(DecodeKeys::with_keys(
        green_book_keys(),
        crate::hex::array(TITLE),
    ))
    .describe(&vector("wrapper_ded_get_clock"));
    contains(&alone, &["not deciphered"]);
}

#[test]
fn data_notifications_plain_and_ciphered() {
    let kamstrup = crate::hex::vector(include_str!(
        "../../../tests/vectors/push/kamstrup-list-2-single-phase.hex"
    ));
    contains(
        &Describer::new().describe_apdu(&kamstrup),
        &[
            "DATA-NOTIFICATION long-invoke-id 0, date-time 2017-08-16 16:00:05",
            "\"Kamstrup_V0001\"",
            "0101010700FF (1-1:1.7.0*255)",
        ],
    );
    let ciphered = crate::hex::vector(include_str!(
        "../../../tests/vectors/push/gurux-ciphered-wrapper.hex"
    ));
    let keys = DecodeKeys::with_keys(green_book_keys(), None);
    contains(
        &Describer::with_keys(keys).describe(&ciphered),
        &[
            "general-glo-ciphering system-title 4D4D4D0000BC614E",
            "invocation counter 4660",
            "deciphered: DATA-NOTIFICATION",
            "0100010800FF (1-0:1.8.0*255), 123456",
        ],
    );
}

#[test]
fn segments_are_joined_into_one_apdu() {
    // dlms-cosem's GET-Response-With-List, cut by our link into 32-byte segments.
    let apdu = vector("get_response_with_list");
    let whole = Describer::new().describe_apdu(&apdu);
    let info = {
        let mut v = vec![0xE6, 0xE7, 0x00];
        v.extend_from_slice(&apdu);
        v
    };
    let frames: Vec<Vec<u8>> = info
        .chunks(7)
        .enumerate()
        .map(|(i, chunk)| {
            let last = (i + 1) * 7 >= info.len();
            crate::dlms::hdlc::Frame {
                segmented: !last,
                destination: crate::dlms::hdlc::RawAddress::client(16),
                source: crate::dlms::hdlc::RawAddress::server(
                    crate::dlms::hdlc::ServerAddress::new(1, None),
                )
                .unwrap(),
                control: crate::dlms::hdlc::Control::I {
                    ns: (i % 8) as u8,
                    nr: 0,
                    poll: true,
                },
                info: chunk.to_vec(),
            }
            .emit()
            .unwrap()
        })
        .collect();
    let mut stream = Vec::new();
    for f in &frames {
        stream.extend_from_slice(f);
    }
    let lines = describe_stream(&stream, DecodeKeys::none());
    assert_eq!(lines.len(), frames.len(), "{lines:?}");
    for l in &lines[..lines.len() - 1] {
        contains(l, &["more follow"]);
    }
    let last = lines.last().unwrap();
    contains(
        last,
        &[&format!(
            "APDU of {} bytes from {} segments",
            apdu.len(),
            frames.len()
        )],
    );
    assert!(last.ends_with(&whole), "{last} / {whole}");
}

#[test]
fn general_block_transfer_and_short_name_services() {
    // A bare acknowledgement (last-block, no data) and a GET-Response that fits in one block.
    contains(
        &Describer::new().describe_apdu(&[0xE0, 0x80, 0x00, 0x00, 0x00, 0x01, 0x00]),
        &[
            "General-Block-Transfer block 0 (last)",
            "ack 1",
            "0 bytes of data",
        ],
    );
    contains(
        &Describer::new().describe_apdu(&[
            0xE0, 0x80, 0x00, 0x01, 0x00, 0x00, 0x07, 0xC4, 0x01, 0xC1, 0x00, 0x12, 0x00, 0xE6,
        ]),
        &["block 1 (last)", "GET-Response", "230"],
    );
    // A ReadRequest of one variable-name, base name 0xFA08 (Association SN attribute 2).
    contains(
        &Describer::new().describe_apdu(&[0x05, 0x01, 0x02, 0xFA, 0x08]),
        &["ReadRequest"],
    );
    assert!(!Describer::new()
        .describe_apdu(&[0x05, 0x01, 0x02, 0xFA, 0x08])
        .contains("not decoded"));
}

#[test]
fn other_bytes_and_sign_on_text() {
    let lines = describe_stream(b"/ISK5ME382\r\n\x06050\r\n", DecodeKeys::none());
    assert_eq!(
        lines,
        vec!["text \"/ISK5ME382\\r\\n\"", "text \"\\x06050\\r\\n\""]
    );
    let lines = describe_stream(&[0x7E, 0xA0, 0x19, 0x03], DecodeKeys::none());
    contains(&lines.join("\n"), &["4 byte(s) at the end, incomplete"]);
}

#[test]
fn arbitrary_bytes_never_panic() {
    // Every prefix of every vector, and a few mutations, through every entry point.
    let all: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/vectors/independent.json")).unwrap();
    let keys = DecodeKeys::with_keys(green_book_keys(), crate::hex::array(TITLE));
    for (_, v) in all.as_object().unwrap() {
        let bytes = hex(v["hex"].as_str().unwrap());
        for end in 0..=bytes.len() {
            let cut = &bytes[..end];
            let _ = describe_stream(cut, keys.clone());
            let _ = Describer::with_keys(keys.clone()).describe_apdu(cut);
            let mut masked = cut.to_vec();
            mask_secrets(&mut masked);
        }
    }
}
