"""A TCP link for the Gurux Python client (gurux-dlms) that counts what crosses it, shared by
the benchmark helpers gurux_poll.py and gurux_profile.py."""
import socket

from gurux_dlms import GXByteBuffer, GXReplyData


def frames(requests):
    """gurux returns a frame, a list of frames, or (readList) a list of lists of frames."""
    if isinstance(requests, (bytes, bytearray)):
        yield requests
        return
    for r in requests:
        yield from frames(r)


class Link:
    def __init__(self, port, client, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(timeout)
        self.client = client
        self.round_trips = self.sent = self.received = 0

    def exchange(self, request):
        """Sends one request (and its follow-ups) and returns the complete reply."""
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
