#!/usr/bin/env python3
"""An independent DLMS meter for interoperability tests, built on the Gurux DLMS library
(gurux-dlms on PyPI): registers with scalers and units, a clock, a serial number and a load
profile large enough to need block transfer, served over TCP with HDLC or the IEC 62056-47
wrapper on 127.0.0.1.

Usage: gurux_server.py --port PORT --transport hdlc|wrapper [--security] [--referencing sn]
                      [--gbt WINDOW] [--hls md5|sha1|sha256]
With --referencing sn the same objects are served over short names (gurux_sn.py).
With --security the meter is a GXDLMSSecureServer that requires HLS-GMAC and suite-0
authenticated encryption with the keys and system title in SECURITY.
Prints "ready PORT" on stdout once listening. The values are fixed (see VALUES, PROFILE_*), and
tests/gurux_interop.rs checks that our client reads exactly these.
"""
import argparse
import os
import datetime
import socket
import sys
import threading

from gurux_dlms import GXDateTime, GXDLMSServer, GXHdlcSettings, GXServerReply
from gurux_dlms.enums import (AccessMode, Authentication, Conformance, InterfaceType, MethodAccessMode,
                              ObjectType, Security, SourceDiagnostic, Unit)
from gurux_dlms.objects import (GXDLMSAssociationLogicalName, GXDLMSAssociationShortName, GXDLMSCaptureObject, GXDLMSClock,
                                GXDLMSData, GXDLMSProfileGeneric, GXDLMSRegister)
from gurux_dlms.secure import GXDLMSSecureServer

import gurux_sn

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


# The secured meter's keys (the Green Book example keys) and its system title.
SECURITY = {
    "encryption_key": "000102030405060708090A0B0C0D0E0F",
    "authentication_key": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF",
    "server_system_title": "4752584D45544552",  # "GRXMETER"
}


class MeterBehaviour:
    """Permissive access; authentication is left to the association (and, for the secured
    meter, to Gurux's HLS-GMAC implementation)."""

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


class Meter(MeterBehaviour, GXDLMSServer):
    pass


class SecureMeter(MeterBehaviour, GXDLMSSecureServer):
    pass


class ShortNameMeter(gurux_sn.ShortNameBehaviour, MeterBehaviour, GXDLMSServer):
    pass


class SecureShortNameMeter(gurux_sn.ShortNameBehaviour, MeterBehaviour, GXDLMSSecureServer):
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


def patch_secure_aare():
    """gurux-dlms 1.0.203's server AARE encoder (_GXAPDU.generateAARE) has three byte-level bugs
    on the secured path: it calls data.setUInt8() without the length of the responding AP title
    (a TypeError), and writes the lengths of the [4] responding-AP-title and [10]
    responding-authentication-value wrappers without their inner tag and length bytes. The
    patch lets the missing byte be written as a placeholder and then corrects exactly those
    three length bytes in the encoded AARE; everything else (ciphering, HLS-GMAC) is Gurux's."""
    from gurux_dlms._GXAPDU import _GXAPDU as apdu_class
    from gurux_dlms.GXByteBuffer import GXByteBuffer
    if getattr(apdu_class, "dlms_bridge_patched", False):
        return
    original_set = GXByteBuffer.setUInt8

    def set_uint8(self, item=0, index=None):
        return original_set(self, item, index)

    GXByteBuffer.setUInt8 = set_uint8
    original = apdu_class.generateAARE.__func__

    def generate(cls, settings, data, result, diagnostic, cipher, errorData, encryptedData):
        offset = len(data)
        # The encoder writes the responding-AP-title only for HLS-GMAC or ciphering, but HLS
        # SHA-256 hashes it into both proofs (Green Book 9.2.7.4): encode as for GMAC, then
        # put mechanism 6 back into the mechanism-name (its OID's last byte).
        sha256 = settings.authentication == Authentication.HIGH_SHA256
        if sha256:
            settings.authentication = Authentication.HIGH_GMAC
        try:
            original(cls, settings, data, result, diagnostic, cipher, errorData, encryptedData)
        finally:
            if sha256:
                settings.authentication = Authentication.HIGH_SHA256
        raw = data.array()
        if sha256:
            oid = bytes([0x89, 0x07, 0x60, 0x85, 0x74, 0x05, 0x08, 0x02, 0x05])
            at = bytes(raw).find(oid, offset)
            if at >= 0:
                data.setUInt8(0x06, at + len(oid) - 1)
        i = offset + 2
        while i + 1 < len(raw):
            tag, length = raw[i], raw[i + 1]
            if tag == 0xA4 and raw[i + 2] == 0x04 and raw[i + 3] == 0:  # AP title
                data.setUInt8(length + 2, i + 1)
                data.setUInt8(length, i + 3)
                length += 2
            elif tag == 0xAA and raw[i + 2] == 0x80 and raw[i + 3] == length:  # challenge
                data.setUInt8(length + 2, i + 1)
                length += 2
            i += 2 + length

    apdu_class.generateAARE = classmethod(generate)
    apdu_class.dlms_bridge_patched = True

    # Same release: GXDLMS.handleGloDedRequest (the server deciphering glo-/ded- requests)
    # builds AesGcmParameter(systemTitle, key, authenticationKey) without the leading tag
    # argument, so every field lands one place off. Insert the tag for three-argument calls.
    gxdlms = sys.modules["gurux_dlms.GXDLMS"]
    aes_parameter = gxdlms.AesGcmParameter

    def aes_gcm_parameter(*args, **kwargs):
        if len(args) == 3 and not kwargs:
            return aes_parameter(0, *args)
        return aes_parameter(*args, **kwargs)

    gxdlms.AesGcmParameter = aes_gcm_parameter

    # Same release: the ACTION handler passes list(e) for a ValueEventArgs e to the
    # onPreAction/onPostAction notifications, which fails; iterate as a list of one.
    from gurux_dlms.ValueEventArgs import ValueEventArgs
    if not hasattr(ValueEventArgs, "__iter__"):
        ValueEventArgs.__iter__ = lambda self: iter([self])

    # Same release: reply_to_HLS_authentication (Association LN method 1) converts the
    # client's f(StoC) with int(bytes) where it means the bytes (a ValueError). This is that
    # method for HLS-GMAC with the conversion fixed; the check and f(CtoS) are Gurux's
    # GXSecure.secure, and the counter used for f(CtoS) is consumed.
    from gurux_dlms.GXSecure import GXSecure
    from gurux_dlms.objects.enums import AssociationStatus
    original_invoke = GXDLMSAssociationLogicalName.invoke

    def invoke(self, settings, e):
        if e.index == 1 and settings.authentication in HASH_MECHANISMS.values():
            return hash_reply(self, settings, bytes(e.parameters or b""))
        if e.index != 1 or settings.authentication != Authentication.HIGH_GMAC:
            return original_invoke(self, settings, e)
        reply = bytes(e.parameters or b"")
        ic = int.from_bytes(reply[1:5], "big")
        expected = GXSecure.secure(settings, settings.cipher, ic, settings.stoCChallenge,
                                   settings.sourceSystemTitle)
        if bytes(expected) != reply:
            self.associationStatus = AssociationStatus.NON_ASSOCIATED
            return None
        self.associationStatus = AssociationStatus.ASSOCIATED
        cipher = settings.cipher
        answer = GXSecure.secure(settings, cipher, cipher.invocationCounter,
                                 settings.getCtoSChallenge(), cipher.systemTitle)
        cipher.invocationCounter += 1
        return answer

    GXDLMSAssociationLogicalName.invoke = invoke
    # (The ACTION handler then calls getAssociationStatus() and settings.setConnected(),
    # which the classes lack.)
    if not hasattr(GXDLMSAssociationLogicalName, "getAssociationStatus"):
        GXDLMSAssociationLogicalName.getAssociationStatus = lambda self: self.associationStatus
    from gurux_dlms.GXDLMSSettings import GXDLMSSettings
    if not hasattr(GXDLMSSettings, "setConnected"):
        GXDLMSSettings.setConnected = lambda self, value: setattr(self, "connected", value)

    # Same release: the meter's own invocation counter is reset to 0 with every association
    # (GXCiphering.reset) and the ciphered InitiateResponse in the AARE does not consume one,
    # so the first APDU after it repeats its counter (and IV). Green Book 9.2.7.2.4: a counter
    # is used once. Keep the counter across associations and count the AARE's.
    from gurux_dlms.GXCiphering import GXCiphering

    def reset(self):
        self.security = Security.NONE

    GXCiphering.reset = reset
    original_user_information = apdu_class.getUserInformation.__func__

    def user_information(cls, settings, cipher):
        out = original_user_information(cls, settings, cipher)
        if cipher and cipher.isCiphered():
            cipher.invocationCounter += 1
        return out

    apdu_class.getUserInformation = classmethod(user_information)


# HLS by hashing (mechanisms 3, 4, 6), with this secret: --hls md5|sha1|sha256.
HLS_SECRET = b"Gurux-HLS-secret"
HASH_MECHANISMS = {"md5": Authentication.HIGH_MD5, "sha1": Authentication.HIGH_SHA1,
                   "sha256": Authentication.HIGH_SHA256}


def hash_reply(association, settings, reply):
    """reply_to_HLS_authentication for the hash mechanisms, processed by Gurux's GXSecure.secure.
    gurux-dlms 1.0.203's own method fails on int(bytes) as for GMAC, and for SHA-256 hashes the
    secret alone on the meter's side while its client (GXDLMSClient) binds both system titles
    and both challenges (Green Book 9.2.7.4): the meter's side here is the client's composition
    mirrored, so Gurux's own client would associate with it."""
    from gurux_dlms.GXSecure import GXSecure
    from gurux_dlms.objects.enums import AssociationStatus
    secret = bytes(association.secret)
    stoc, ctos = bytes(settings.stoCChallenge), bytes(settings.getCtoSChallenge())
    if settings.authentication == Authentication.HIGH_SHA256:
        client_title = bytes(settings.sourceSystemTitle or b"")
        server_title = bytes.fromhex(SECURITY["server_system_title"])
        check = secret + client_title + server_title + stoc + ctos
        answer = secret + server_title + client_title + ctos + stoc
        expected = GXSecure.secure(settings, settings.cipher, 0, stoc, check)
        proof = GXSecure.secure(settings, settings.cipher, 0, ctos, answer)
    else:
        expected = GXSecure.secure(settings, settings.cipher, 0, stoc, secret)
        proof = GXSecure.secure(settings, settings.cipher, 0, ctos, secret)
    if bytes(expected) != reply:
        association.associationStatus = AssociationStatus.NON_ASSOCIATED
        return None
    association.associationStatus = AssociationStatus.ASSOCIATED
    return proof


def patch_sn_hash_reply():
    """reply_to_HLS_authentication over SN (Association SN method 8, which Gurux's SN read
    handler serves for a ReadRequest with parameterized access of 0xFA58): gurux-dlms 1.0.203
    converts f(StoC) with int(bytes) there too. The hash mechanisms through hash_reply, as
    for LN; a proof that does not verify is refused with read-write-denied."""
    from gurux_dlms.enums import ErrorCode
    from gurux_dlms.objects import GXDLMSAssociationShortName
    from gurux_dlms.ConnectionState import ConnectionState
    if getattr(GXDLMSAssociationShortName, "dlms_bridge_hls_patched", False):
        return
    original = GXDLMSAssociationShortName.invoke

    def invoke(self, settings, e):
        if e.index != 8 or settings.authentication not in HASH_MECHANISMS.values():
            return original(self, settings, e)
        proof = hash_reply(self, settings, bytes(e.parameters or b""))
        if proof is None:
            settings.connected = settings.connected & ~ConnectionState.DLMS
            e.error = ErrorCode.READ_WRITE_DENIED
            return None
        settings.connected = settings.connected | ConnectionState.DLMS
        return proof

    GXDLMSAssociationShortName.invoke = invoke
    GXDLMSAssociationShortName.dlms_bridge_hls_patched = True


def patch_gbt():
    """gurux-dlms 1.0.203's GET handler reads the GBT window as settings.gbtWndowSize (sic), which
    GXDLMSSettings does not have (it has gbtWindowSize): the misspelt name as an alias."""
    from gurux_dlms.GXDLMSSettings import GXDLMSSettings
    if not hasattr(GXDLMSSettings, "gbtWndowSize"):
        GXDLMSSettings.gbtWndowSize = property(lambda self: self.gbtWindowSize)


def build(interface, secure=False, hls=None, short_names=False, gbt_window=None):
    if short_names:
        gurux_sn.patch()
        meter = (SecureShortNameMeter if secure or hls == "sha256" else ShortNameMeter)(False, interface)
    else:
        # SHA-256 needs the meter's system title in the AARE: the secure server, ciphering off.
        meter = (SecureMeter if secure or hls == "sha256" else Meter)(True, interface)
    if secure or hls:
        patch_secure_aare()
    if hls == "sha256":
        meter.settings.cipher = meter.settings.ciphering
        meter.getCiphering().security = Security.NONE
        meter.getCiphering().systemTitle = bytes.fromhex(SECURITY["server_system_title"])
    if secure:
        # gurux-dlms 1.0.203's GXDLMSSecureServer stores its GXCiphering as settings.ciphering,
        # but the AARQ/APDU code reads settings.cipher (None): the same object under both names.
        meter.settings.cipher = meter.settings.ciphering
        patch_secure_aare()
        c = meter.getCiphering()
        c.security = Security.AUTHENTICATION_ENCRYPTION
        c.systemTitle = bytes.fromhex(SECURITY["server_system_title"])
        c.blockCipherKey = bytes.fromhex(SECURITY["encryption_key"])
        c.authenticationKey = bytes.fromhex(SECURITY["authentication_key"])
    meter.hdlc = HdlcLimits()
    conformance = (Conformance.GET | Conformance.SET | Conformance.SELECTIVE_ACCESS
                   | Conformance.MULTIPLE_REFERENCES | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
                   | Conformance.ACTION)
    if gbt_window is not None:
        patch_gbt()
        conformance |= Conformance.GENERAL_BLOCK_TRANSFER
        meter.settings.gbtWindowSize = gbt_window
    meter.setConformance(conformance)
    if short_names:
        meter.setConformance(Conformance.READ | Conformance.WRITE | Conformance.PARAMETERIZED_ACCESS
                             | Conformance.MULTIPLE_REFERENCES | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ)
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
    association = GXDLMSAssociationShortName() if short_names else GXDLMSAssociationLogicalName()
    if secure:
        association.authenticationMechanismName.mechanismId = Authentication.HIGH_GMAC
    if hls:
        if short_names:
            # Association SN has no mechanism name: the server takes the AARQ's mechanism.
            patch_sn_hash_reply()
        else:
            association.authenticationMechanismName.mechanismId = HASH_MECHANISMS[hls]
        association.secret = HLS_SECRET
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


def serve(conn, interface, secure, hls, short_names=False, gbt_window=None):
    meter = build(interface, secure, hls, short_names, gbt_window)
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
    ap.add_argument("--security", action="store_true", help="require HLS-GMAC and authenticated encryption")
    ap.add_argument("--gbt", type=int, metavar="WINDOW", help="grant general-block-transfer with this window")
    ap.add_argument("--hls", choices=sorted(HASH_MECHANISMS), help="require HLS with this hash and HLS_SECRET")
    ap.add_argument("--referencing", choices=["ln", "sn"], default="ln", help="logical or short names")
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
            "security": SECURITY,
            "hls_secret": HLS_SECRET.decode(),
        }))
        return 0
    interface = InterfaceType.HDLC if a.transport == "hdlc" else InterfaceType.WRAPPER
    short_names = a.referencing == "sn"
    build(interface, a.security, a.hls, short_names, a.gbt)  # fail early if the library cannot build the model
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", a.port))
    listener.listen(8)
    print(f"ready {a.port}", flush=True)
    # gurux-dlms prints "Encryption is applied." for every ciphered APDU; the test stops
    # reading stdout after the ready line, so later prints would raise BrokenPipeError
    # inside Gurux's decryption. Nothing else goes to stdout from here on.
    sys.stdout = open(os.devnull, "w")
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, interface, a.security, a.hls, short_names, a.gbt), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
