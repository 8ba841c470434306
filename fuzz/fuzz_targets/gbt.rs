//! General block transfer: one APDU decoded (its re-encoding decodes to it), and the input
//! cut into blocks fed to reassemblers that answer (window 3) and that only listen (window 0),
//! then to the join function: no panic, the joined size within its limit.
#![no_main]
use dlms_bridge::dlms::xdlms::gbt::{join_blocks, GbtProgress, GbtReassembler, GeneralBlock};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = GeneralBlock::decode(data) {
        // (Not byte for byte: a long-form A-XDR length may encode a short length.)
        let again = GeneralBlock::decode(&block.encode()).expect("our encoding decodes");
        assert_eq!(again, block);
    }
    // Blocks separated by a length byte each, so that one input holds a sequence.
    let mut blocks = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        blocks.push(&tail[..len]);
        rest = &tail[len..];
    }
    for window in [0, 3] {
        let mut r = GbtReassembler::new(LIMIT, window);
        for b in &blocks {
            match r.push_apdu(b) {
                Ok(GbtProgress::Complete(apdu)) => assert!(apdu.len() <= LIMIT),
                Ok(GbtProgress::Send(ack)) => {
                    assert!(window > 0, "a listener never answers");
                    assert!(ack.block_data.is_empty());
                }
                Ok(GbtProgress::Wait) | Err(_) => {}
            }
        }
    }
    if let Ok(Some(apdu)) = join_blocks(blocks.iter().copied(), LIMIT) {
        assert!(apdu.len() <= LIMIT);
    }
});
