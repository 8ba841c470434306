#!/usr/bin/env python3
"""An independent DLMS meter for interoperability tests, built on the Gurux DLMS library
(gurux-dlms on PyPI): registers with scalers and units, a clock, a serial number and a load
profile large enough to need block transfer, served over TCP with HDLC or the IEC 62056-47
wrapper on 127.0.0.1.

Usage: gurux_server.py --port PORT --transport hdlc|wrapper
Prints "ready PORT" on stdout once listening. The values are fixed (see VALUES, PROFILE_*), and
tests/gurux_interop.rs checks that our client reads exactly these.
"""
import argparse
import datetime
import socket
import sys
import threading

from gurux_dlms import GXDateTime, GXDLMSServer, GXHdlcSettings, GXServerReply
from gurux_dlms.enums import (AccessMode, Conformance, InterfaceType, MethodAccessMode, ObjectType,
                              SourceDiagnostic, Unit)
from gurux_dlms.objects import (GXDLMSAssociationLogicalName, GXDLMSCaptureObject, GXDLMSClock,
                                GXDLMSData, GXDLMSProfileGeneric, GXDLMSRegister)

# OBIS -> (raw value, scaler, unit)
VALUES = {
    "1.0.32.7.0.255": (2301, -1, Unit.VOLTAGE),
    "1.0.52.7.0.255": (2295, -1, Unit.VOLTAGE),
    "1.0.72.7.0.255": (2310, -1, Unit.VOLTAGE),
    "1.0.31.7.0.255": (1234, -2, Unit.CURRENT),
    "1.0.51.7.0.255": (987, -2, Unit.CURRENT),
    "1.0.71.7.0.255": (1500, -2, Unit.CURRENT),
    "1.0.1.7.0.255": (2500, 0, Unit.ACTIVE_POWER),
    "1.0.14.7.0.255": (5001, -2, Unit.FREQUENCY),
    "1.0.1.8.0.255": (123456789, 0, Unit.ACTIVE_ENERGY),
}
SERIAL = "GURUX0000001"
PROFILE_START = datetime.datetime(2026, 11, 24, 0, 0, 0, tzinfo=datetime.timezone.utc)
PROFILE_ROWS = 300  # ~6 KiB: several blocks at a 1 KiB PDU
PROFILE_STEP = datetime.timedelta(minutes=15)
ENERGY_BASE, ENERGY_STEP = 1_000_000, 250


class Meter(GXDLMSServer):
    """A GXDLMSServer with permissive access and no authentication."""

    def isTarget(self, serverAddress, clientAddress):
        return True

    def onValidateAuthentication(self, authentication, password):
        return SourceDiagnostic.NONE

    def onGetAttributeAccess(self, arg):
        return AccessMode.READ_WRITE

    def onGetMethodAccess(self, arg):
        return MethodAccessMode.ACCESS

    def onFindObject(self, objectType, sn, ln):
        return None

    def onPreRead(self, args=None):
        pass

    def onPostRead(self, args=None):
        pass

    # gurux-dlms 1.0.203's command handler calls these, but its GXDLMSServer does not define
    # them: the long-transfer state and two notifications.
    def getTransaction(self):
        return self.transaction

    def setTransaction(self, value):
        self.transaction = value

    def notifyRead(self):
        pass

    def notifyConnected(self, connectionInfo):
        pass

    def onPreWrite(self, args):
        pass

    def onPostWrite(self, args):
        pass

    def onPreAction(self, args):
        pass

    def onPostAction(self, args):
        pass

    def onPreGet(self, args):
        pass

    def onPostGet(self, args):
        pass

    def onConnected(self, connectionInfo):
        pass

    def onInvalidConnection(self, connectionInfo):
        pass

    def onDisconnected(self, connectionInfo):
        pass


class HdlcLimits:
    """gurux-dlms 1.0.203's SNRM handler reads the server's HDLC limits from `self.hdlc`, which
    its constructor leaves None (so every SNRM fails). These are the defaults it means."""
    maxInfoTX = maxInfoRX = maximumInfoLengthReceive = maximumInfoLengthTransmit = 128
    windowSizeTX = windowSizeRX = windowSizeReceive = windowSizeTransmit = 1
    inactivityTimeout = 0


# Same release: the SNRM handler calls GXHdlcSettings.update(), which does not exist. The
# server's limits are the ones HdlcLimits gives, so updating from itself can be a no-op.
if not hasattr(GXHdlcSettings, "update"):
    GXHdlcSettings.update = lambda self, other: None


def build(interface):
    meter = Meter(True, interface)
    meter.hdlc = HdlcLimits()
    meter.setConformance(Conformance.GET | Conformance.SET | Conformance.SELECTIVE_ACCESS
                         | Conformance.MULTIPLE_REFERENCES | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
                         | Conformance.ACTION)
    # (setMaxReceivePDUSize recurses forever in gurux-dlms 1.0.203; set the field directly.)
    meter.settings.maxServerPDUSize = 1024
    serial = GXDLMSData("0.0.96.1.0.255")
    serial.value = SERIAL
    meter.items.append(serial)
    clock = GXDLMSClock("0.0.1.0.0.255")
    clock.time = GXDateTime(PROFILE_START)
    meter.items.append(clock)
    registers = {}
    for obis, (value, scaler, unit) in VALUES.items():
        r = GXDLMSRegister(obis)
        r.value = value
        r.scaler = 10 ** scaler
        r.unit = unit
        meter.items.append(r)
        registers[obis] = r
    profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
    profile.addCaptureObject(clock, 2, 0)
    profile.addCaptureObject(registers["1.0.1.8.0.255"], 2, 0)
    profile.capturePeriod = 900
    for i in range(PROFILE_ROWS):
        profile.buffer.append([GXDateTime(PROFILE_START + i * PROFILE_STEP), ENERGY_BASE + ENERGY_STEP * i])
    meter.items.append(profile)
    association = GXDLMSAssociationLogicalName()
    meter.items.append(association)
    # gurux-dlms 1.0.203's initialize() appends the whole collection as one item when the
    # object list is empty (and then fails): fill it one object at a time first.
    for item in meter.items:
        association.objectList.append(item)
    meter.initialize()
    return meter


class Reply(GXServerReply):
    """gurux-dlms 1.0.203's GXServerReply lacks the accessors its own GXDLMSServer calls."""

    def setReply(self, value):
        self.reply = value

    def getConnectionInfo(self):
        return self.connectionInfo

    def getCount(self):
        return self.count

    def setCount(self, value):
        self.count = value


def serve(conn, interface):
    meter = build(interface)
    with conn:
        while True:
            data = conn.recv(4096)
            if not data:
                return
            reply = Reply(data)
            while True:
                meter.handleRequest(reply)
                if reply.reply:
                    conn.sendall(bytes(reply.reply))
                    reply.reply = None
                if not reply.isStreaming():
                    break


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--transport", choices=["hdlc", "wrapper"], default="hdlc")
    ap.add_argument("--print-values", action="store_true", help="print the served values as JSON and exit")
    a = ap.parse_args()
    if a.print_values:
        import json
        print(json.dumps({
            "registers": {obis: {"raw": v, "scaler": s, "unit": int(u)} for obis, (v, s, u) in VALUES.items()},
            "serial_number": SERIAL,
            "clock": int(PROFILE_START.timestamp()),
            "profile": {"start": int(PROFILE_START.timestamp()), "rows": PROFILE_ROWS,
                        "step": int(PROFILE_STEP.total_seconds()), "energy_base": ENERGY_BASE, "energy_step": ENERGY_STEP},
        }))
        return 0
    interface = InterfaceType.HDLC if a.transport == "hdlc" else InterfaceType.WRAPPER
    build(interface)  # fail early if the library cannot build the model
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", a.port))
    listener.listen(8)
    print(f"ready {a.port}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, interface), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
