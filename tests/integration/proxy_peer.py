#!/usr/bin/env python3
# The two ends test_proxy.sh puts zila_proxy between: a loopback echo or sink server and a
# client that sends a file and keeps what comes back; also a bitwise compare of two files.
import os
import socket
import sys
import threading
import time


def server(mode, port_file, out_dir, wait):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    # Written then renamed, so the test never reads half a port number.
    with open(port_file + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    n = 0
    while True:
        s, _ = ls.accept()
        n += 1
        threading.Thread(target=serve, args=(s, mode, os.path.join(out_dir, "conn.%d" % n), wait),
                         daemon=True).start()


def serve(s, mode, path, wait):
    # The partial file name changes when the connection ends, so a test can wait for it.
    got = 0
    with open(path + ".part", "wb") as f:
        if wait:
            time.sleep(wait)
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got += len(b)
                if mode == "echo":
                    s.sendall(b)
                else:
                    f.write(b)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    s.close()
    os.rename(path + ".part", path)


def client(port, send_path, recv_path):
    data = open(send_path, "rb").read()
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    err = []

    def sender():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=sender)
    t.start()
    got = bytearray()
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except OSError as e:
        err.append(e)
    t.join()
    s.close()
    if recv_path:
        open(recv_path, "wb").write(got)
    print("received %d%s" % (len(got), " (%s)" % err[0] if err else ""))


def bitdiff(a_path, b_path):
    a = open(a_path, "rb").read()
    b = open(b_path, "rb").read()
    if len(a) != len(b):
        print("length %d %d" % (len(a), len(b)))
        return
    print(sum(bin(x ^ y).count("1") for x, y in zip(a, b)))


def main():
    cmd = sys.argv[1]
    if cmd == "server":
        server(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]) if len(sys.argv) > 5 else 0)
    elif cmd == "client":
        client(int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    elif cmd == "bitdiff":
        bitdiff(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: proxy_peer.py server echo|sink PORTFILE OUTDIR [WAIT] | client PORT SEND [RECV] | bitdiff A B")


if __name__ == "__main__":
    main()
