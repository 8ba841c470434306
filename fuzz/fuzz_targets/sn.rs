//! Every short-name APDU (ReadRequest/Response, WriteRequest/Response, UnconfirmedWrite,
//! InformationReport) and the one-line description: no panic; re-encoding is stable; the
//! block assembler and the object-list map take whatever decodes.
#![no_main]
use dlms_bridge::dlms::sn::{
    describe, ReadBlockAssembler, ReadResult, ShortNameMap, SnApdu,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = describe(data);
    if let Ok(Some(apdu)) = SnApdu::decode(data) {
        let canonical = apdu.encode();
        let again = SnApdu::decode(&canonical)
            .expect("canonical encoding decodes")
            .expect("still an SN APDU");
        assert_eq!(again.encode(), canonical);
        if let SnApdu::ReadResponse(resp) = &apdu {
            let mut asm = ReadBlockAssembler::new(1 << 16);
            for result in &resp.results {
                match result {
                    ReadResult::DataBlock(b) => {
                        let _ = asm.push(b);
                    }
                    ReadResult::Data(d) => {
                        if let Ok(map) = ShortNameMap::from_object_list(d) {
                            for o in map.objects() {
                                let _ = map.attribute(o.class_id, o.instance, 2);
                                let _ = map.method(o.class_id, o.instance, 1);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
});
