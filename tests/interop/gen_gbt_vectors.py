#!/usr/bin/env python3
"""Makes General-Block-Transfer push vectors with gurux-dlms 1.0.203 (independent of our code):
a DATA-NOTIFICATION of twelve values (six OBIS codes and their double-long-unsigned values
1000 * C + 7 for 1-0:C.8.0, C = 1..6), in GBT blocks cut by Gurux's GXDLMSNotify with
general-block-transfer negotiated and a small max PDU, in HDLC frames (client 1,
server 1). Plain, or with --ciphered: general-glo-ciphering inside the blocks (GBT carries the
ciphered APDU), authenticated encryption, the Green Book keys 00..0F / D0..DF, system title
4D4D4D0000BC614E, invocation counter 0x1234.

Usage: python3 tests/interop/gen_gbt_vectors.py   (prints the frames, one per line)
"""
import sys

from gurux_dlms import GXByteBuffer, GXDLMSNotify
from gurux_dlms.enums import Conformance, DataType, InterfaceType, Security
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.GXCiphering import GXCiphering


def notification(ciphered):
    n = GXDLMSNotify(True, 1, 1, InterfaceType.HDLC)
    n.conformance = Conformance.GENERAL_BLOCK_TRANSFER | Conformance.DATA_NOTIFICATION
    # 64 bytes plain, 80 ciphered: sizes where gurux-dlms 1.0.203 marks its last block; at
    # some others (56, 64 ciphered) it leaves the last-block bit clear or acknowledges 0xFFFF.
    n.maxReceivePDUSize = 80 if ciphered else 64
    if ciphered:
        c = GXCiphering(bytes.fromhex("4D4D4D0000BC614E"))
        c.security = Security.AUTHENTICATION_ENCRYPTION
        c.blockCipherKey = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
        c.authenticationKey = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
        c.invocationCounter = 0x1234
        n.setCipher(c)
    body = GXByteBuffer()
    body.setUInt8(DataType.STRUCTURE)
    body.setUInt8(12)
    for c in range(1, 7):
        _GXCommon.setData(n.settings, body, DataType.OCTET_STRING, bytes([1, 0, c, 8, 0, 255]))
        _GXCommon.setData(n.settings, body, DataType.UINT32, 1000 * c + 7)
    body.position = 0
    return [bytes(m).hex().upper() for m in n.generateDataNotificationMessages(None, body)]


if __name__ == "__main__":
    for frame in notification("--ciphered" in sys.argv):
        print(frame)
