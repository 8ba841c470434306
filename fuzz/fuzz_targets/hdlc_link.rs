//! Frame parsing, parameter blocks, and both link roles fed arbitrary frames: no panic.
#![no_main]
use dlms_bridge::dlms::hdlc::{Deframer, Frame, Link, LinkParams, RawAddress, ServerAddress};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::parse(data) {
        assert_eq!(Frame::parse(&frame.emit().unwrap()).unwrap(), frame);
    }
    if let Ok(p) = LinkParams::parse(data) {
        assert_eq!(LinkParams::parse(&p.emit()).unwrap(), p);
    }
    let server = RawAddress::server(ServerAddress::new(1, None)).unwrap();
    let mut client = Link::client(RawAddress::client(16), server, LinkParams::default());
    let mut meter = Link::server(server, LinkParams::default());
    client.connect();
    let mut d = Deframer::new();
    d.push(data);
    while let Some(frame) = d.next_frame() {
        let _ = client.handle_frame(&frame);
        let _ = meter.handle_frame(&frame);
        while client.poll_transmit().is_some() {}
        while meter.poll_transmit().is_some() {}
        let _ = client.send(&frame.info);
        let _ = meter.send(&frame.info);
    }
});
