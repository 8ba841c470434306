//! Meter configuration from untrusted text (API bodies, import files, flag values): no panic,
//! and a meter that is accepted round-trips through its export (plus its secrets) unchanged.
#![no_main]
use dlms_bridge::config::fields::FIELDS;
use dlms_bridge::config::json::{from_json, to_json, Secrets};
use dlms_bridge::config::{Measurement, MeterConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        if let Ok(meter) = from_json(&value) {
            let mut exported = to_json(&meter, Secrets::Omit);
            for f in FIELDS.iter().filter(|f| f.secret) {
                if let Some(secret) = f.text(&meter) {
                    exported[f.name] = secret.into();
                }
            }
            assert_eq!(from_json(&exported).as_ref(), Ok(&meter));
        }
    }
    let _ = Measurement::parse_spec(text);
    for f in FIELDS {
        let mut m = MeterConfig::default();
        if f.apply(&mut m, Some(text)).is_ok() {
            // What a field accepted, it shows in a form it accepts again.
            let shown = f.text(&m).unwrap_or_default();
            let mut again = MeterConfig::default();
            assert!(f.apply(&mut again, Some(&shown)).is_ok(), "{}: {shown:?}", f.name);
            assert_eq!(f.text(&again), f.text(&m));
        }
    }
});
