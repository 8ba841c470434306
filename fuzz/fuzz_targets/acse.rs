//! AARQ, AARE, RLRQ, RLRE and the xDLMS initiate PDUs: no panic; decode(encode(x)) == x.
#![no_main]
use dlms_bridge::dlms::acse::{Aare, Aarq, Rlre, Rlrq};
use dlms_bridge::dlms::xdlms::{InitiateRequest, InitiateResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(x) = Aarq::decode(data) {
        assert_eq!(Aarq::decode(&x.encode()).unwrap(), x);
    }
    if let Ok(x) = Aare::decode(data) {
        assert_eq!(Aare::decode(&x.encode()).unwrap(), x);
    }
    if let Ok(x) = Rlrq::decode(data) {
        assert_eq!(Rlrq::decode(&x.encode()).unwrap(), x);
    }
    if let Ok(x) = Rlre::decode(data) {
        assert_eq!(Rlre::decode(&x.encode()).unwrap(), x);
    }
    if let Ok(x) = InitiateRequest::decode(data) {
        assert_eq!(InitiateRequest::decode(&x.encode()).unwrap(), x);
    }
    if let Ok(x) = InitiateResponse::decode(data) {
        assert_eq!(InitiateResponse::decode(&x.encode()).unwrap(), x);
    }
});
