"""The frames that announce a port's addresses, and their OpenFlow injection (courier/binding/announce.py)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
from pathlib import Path

import pytest

from courier.binding import announce

MAC = "fa:16:3e:01:02:03"


def test_gratuitous_arp_is_a_broadcast_request_for_the_senders_own_address() -> None:
    frame = announce.gratuitous_arp(MAC, ipaddress.IPv4Address("10.0.0.5"))
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == bytes.fromhex("fa163e010203") and frame[12:14] == b"\x08\x06"
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)
    assert frame[22:28] == frame[6:12] and frame[28:32] == frame[38:42] == bytes([10, 0, 0, 5])
    assert len(frame) == 42


def test_unsolicited_na_overrides_and_has_a_valid_checksum() -> None:
    address = ipaddress.IPv6Address("fd00::5")
    frame = announce.unsolicited_na(MAC, address)
    assert frame[:6] == bytes.fromhex("333300000001") and frame[12:14] == b"\x86\xdd"
    ipv6, icmp = frame[14:54], frame[54:]
    assert ipv6[6] == 58 and ipv6[7] == 255 and ipv6[8:24] == address.packed
    assert icmp[0] == 136 and struct.unpack("!I", icmp[4:8])[0] == 0x20000000
    assert icmp[8:24] == address.packed and icmp[24:26] == b"\x02\x01" and icmp[26:32] == frame[6:12]
    pseudo = ipv6[8:40] + struct.pack("!I3xB", len(icmp), 58)
    assert announce._checksum(pseudo + icmp) == 0


def test_link_local_addresses_are_not_announced() -> None:
    frames = announce.frames_for(MAC, [ipaddress.ip_address("fe80::1"), ipaddress.ip_address("10.0.0.5")])
    assert len(frames) == 1 and frames[0][12:14] == b"\x08\x06"


def _switch(path: Path, seen: list[tuple[int, bytes]], error: bool = False) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server, contextlib.suppress(OSError):  # the client hangs up after an error
            conn.sendall(struct.pack("!BBHI", 4, announce.OFPT_HELLO, 8, 99))
            while True:
                header = conn.recv(8, socket.MSG_WAITALL)
                if len(header) < 8:
                    return
                _, kind, length, xid = struct.unpack("!BBHI", header)
                body = conn.recv(length - 8, socket.MSG_WAITALL) if length > 8 else b""
                seen.append((kind, body))
                if kind == announce.OFPT_PACKET_OUT and error:
                    conn.sendall(struct.pack("!BBHIHH", 4, announce.OFPT_ERROR, 12, xid, 2, 4))
                if kind == announce.OFPT_BARRIER_REQUEST:
                    conn.sendall(struct.pack("!BBHI", 4, announce.OFPT_BARRIER_REPLY, 8, xid))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_inject_sends_a_packet_out_per_frame_from_the_port_then_waits_for_the_barrier(tmp_path: Path) -> None:
    seen: list[tuple[int, bytes]] = []
    thread = _switch(tmp_path / "br-int.mgmt", seen)
    frames = [announce.gratuitous_arp(MAC, ipaddress.IPv4Address("10.0.0.5"))]
    announce.inject(str(tmp_path / "br-int.mgmt"), 7, frames)
    thread.join(5)
    kinds = [k for k, _ in seen]
    assert kinds == [announce.OFPT_HELLO, announce.OFPT_PACKET_OUT, announce.OFPT_BARRIER_REQUEST]
    body = seen[1][1]
    buffer_id, in_port, actions_len = struct.unpack("!IIH", body[:10])
    assert (buffer_id, in_port, actions_len) == (announce.OFP_NO_BUFFER, 7, 16)
    assert struct.unpack("!HHI", body[16:24]) == (0, 16, announce.OFPP_TABLE) and body[32:] == frames[0]


def test_inject_reports_the_switchs_refusal(tmp_path: Path) -> None:
    _switch(tmp_path / "br-int.mgmt", [], error=True)
    with pytest.raises(announce.OpenFlowError, match="type 2 code 4"):
        announce.inject(str(tmp_path / "br-int.mgmt"), 7, [b"\x00" * 42])
