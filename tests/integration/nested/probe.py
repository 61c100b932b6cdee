"""Run inside a network namespace: write 802.1Q-tagged ARP requests with a raw AF_PACKET socket and report
the ARP replies that come back, with the VLAN id the kernel saw on them (PACKET_AUXDATA).

Works without the 8021q module: the kernel moves a received tag into the packet's metadata whether or not a
VLAN device exists, and AF_PACKET reports it.

    python probe.py IFNAME TIMEOUT JSON_LIST_OF_{vlan, src_mac, src_ip, target_ip}
Prints the JSON list of every ARP reply seen in TIMEOUT seconds: [{vlan, mac, ip, to}].
"""

from __future__ import annotations

import ctypes
import json
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4


class AuxData(ctypes.Structure):
    _fields_ = [("tp_status", ctypes.c_uint32), ("tp_len", ctypes.c_uint32), ("tp_snaplen", ctypes.c_uint32),
                ("tp_mac", ctypes.c_uint16), ("tp_net", ctypes.c_uint16), ("tp_vlan_tci", ctypes.c_uint16),
                ("tp_vlan_tpid", ctypes.c_uint16)]


def mac_bytes(mac: str) -> bytes:
    return bytes(int(b, 16) for b in mac.split(":"))


def arp_request(vlan: int, src_mac: str, src_ip: str, target_ip: str) -> bytes:
    eth = b"\xff" * 6 + mac_bytes(src_mac) + struct.pack("!HHH", ETH_P_8021Q, vlan & 0xFFF, ETH_P_ARP)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac_bytes(src_mac), socket.inet_aton(src_ip),
                      b"\x00" * 6, socket.inet_aton(target_ip))
    return eth + arp


def parse(frame: bytes, aux: AuxData | None) -> dict | None:
    vlan = None
    if aux is not None and aux.tp_status & TP_STATUS_VLAN_VALID:
        vlan = aux.tp_vlan_tci & 0xFFF
    ethertype = struct.unpack("!H", frame[12:14])[0]
    payload = frame[14:]
    if ethertype == ETH_P_8021Q:  # tag left in the frame
        vlan = struct.unpack("!H", frame[14:16])[0] & 0xFFF
        ethertype = struct.unpack("!H", frame[16:18])[0]
        payload = frame[18:]
    if ethertype != ETH_P_ARP or len(payload) < 28:
        return None
    op = struct.unpack("!H", payload[6:8])[0]
    if op != 2:
        return None
    return {"vlan": vlan, "mac": ":".join(f"{b:02x}" for b in payload[8:14]),
            "ip": socket.inet_ntoa(payload[14:18]), "to": socket.inet_ntoa(payload[24:28])}


def main() -> None:
    ifname, timeout, requests = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.bind((ifname, 0))
    sock.settimeout(0.1)
    replies: list[dict] = []
    deadline = time.monotonic() + timeout
    next_send = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_send:  # resend every 0.5 s: the first may race OVN's flows
            for r in requests:
                sock.send(arp_request(r["vlan"], r["src_mac"], r["src_ip"], r["target_ip"]))
            next_send = time.monotonic() + 0.5
        try:
            frame, ancdata, _, _ = sock.recvmsg(65535, socket.CMSG_SPACE(ctypes.sizeof(AuxData)))
        except TimeoutError:
            continue
        aux = None
        for level, kind, data in ancdata:
            if level == SOL_PACKET and kind == PACKET_AUXDATA:
                aux = AuxData.from_buffer_copy(data.ljust(ctypes.sizeof(AuxData), b"\0"))
        found = parse(frame, aux)
        if found is not None and found not in replies:
            replies.append(found)
    print(json.dumps(replies))


if __name__ == "__main__":
    main()
