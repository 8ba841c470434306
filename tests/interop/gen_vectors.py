#!/usr/bin/env python3
"""Captures DLMS byte vectors from two independent implementations.

- gurux-dlms (Gurux's Python DLMS client): what a client sends (SNRM, AARQ, GET/SET/ACTION,
  selective access, wrapper headers) and A-XDR encodings of every simple data type.
- dlms-cosem (Palmlund's Python DLMS library): what a meter sends (UA, AARE, GET/SET/ACTION
  responses, exception responses, release) and HDLC frames from the server side.

Prints one JSON object {name: {"source": ..., "hex": ...}} on stdout. The committed output lives
in tests/vectors/independent.json; tests/interop_vectors.rs decodes and re-encodes every vector
with our code, and re-runs this script to prove the committed file is what the libraries emit.

Usage: python3 tests/interop/gen_vectors.py > tests/vectors/independent.json
"""
import binascii
import datetime
import json
import sys
from importlib.metadata import version

from gurux_dlms import GXDateTime, GXDLMSClient, GXByteBuffer, GXDLMSSettings
from gurux_dlms.enums import Authentication, Conformance, DataType, InterfaceType, Security
from gurux_dlms.secure import GXDLMSSecureClient
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.objects import (GXDLMSAssociationLogicalName, GXDLMSCaptureObject, GXDLMSClock,
                                GXDLMSProfileGeneric, GXDLMSRegister)

from dlms_cosem import dlms_data as dd
from dlms_cosem import enumerations as en
from dlms_cosem.hdlc import address, frames
from dlms_cosem.protocol import acse, xdlms

vectors = {}
GURUX = f"gurux-dlms {version('gurux-dlms')}"
COSEM = f"dlms-cosem {version('dlms-cosem')}"


def put(name, source, data):
    while isinstance(data, list):
        assert len(data) == 1, f"{name}: {len(data)} frames"
        data = data[0]
    vectors[name] = {"source": source, "hex": binascii.hexlify(bytes(data)).decode().upper()}


def client(interface, auth=Authentication.NONE, password=None):
    c = GXDLMSClient(True, 16, 1, auth, password, interface)
    c.negotiatedConformance = (Conformance.MULTIPLE_REFERENCES | Conformance.GET | Conformance.SET
                               | Conformance.ACTION | Conformance.SELECTIVE_ACCESS
                               | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ)
    return c


UTC = datetime.timezone.utc
# --- gurux-dlms: client side -------------------------------------------------------------------
c = client(InterfaceType.HDLC)
put("hdlc_snrm_default", GURUX, c.snrmRequest())
c = client(InterfaceType.HDLC)
c.hdlcSettings.maxInfoTX = 512
c.hdlcSettings.maxInfoRX = 512
put("hdlc_snrm_512", GURUX, c.snrmRequest())
c = client(InterfaceType.HDLC)
put("hdlc_aarq_none", GURUX, c.aarqRequest())
c = client(InterfaceType.HDLC, Authentication.LOW, "12345678")
put("hdlc_aarq_lls", GURUX, c.aarqRequest())
c = client(InterfaceType.HDLC)
put("hdlc_get_voltage", GURUX, c.read(GXDLMSRegister("1.0.32.7.0.255"), 2))

w = client(InterfaceType.WRAPPER)
put("wrapper_aarq_none", GURUX, w.aarqRequest())
put("wrapper_get_voltage", GURUX, w.read(GXDLMSRegister("1.0.32.7.0.255"), 2))
r1, r2 = GXDLMSRegister("1.0.32.7.0.255"), GXDLMSRegister("1.0.52.7.0.255")
put("wrapper_get_with_list", GURUX, w.readList([(r1, 2), (r2, 2), (r1, 3)]))
profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
clock = GXDLMSClock("0.0.1.0.0.255")
profile.captureObjects.append((clock, GXDLMSCaptureObject(2, 0)))
profile.captureObjects.append((GXDLMSRegister("1.0.1.8.0.255"), GXDLMSCaptureObject(2, 0)))
start = GXDateTime(datetime.datetime(2026, 11, 24, 0, 0, 0, tzinfo=UTC))
end = GXDateTime(datetime.datetime(2026, 11, 24, 6, 0, 0, tzinfo=UTC))
put("wrapper_get_profile_range", GURUX, w.readRowsByRange(profile, start, end))
put("wrapper_get_profile_entries", GURUX, w.readRowsByEntry(profile, 1, 10))
clock.time = GXDateTime(datetime.datetime(2026, 11, 24, 6, 0, 0, tzinfo=UTC))
put("wrapper_set_clock", GURUX, w.write(clock, 2))
put("wrapper_action_octets", GURUX,
    w.method(GXDLMSAssociationLogicalName(), 1, bytes(range(16)), DataType.OCTET_STRING))

# HLS-GMAC with a ciphered context: calling AP title, challenge and glo-initiate-request.
# Keys, system title, challenge and invocation counter are fixed so the bytes are repeatable.
sec = GXDLMSSecureClient(True, 16, 1, Authentication.HIGH_GMAC, None, InterfaceType.WRAPPER)
sec.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
sec.ciphering.systemTitle = bytes.fromhex("4D4D4D0000BC614E")
sec.ciphering.blockCipherKey = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
sec.ciphering.authenticationKey = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
sec.ciphering.invocationCounter = 1
sec.ctoSChallenge = bytes.fromhex("4B35366956616759")
put("wrapper_aarq_hls_gmac_ciphered", GURUX, sec.aarqRequest())


# Ciphered GET-Requests of an established association in every envelope: glo- (global key),
# ded- (dedicated key), general-glo/general-ded (general-protection negotiated), and
# authenticated-only. Invocation counter 0x01234567 as in the Green Book examples.
def ciphered(security=Security.AUTHENTICATION_ENCRYPTION, dedicated=None, general=False):
    from gurux_dlms.ConnectionState import ConnectionState
    c = GXDLMSSecureClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    c.ciphering.security = security
    c.ciphering.systemTitle = bytes.fromhex("4D4D4D0000BC614E")
    c.ciphering.blockCipherKey = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    c.ciphering.authenticationKey = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
    c.ciphering.invocationCounter = 0x01234567
    if dedicated:
        c.ciphering.dedicatedKey = dedicated
    conformance = Conformance.GET | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
    if general:
        conformance |= Conformance.GENERAL_PROTECTION
    c.proposedConformance = conformance
    c.negotiatedConformance = conformance
    aarq = c.aarqRequest()
    c.settings.connected = ConnectionState.DLMS
    return c, aarq


DEDICATED = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
clock_time = (GXDLMSClock("0.0.1.0.0.255"), 2)
c, aarq = ciphered(dedicated=DEDICATED)
put("wrapper_aarq_dedicated_key", GURUX, aarq)
put("wrapper_ded_get_clock", GURUX, c.read(*clock_time))
c, _ = ciphered()
put("wrapper_glo_get_clock", GURUX, c.read(*clock_time))
c, _ = ciphered(security=Security.AUTHENTICATION)
put("wrapper_glo_get_clock_auth_only", GURUX, c.read(*clock_time))
c, _ = ciphered(general=True)
put("wrapper_general_glo_get_clock", GURUX, c.read(*clock_time))
c, _ = ciphered(dedicated=DEDICATED, general=True)
put("wrapper_general_ded_get_clock", GURUX, c.read(*clock_time))

# A-XDR encodings of simple values, as gurux writes them.
AXDR = [
    ("null", DataType.NONE, None),
    ("boolean", DataType.BOOLEAN, True),
    ("double_long", DataType.INT32, -2),
    ("double_long_unsigned", DataType.UINT32, 123456),
    ("octet_string", DataType.OCTET_STRING, bytes([1, 2, 3])),
    ("visible_string", DataType.STRING, "ABC"),
    ("utf8_string", DataType.STRING_UTF8, "é"),
    ("integer", DataType.INT8, -3),
    ("long", DataType.INT16, -200),
    ("unsigned", DataType.UINT8, 255),
    ("long_unsigned", DataType.UINT16, 2300),
    ("long64", DataType.INT64, -1),
    ("long64_unsigned", DataType.UINT64, 1 << 32),
    ("enum", DataType.ENUM, 27),
    ("float32", DataType.FLOAT32, 230.5),
    ("float64", DataType.FLOAT64, 230.1),
    ("date_time", DataType.DATETIME, GXDateTime(datetime.datetime(2026, 11, 24, 6, 0, 0, tzinfo=UTC))),
]
settings = GXDLMSSettings(False, None)
for name, dtype, value in AXDR:
    buf = GXByteBuffer()
    _GXCommon.setData(settings, buf, dtype, value)
    put(f"axdr_{name}", GURUX, buf.array())

# --- dlms-cosem: server side --------------------------------------------------------------------
srv = address.HdlcAddress(logical_address=1, physical_address=None, address_type="server")
cli = address.HdlcAddress(logical_address=16, physical_address=None, address_type="client")
put("hdlc_ua_from_meter", COSEM,
    frames.UnNumberedAcknowledgmentFrame(destination_address=cli, source_address=srv,
                                         payload=bytes.fromhex("818012050180060180070400000001080400000001")).to_bytes())
put("hdlc_rr_from_client", COSEM,
    frames.ReceiveReadyFrame(destination_address=srv, source_address=cli, receive_sequence_number=3).to_bytes())
put("hdlc_disc_from_client", COSEM,
    frames.DisconnectFrame(destination_address=srv, source_address=cli).to_bytes())
IIP = xdlms.InvokeIdAndPriority(1, True, True)
# dlms-cosem 25.1's GetResponseNormal.to_bytes() fails on its own invoke-id byte, so the
# I-frame carries a GET-Response-With-List, which it encodes correctly.
with_list = xdlms.GetResponseWithList(
    response_data=[dd.UnsignedLongData(2301), en.DataAccessResult.OBJECT_UNDEFINED,
                   dd.DataStructure([dd.IntegerData(-1), dd.EnumData(35)])],
    invoke_id_and_priority=IIP)
put("hdlc_iframe_from_meter", COSEM,
    frames.InformationFrame(destination_address=cli, source_address=srv, payload=bytes.fromhex("E6E700") + with_list.to_bytes(),
                            send_sequence_number=2, receive_sequence_number=3).to_bytes())

conformance = xdlms.Conformance(block_transfer_with_get_or_read=True, multiple_references=True, get=True,
                                set=True, selective_access=True, action=True)
initiate = xdlms.InitiateResponse(negotiated_conformance=conformance, server_max_receive_pdu_size=1024)
put("aare_accepted", COSEM,
    acse.ApplicationAssociationResponse(result=en.AssociationResult.ACCEPTED,
                                        result_source_diagnostics=en.AcseServiceUserDiagnostics.NULL,
                                        user_information=acse.UserInformation(content=initiate)).to_bytes())
put("aare_rejected_auth", COSEM,
    acse.ApplicationAssociationResponse(result=en.AssociationResult.REJECTED_PERMANENT,
                                        result_source_diagnostics=en.AcseServiceUserDiagnostics.AUTHENTICATION_FAILED,
                                        authentication=en.AuthenticationMechanism.LLS).to_bytes())
put("get_response_with_list", COSEM, with_list.to_bytes())
put("axdr_scaler_unit", COSEM, dd.DataStructure([dd.IntegerData(-1), dd.EnumData(35)]).to_bytes())
put("get_response_error", COSEM,
    xdlms.GetResponseNormalWithError(error=en.DataAccessResult.READ_WRITE_DENIED,
                                     invoke_id_and_priority=IIP).to_bytes())
put("get_response_block", COSEM,
    xdlms.GetResponseWithBlock(data=bytes.fromhex("0109"), block_number=1,
                               invoke_id_and_priority=IIP).to_bytes())
put("exception_response", COSEM,
    xdlms.ExceptionResponse(state_error=en.StateException.SERVICE_NOT_ALLOWED,
                            service_error=en.ServiceException.SERVICE_NOT_SUPPORTED).to_bytes())
put("set_response_normal", COSEM,
    xdlms.SetResponseNormal(result=en.DataAccessResult.SUCCESS,
                            invoke_id_and_priority=IIP).to_bytes())
put("action_response_with_data", COSEM,
    xdlms.ActionResponseNormalWithData(status=en.ActionResultStatus.SUCCESS, data=bytes.fromhex("0904DEADBEEF"),
                                       invoke_id_and_priority=IIP).to_bytes())
put("release_response", COSEM,
    acse.ReleaseResponse(reason=en.ReleaseResponseReason.NORMAL).to_bytes())

json.dump(vectors, sys.stdout, indent=1, sort_keys=True)
sys.stdout.write("\n")
