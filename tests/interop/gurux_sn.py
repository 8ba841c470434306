"""Short-name referencing for gurux_server.py (`--referencing sn`): Gurux's GXDLMSServer with
logicalNameReferencing False and an Association SN (GXDLMSAssociationShortName) holding the
same objects. gurux-dlms 1.0.203's Python SN server path needs the shims below; each says
which bug it works around. Everything else (base names, ReadRequest/WriteRequest handling,
the A-XDR of the answers) is Gurux's."""
from gurux_dlms.ValueEventArgs import ValueEventArgs
from gurux_dlms.enums import ErrorCode
from gurux_dlms.objects import GXDLMSAssociationShortName, GXDLMSObject


class TransactionSlot:
    """The SN read handler both tests `server.transaction` for truth and calls
    `server.transaction()` (GXDLMSSNCommandHandler.handleReadRequest), which fails on None or
    on a transaction object; this value is falsy when empty, callable, and forwards the rest."""

    def __init__(self, value):
        self.value = value

    def __call__(self):
        return self.value

    def __bool__(self):
        return self.value is not None

    def __getattr__(self, name):
        return getattr(self.value, name)


class ShortNameBehaviour:
    @property
    def transaction(self):
        return TransactionSlot(self.__dict__.get("sn_transaction"))

    @transaction.setter
    def transaction(self, value):
        self.__dict__["sn_transaction"] = value.value if isinstance(value, TransactionSlot) else value

    def getTransaction(self):
        return self.__dict__.get("sn_transaction")


def patch():
    # GXDLMSServer.updateShortNames calls setShortName(), which the object classes lack.
    if not hasattr(GXDLMSObject, "setShortName"):
        GXDLMSObject.setShortName = lambda self, value: setattr(self, "shortName", value)
    # GXDLMSAssociationShortName.getObjects calls e.isSkipMaxPduSize(), which ValueEventArgs
    # lacks (it has the skipMaxPduSize field).
    if not hasattr(ValueEventArgs, "isSkipMaxPduSize"):
        ValueEventArgs.isSkipMaxPduSize = lambda self: self.skipMaxPduSize
    # GXDLMSSNCommandHandler.handleWriteRequest calls target.getItem() on its GXSNInfo, which
    # has the item field only, and passes list(e) for one ValueEventArgs to onPreWrite.
    from gurux_dlms.GXSNInfo import GXSNInfo
    if not hasattr(GXSNInfo, "getItem"):
        GXSNInfo.getItem = lambda self: self.item
    if not hasattr(ValueEventArgs, "__iter__"):
        ValueEventArgs.__iter__ = lambda self: iter([self])
    # GXDLMSAssociationShortName.getValue sets e.error = READ_WRITE_DENIED after every
    # attribute, read or not (an indentation slip): keep the error only for unknown ones.
    if not getattr(GXDLMSAssociationShortName, "dlms_bridge_patched", False):
        original = GXDLMSAssociationShortName.getValue

        def get_value(self, settings, e):
            value = original(self, settings, e)
            if e.index in (1, 2, 3, 4) and e.error == ErrorCode.READ_WRITE_DENIED:
                e.error = ErrorCode.OK
            return value

        GXDLMSAssociationShortName.getValue = get_value
        GXDLMSAssociationShortName.dlms_bridge_patched = True
