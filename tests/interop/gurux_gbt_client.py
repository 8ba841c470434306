#!/usr/bin/env python3
"""The Gurux Python client (gurux-dlms 1.0.203, independent of our code) reading the load
profile 1-0:99.1.0 attribute 2 from a meter through general block transfer: it proposes
general-block-transfer and a max receive PDU of 256 bytes, so the meter (our simulator,
`simulate --gbt`) must answer in General-Block-Transfer blocks and Gurux must join them.

Prints one JSON line: the negotiated conformance, the GBT blocks Gurux acknowledged, and the
rows as [unix time, value, value, ...]. Used by tests/gurux_interop.rs.

Usage: gurux_gbt_client.py --port PORT [--transport hdlc|wrapper]
"""
import argparse
import calendar
import json
import os
import socket
import sys

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.GXDLMSSettings import GXDLMSSettings
from gurux_dlms.enums import Authentication, Conformance, InterfaceType, RequestTypes
from gurux_dlms.objects import GXDLMSProfileGeneric

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benches"))
from gurux_link import frames  # noqa: E402

# gurux-dlms 1.0.203's receiverReady builds its GBT acknowledgement from settings.blockNumber,
# which GXDLMSSettings does not define: the acknowledgements then carry block-number 0 (the
# block-number-acknowledged, what a meter acts on, is Gurux's own).
if not hasattr(GXDLMSSettings, "blockNumber"):
    GXDLMSSettings.blockNumber = 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--transport", choices=["hdlc", "wrapper"], default="hdlc")
    a = ap.parse_args()
    interface = InterfaceType.HDLC if a.transport == "hdlc" else InterfaceType.WRAPPER
    server = GXDLMSClient.getServerAddress(1, 17) if a.transport == "hdlc" else 1
    client = GXDLMSClient(True, 16, server, Authentication.NONE, None, interface)
    client.proposedConformance |= Conformance.GENERAL_BLOCK_TRANSFER
    client.settings.maxPduSize = 256
    sock = socket.create_connection(("127.0.0.1", a.port))
    sock.settimeout(10)
    acknowledged = 0

    def exchange(request):
        nonlocal acknowledged
        reply = GXReplyData()
        data = request
        while True:
            sock.sendall(bytes(data))
            buf = GXByteBuffer()
            while not client.getData(buf, reply, None):
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed")
                buf.set(chunk)
            if not reply.isMoreData():
                return reply
            if reply.moreData == RequestTypes.GBT:
                acknowledged += 1
            data = client.receiverReady(reply)

    if interface == InterfaceType.HDLC:
        client.parseUAResponse(exchange(client.snrmRequest()).data)
    for req in frames(client.aarqRequest()):
        reply = exchange(req)
    client.parseAareResponse(reply.data)
    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    for req in frames(client.read(pg, 3)):
        reply = exchange(req)
    client.updateValue(pg, 3, reply.value)
    for req in frames(client.read(pg, 2)):
        reply = exchange(req)
    client.updateValue(pg, 2, reply.value)
    rows = [[calendar.timegm(row[0].value.utctimetuple())] + [int(v) for v in row[1:]] for row in pg.buffer]
    print(json.dumps({
        "conformance": int(client.negotiatedConformance),
        "gbt_acknowledgements": acknowledged,
        "rows": rows,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
