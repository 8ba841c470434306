//! Every APDU through the dispatcher, and the GET block assembler: no panic; re-encoding is
//! stable (compared as bytes, so float NaNs do not matter).
#![no_main]
use dlms_bridge::dlms::xdlms::{Apdu, GetBlockAssembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(apdu) = Apdu::decode(data) {
        let canonical = apdu.encode();
        let again = Apdu::decode(&canonical).expect("canonical encoding decodes");
        assert_eq!(again.encode(), canonical);
        if let Apdu::GetResponse(resp) = &apdu {
            let mut asm = GetBlockAssembler::new(1 << 16);
            let _ = asm.push(resp);
        }
    }
});
