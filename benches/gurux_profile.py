#!/usr/bin/env python3
"""The Gurux Python client (gurux-dlms) reading a whole load profile (1-0:99.1.0, class 7) from a
DLMS meter over HDLC with its default link settings, for comparison with our client in
benches/profile_read.rs. Prints one JSON line: rows, round trips, bytes each way, seconds.

Usage: gurux_profile.py --port PORT
"""
import argparse
import json
import time

from gurux_dlms import GXDLMSClient
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_link import Link, frames
from gurux_dlms.objects import GXDLMSProfileGeneric


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    client = GXDLMSClient(True, 16, GXDLMSClient.getServerAddress(1, 17), Authentication.NONE,
                          None, InterfaceType.HDLC)
    t0 = time.monotonic()
    link = Link(a.port, client, timeout=10)
    ua = link.exchange(client.snrmRequest())
    client.parseUAResponse(ua.data)
    for req in frames(client.aarqRequest()):
        reply = link.exchange(req)
    client.parseAareResponse(reply.data)
    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    for req in frames(client.read(pg, 3)):
        reply = link.exchange(req)
    client.updateValue(pg, 3, reply.value)
    for req in frames(client.read(pg, 2)):
        reply = link.exchange(req)
    client.updateValue(pg, 2, reply.value)
    print(json.dumps({
        "client": "gurux-dlms (Python), its default link settings",
        "rows": len(pg.buffer),
        "round_trips": link.round_trips,
        "bytes_sent": link.sent,
        "bytes_received": link.received,
        "seconds": time.monotonic() - t0,
    }))


if __name__ == "__main__":
    main()
