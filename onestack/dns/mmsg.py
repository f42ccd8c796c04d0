"""Batches of UDP datagrams read with recvmmsg(2) and written with sendmmsg(2).

Python's socket module reads and writes one datagram per system call. Under
load that costs more than the answer itself: every ``sendto`` can wake the
client and hand it the CPU before the next reply goes out, so the worker
pays a context switch per query. One ``sendmmsg`` per batch sends every
reply of the batch before the kernel switches tasks, as NSD does.

The message headers, addresses and packet buffers are allocated once, and
a reply is sent to the address its query came from without converting that
address to Python and back. Available on Linux with a 64-bit C library;
``DatagramBatch.create`` returns None elsewhere and the caller reads one
datagram at a time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import sys
from typing import Any

MSG_DONTWAIT = 0x40  # Linux <bits/socket.h>
SOCKADDR_SLOT = 128  # sizeof(struct sockaddr_storage)
SOCKADDR_SIZES = {socket.AF_INET: 16, socket.AF_INET6: 28}


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


HEADER_SIZE = ctypes.sizeof(_Mmsghdr)
IOVEC_SIZE = ctypes.sizeof(_Iovec)


def _load_calls() -> tuple[Any, Any] | None:
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        # PyDLL keeps the GIL during the call: the socket is non-blocking,
        # and the worker has no other thread to hand it to.
        libc = ctypes.PyDLL(ctypes.util.find_library("c"), use_errno=True)
        recvmmsg, sendmmsg = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recvmmsg.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    ]
    recvmmsg.restype = ctypes.c_int
    sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    sendmmsg.restype = ctypes.c_int
    return recvmmsg, sendmmsg


_CALLS = _load_calls()


class DatagramBatch:
    """Buffers for up to ``size`` datagrams in and ``size`` replies out.

    Datagram ``i`` of the last ``receive`` is ``inbuf[i * in_slot :
    i * in_slot + lengths[i]]`` and came from address slot ``i``. A reply put
    into send slot ``j`` goes to the address slot it is pointed at.
    """

    def __init__(self, family: int, size: int, in_slot: int, out_slot: int) -> None:
        assert _CALLS is not None
        self._recvmmsg, self._sendmmsg = _CALLS
        self.family = family
        self.size = size
        self.in_slot = in_slot
        self.out_slot = out_slot

        self.inbuf = bytearray(size * in_slot)
        self.outbuf = bytearray(size * out_slot)
        self.names = bytearray(size * SOCKADDR_SLOT)
        self._recv_headers = bytearray(size * HEADER_SIZE)
        self._send_headers = bytearray(size * HEADER_SIZE)
        self._recv_iovecs = bytearray(size * IOVEC_SIZE)
        self._send_iovecs = bytearray(size * IOVEC_SIZE)

        inbuf = _address_of(self.inbuf)
        outbuf = _address_of(self.outbuf)
        names = _address_of(self.names)
        recv_iovecs = (_Iovec * size).from_buffer(self._recv_iovecs)
        send_iovecs = (_Iovec * size).from_buffer(self._send_iovecs)
        recv = (_Mmsghdr * size).from_buffer(self._recv_headers)
        send = (_Mmsghdr * size).from_buffer(self._send_headers)
        for i in range(size):
            recv_iovecs[i].iov_base = inbuf + i * in_slot
            recv_iovecs[i].iov_len = in_slot
            send_iovecs[i].iov_base = outbuf + i * out_slot
            header = recv[i].msg_hdr
            header.msg_name = names + i * SOCKADDR_SLOT
            header.msg_namelen = SOCKADDR_SLOT
            header.msg_iov = ctypes.addressof(recv_iovecs) + i * IOVEC_SIZE
            header.msg_iovlen = 1
            header = send[i].msg_hdr
            header.msg_name = names + i * SOCKADDR_SLOT
            header.msg_namelen = SOCKADDR_SIZES[family]
            header.msg_iov = ctypes.addressof(send_iovecs) + i * IOVEC_SIZE
            header.msg_iovlen = 1
        self._recv_address = ctypes.addressof(recv)
        self._send_address = ctypes.addressof(send)
        self._names_address = names
        self._keep = (recv_iovecs, send_iovecs, recv, send)

        # Views for the fields written or read per datagram.
        self._received_lengths = memoryview(self._recv_headers).cast("I")
        self._length_index = _Mmsghdr.msg_len.offset // 4
        self._send_words = memoryview(self._send_headers).cast("Q")
        self._name_index = _Msghdr.msg_name.offset // 8
        self._send_lengths = memoryview(self._send_iovecs).cast("Q")
        self.in_view = memoryview(self.inbuf)
        self.out_view = memoryview(self.outbuf)

    @classmethod
    def create(
        cls, sock: socket.socket, size: int, in_slot: int, out_slot: int
    ) -> DatagramBatch | None:
        """Return a batch for ``sock``, or None where the calls are missing."""
        if _CALLS is None or sock.family not in SOCKADDR_SIZES:
            return None
        if HEADER_SIZE % 8 or IOVEC_SIZE != 16:
            return None
        return cls(sock.family, size, in_slot, out_slot)

    def receive(self, fd: int) -> list[int]:
        """Read up to ``size`` datagrams and return their lengths (maybe none)."""
        count = self._recvmmsg(fd, self._recv_address, self.size, MSG_DONTWAIT, None)
        if count < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EINTR):
                return []
            raise OSError(code, f"recvmmsg failed: {os.strerror(code)}")
        step = HEADER_SIZE // 4
        start = self._length_index
        return self._received_lengths[start : start + step * count : step].tolist()

    def address(self, index: int) -> Any:
        """Return address slot ``index`` as the ``socket`` module writes it."""
        raw = self.names[index * SOCKADDR_SLOT : (index + 1) * SOCKADDR_SLOT]
        port = int.from_bytes(raw[2:4], "big")
        if self.family == socket.AF_INET:
            return (socket.inet_ntop(socket.AF_INET, raw[4:8]), port)
        flowinfo = int.from_bytes(raw[4:8], "big")
        scope_id = int.from_bytes(raw[24:28], sys.byteorder)
        return (socket.inet_ntop(socket.AF_INET6, raw[8:24]), port, flowinfo, scope_id)

    def aim(self, slot: int, index: int, length: int) -> None:
        """Send ``length`` octets of out slot ``slot`` to address slot ``index``."""
        self._send_lengths[slot * 2 + 1] = length
        self._send_words[slot * (HEADER_SIZE // 8) + self._name_index] = (
            self._names_address + index * SOCKADDR_SLOT
        )

    def send(self, fd: int, count: int) -> int:
        """Send out slots ``0 .. count - 1`` and return how many were sent."""
        sent = self._sendmmsg(fd, self._send_address, count, 0)
        if sent < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EINTR):
                return 0
            raise OSError(code, f"sendmmsg failed: {os.strerror(code)}")
        return sent


def _address_of(buffer: bytearray) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))
