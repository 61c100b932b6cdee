"""Announcing a port's addresses on its network before the container's first packet.

Neutron hands a freed address to the next port it makes, with another MAC, and a neighbour that talked to the
previous holder still has the old MAC in its ARP/ND cache. OVN answers the new container's ARP requests itself
(its ARP responder), so the neighbour never hears of the new MAC: it answers the new container's first packets
to a MAC nobody has, and reaches it only once its cache entry fails (seconds later). A gratuitous ARP (IPv4) and
an unsolicited Neighbour Advertisement with the override flag (IPv6), sent as if from the container's interface,
update every existing cache entry at once (Linux updates an entry it has on either, whatever ``arp_accept``);
this is what a VM's network scripts (``arping -U``) and Docker 27's ``advertise_addrs`` do, but it has to happen
before Join returns for the first packet to be safe.

The frames are injected into OVS as received on the port's OpenFlow port (an OpenFlow 1.3 PACKET_OUT to the
``TABLE`` port over the bridge's local management socket, then a barrier), so the container end of the veth need
not be up and no raw socket (CAP_NET_RAW) is needed.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct
import threading
import time
from collections.abc import Iterable, Sequence

OFP_VERSION = 0x04  # OpenFlow 1.3
OFPT_HELLO, OFPT_ERROR, OFPT_ECHO_REQUEST, OFPT_ECHO_REPLY = 0, 1, 2, 3
OFPT_PACKET_OUT, OFPT_BARRIER_REQUEST, OFPT_BARRIER_REPLY = 13, 20, 21
OFPP_TABLE = 0xFFFFFFF9
OFP_NO_BUFFER = 0xFFFFFFFF
_HEADER = struct.Struct("!BBHI")

_xids = itertools.count(1)
_xid_lock = threading.Lock()


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def gratuitous_arp(mac: str, address: ipaddress.IPv4Address) -> bytes:
    """A broadcast ARP request for ``address`` from ``address`` at ``mac`` (``arping -U``)."""
    sha, ip = _mac_bytes(mac), address.packed
    return (b"\xff" * 6 + sha + b"\x08\x06"
            + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + sha + ip + b"\x00" * 6 + ip)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def unsolicited_na(mac: str, address: ipaddress.IPv6Address) -> bytes:
    """An unsolicited Neighbour Advertisement (override, target link-layer address) to all nodes (RFC 4861 7.2.6)."""
    src, dst = address.packed, ipaddress.IPv6Address("ff02::1").packed
    lladdr = _mac_bytes(mac)
    body = struct.pack("!I", 0x20000000) + src + struct.pack("!BB", 2, 1) + lladdr  # O flag; option 2, 8 bytes
    pseudo = src + dst + struct.pack("!I3xB", 4 + len(body), 58)
    icmp = struct.pack("!BBH", 136, 0, 0) + body
    icmp = icmp[:2] + struct.pack("!H", _checksum(pseudo + icmp)) + icmp[4:]
    ipv6 = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 255) + src + dst
    return b"\x33\x33\x00\x00\x00\x01" + lladdr + b"\x86\xdd" + ipv6 + icmp


def frames_for(mac: str, addresses: Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> list[bytes]:
    return [gratuitous_arp(mac, a) if a.version == 4 else unsolicited_na(mac, a)
            for a in addresses if not a.is_link_local]


def _xid() -> int:
    with _xid_lock:
        return next(_xids) & 0xFFFFFFFF


def _message(kind: int, body: bytes = b"", xid: int | None = None) -> bytes:
    return _HEADER.pack(OFP_VERSION, kind, _HEADER.size + len(body), _xid() if xid is None else xid) + body


def packet_out(in_port: int, frame: bytes) -> bytes:
    """PACKET_OUT of ``frame`` through the flow tables, as received on OpenFlow port ``in_port``."""
    action = struct.pack("!HHIH6x", 0, 16, OFPP_TABLE, 0)  # OFPAT_OUTPUT
    return _message(OFPT_PACKET_OUT, struct.pack("!IIH6x", OFP_NO_BUFFER, in_port, len(action)) + action + frame)


class OpenFlowError(Exception):
    pass


def _read_message(sock: socket.socket) -> tuple[int, int, int, bytes]:
    header = _recv_exactly(sock, _HEADER.size)
    version, kind, length, xid = _HEADER.unpack(header)
    return version, kind, xid, _recv_exactly(sock, length - _HEADER.size)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OpenFlowError("the switch closed the OpenFlow connection")
        data += chunk
    return data


def inject(mgmt_socket: str, in_port: int, frames: Sequence[bytes], timeout: float = 2.0) -> None:
    """Send ``frames`` into the bridge whose management socket is ``mgmt_socket`` as received on ``in_port``;
    returns once the switch has processed them (barrier). Raises OSError or OpenFlowError."""
    if not frames:
        return
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(mgmt_socket)
        barrier = _xid()
        sock.sendall(_message(OFPT_HELLO) + b"".join(packet_out(in_port, f) for f in frames)
                     + _message(OFPT_BARRIER_REQUEST, xid=barrier))
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            version, kind, xid, body = _read_message(sock)
            if kind == OFPT_HELLO and version < OFP_VERSION:
                raise OpenFlowError(f"the switch speaks OpenFlow version {version} only (1.3 needed)")
            if kind == OFPT_ERROR:
                err_type, err_code = struct.unpack("!HH", body[:4]) if len(body) >= 4 else (0, 0)
                raise OpenFlowError(f"the switch refused the packet-out: OpenFlow error type {err_type} "
                                    f"code {err_code}")
            if kind == OFPT_ECHO_REQUEST:
                sock.sendall(_message(OFPT_ECHO_REPLY, body, xid=xid))
            if kind == OFPT_BARRIER_REPLY and xid == barrier:
                return
