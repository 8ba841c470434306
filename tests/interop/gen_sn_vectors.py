#!/usr/bin/env python3
"""Prints the short-name (SN) vectors of src/dlms/sn/tests.rs, made with gurux-dlms 1.0.203.

- Requests: what GXDLMSClient(useLogicalNameReferencing=False) emits (wrapper interface, the
  8-byte wrapper header cut off), and GXDLMSNotify(False, ...) for InformationReport.
- Responses: bytes written per the Green Book, then parsed by Gurux's SN client (getData);
  the value Gurux reads is printed beside each, and the Rust test asserts the same value.

Usage: python3 tests/interop/gen_sn_vectors.py
"""
import binascii
import datetime

from gurux_dlms import GXByteBuffer, GXDateTime, GXDLMSClient, GXDLMSNotify, GXReplyData
from gurux_dlms.enums import Authentication, Conformance, DataType, InterfaceType
from gurux_dlms.objects import (GXDLMSCaptureObject, GXDLMSClock, GXDLMSProfileGeneric,
                                GXDLMSRegister)

WRAPPER = InterfaceType.WRAPPER


def pdu(x):
    while isinstance(x, list):
        x = x[0]
    return binascii.hexlify(bytes(x)[8:]).decode().upper()


c = GXDLMSClient(False, 16, 1, Authentication.NONE, None, WRAPPER)
print("aarq_sn", pdu(c.aarqRequest()))
reg = GXDLMSRegister("1.0.32.7.0.255")
reg.shortName = 0x2000
print("read_register_value", pdu(c.read(reg, 2)))
print("read_register_scaler_unit", pdu(c.read(reg, 3)))
print("read_object_list", pdu(c.getObjectsRequest()))
clock = GXDLMSClock()
clock.shortName = 0x2800
clock.time = GXDateTime(datetime.datetime(2026, 12, 2, 7, 30, 0))
print("write_clock_time", pdu(c.write(clock, 2)))
profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
profile.shortName = 0x3000
profile.captureObjects.append((clock, GXDLMSCaptureObject(2, 0)))
print("read_profile_range", pdu(c.readRowsByRange(profile, datetime.datetime(2026, 11, 24, 0, 0),
                                                  datetime.datetime(2026, 11, 24, 1, 0))))
print("read_profile_entries", pdu(c.readRowsByEntry(profile, 1, 4)))
c.negotiatedConformance |= Conformance.MULTIPLE_REFERENCES
print("read_two", pdu(c.readList([(reg, 2), (reg, 3)])))
n = GXDLMSNotify(False, 16, 1, WRAPPER)
reg.value = 2301
print("information_report", pdu(n.generateReport(None, [(reg, 2)])))


def parse(hexpdu):
    client = GXDLMSClient(False, 16, 1, Authentication.NONE, None, WRAPPER)
    body = bytes.fromhex(hexpdu)
    frame = bytes.fromhex("000100010010") + len(body).to_bytes(2, "big") + body
    reply = GXReplyData()
    client.getData(GXByteBuffer(frame), reply)
    return reply.value, reply.error


for name, h in [("read_response_value", "0C010005000008FD"),
                ("read_response_scaler_unit", "0C010002020FFF1623"),
                ("read_response_two", "0C020005000008FD0002020FFF1623"),
                ("read_response_error", "0C010104"),
                ("write_response_success", "0D0100"),
                ("write_response_denied", "0D010103")]:
    print(name, h, "gurux reads value %r error %r" % parse(h))
