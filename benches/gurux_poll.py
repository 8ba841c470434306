#!/usr/bin/env python3
"""The Gurux Python client (gurux-dlms) polling 8 registers from a DLMS meter, for comparison
with our client in benches/poll_cycle.rs. Reads scaler_unit once, then polls the values with
GET-with-list, and prints one JSON line: cycles, round trips, bytes each way and CPU seconds.

Usage: gurux_poll.py --port PORT --cycles N [--transport hdlc|wrapper]
"""
import argparse
import json
import time

from gurux_dlms import GXDLMSClient
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_link import Link, frames
from gurux_dlms.objects import GXDLMSRegister

OBIS = ["1.0.32.7.0.255", "1.0.52.7.0.255", "1.0.72.7.0.255", "1.0.31.7.0.255",
        "1.0.51.7.0.255", "1.0.71.7.0.255", "1.0.1.7.0.255", "1.0.2.7.0.255"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--transport", choices=["hdlc", "wrapper"], default="hdlc")
    a = ap.parse_args()
    hdlc = a.transport == "hdlc"
    # Server address: logical 1, physical 17, as the simulator answers.
    server = GXDLMSClient.getServerAddress(1, 17) if hdlc else 1
    client = GXDLMSClient(True, 16, server, Authentication.NONE, None,
                          InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER)
    link = Link(a.port, client)
    if hdlc:
        ua = link.exchange(client.snrmRequest())
        client.parseUAResponse(ua.data)
    for req in frames(client.aarqRequest()):
        reply = link.exchange(req)
    client.parseAareResponse(reply.data)
    registers = [GXDLMSRegister(o) for o in OBIS]
    # scaler_unit once (attribute 3), as a bridge does.
    for req in frames(client.readList([(r, 3) for r in registers])):
        reply = link.exchange(req)
    client.updateValues([(r, 3) for r in registers], reply.value)
    setup = (link.round_trips, link.sent, link.received)
    cpu0 = time.process_time()
    values = None
    for _ in range(a.cycles):
        for req in frames(client.readList([(r, 2) for r in registers])):
            reply = link.exchange(req)
        values = reply.value
    cpu = time.process_time() - cpu0
    print(json.dumps({
        "client": "gurux-dlms (Python)",
        "cycles": a.cycles,
        "round_trips": link.round_trips - setup[0],
        "bytes_sent": link.sent - setup[1],
        "bytes_received": link.received - setup[2],
        "cpu_s": cpu,
        "last_values": [str(v) for v in values],
    }))


if __name__ == "__main__":
    main()
