#!/usr/bin/env python3
"""The Gurux Python client (gurux-dlms) reading a whole load profile (1-0:99.1.0, class 7) from a
DLMS meter over HDLC with its default link settings, for comparison with our client in
benches/profile_read.rs. Prints one JSON line: rows, round trips, bytes each way, seconds.

Usage: gurux_profile.py --port PORT
"""
import argparse
import json
import socket
import time

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_dlms.objects import GXDLMSProfileGeneric


def frames(requests):
    if isinstance(requests, (bytes, bytearray)):
        yield requests
        return
    for r in requests:
        yield from frames(r)


class Link:
    def __init__(self, port, client):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(10)
        self.client = client
        self.round_trips = self.sent = self.received = 0

    def exchange(self, request):
        reply = GXReplyData()
        data = request
        while True:
            self.sock.sendall(bytes(data))
            self.sent += len(data)
            self.round_trips += 1
            buf = GXByteBuffer()
            while True:
                chunk = self.sock.recv(4096)
                self.received += len(chunk)
                buf.set(chunk)
                if self.client.getData(buf, reply, None):
                    break
            if reply.isMoreData():
                data = self.client.receiverReady(reply)
                continue
            return reply


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    client = GXDLMSClient(True, 16, GXDLMSClient.getServerAddress(1, 17), Authentication.NONE,
                          None, InterfaceType.HDLC)
    t0 = time.monotonic()
    link = Link(a.port, client)
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
