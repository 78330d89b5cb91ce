#!/usr/bin/env python3
# Network probes test_netns.sh runs inside its namespaces: ICMP ping (no iputils needed),
# UDP broadcast send/receive and a timed TCP transfer.
import os
import socket
import struct
import sys
import time


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ping(addr, timeout):
    # One echo request a second until a reply from addr or the timeout: exit 0 or 1.
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    end = time.monotonic() + timeout
    seq = 0
    while time.monotonic() < end:
        seq += 1
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        body = b"zila-netns"
        pkt = struct.pack("!BBHHH", 8, 0, checksum(hdr + body), ident, seq) + body
        try:
            s.sendto(pkt, (addr, 0))
        except OSError:
            pass  # no route or link down: wait and try again
        wait_until = min(end, time.monotonic() + 1.0)
        while time.monotonic() < wait_until:
            s.settimeout(max(0.01, wait_until - time.monotonic()))
            try:
                data, src = s.recvfrom(2048)
            except (socket.timeout, OSError):
                break
            ihl = (data[0] & 0x0F) * 4
            typ, _, _, rid, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if typ == 0 and rid == ident and src[0] == addr:
                return 0
    return 1


def bcast_send(addr, port, msg, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    for _ in range(count):
        s.sendto(msg.encode(), (addr, port))
        time.sleep(0.2)
    return 0


def udp_recv(port, timeout, ready):
    # Prints the first datagram as "FROM MESSAGE"; exit 1 when none came in time.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    open(ready, "w").close()
    s.settimeout(timeout)
    try:
        data, src = s.recvfrom(2048)
    except socket.timeout:
        print("nothing")
        return 1
    print(src[0], data.decode(errors="replace"))
    return 0


def tcp_sink(port, ready):
    # Prints the rate between the first byte and the end of the stream, in bytes/s.
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("", port))
    ls.listen(1)
    open(ready, "w").close()
    ls.settimeout(30)
    s, _ = ls.accept()
    s.settimeout(30)
    first = None
    n = 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        if first is None:
            first = time.monotonic()
        n += len(b)
    t = time.monotonic() - first if first else 0
    print("%d %.3f %d" % (n, t, n / t if t > 0 else 0))
    return 0


def tcp_send(addr, port, nbytes):
    s = socket.create_connection((addr, port), timeout=30)
    block = b"z" * 65536
    left = nbytes
    while left > 0:
        s.sendall(block[:min(left, len(block))])
        left -= min(left, len(block))
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
    return 0


def main():
    a = sys.argv[1:]
    if a[:1] == ["ping"]:
        return ping(a[1], float(a[2]) if len(a) > 2 else 3.0)
    if a[:1] == ["bcast"]:
        return bcast_send(a[1], int(a[2]), a[3], int(a[4]) if len(a) > 4 else 3)
    if a[:1] == ["recv"]:
        return udp_recv(int(a[1]), float(a[2]), a[3])
    if a[:1] == ["sink"]:
        return tcp_sink(int(a[1]), a[2])
    if a[:1] == ["send"]:
        return tcp_send(a[1], int(a[2]), int(a[3]))
    sys.stderr.write("usage: netns_peer.py ping ADDR [SECONDS] | bcast ADDR PORT MSG [COUNT] |"
                     " recv PORT SECONDS READYFILE | sink PORT READYFILE | send ADDR PORT BYTES\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
