#!/usr/bin/python3
"""dbwriter: a steady INSERT/commit load on MariaDB that records every acknowledged row.

Usage: dbwriter OUT RATE [FIRST_ID [SOCKET | @ENDPOINT_FILE]]

Speaks the MySQL client protocol over the local socket itself (the guest image has python3 but
no MySQL module): one persistent connection as root (unix_socket authentication; $DBW_USER: an
account without a password instead), autocommit on,
one `INSERT INTO bench.w` every 1/RATE seconds with a fresh id per attempt. An OK packet means
the row is committed (acknowledged): "id unix_time" goes to OUT (flushed every 0.5 s and at
exit). On any failure (server stopping, socket gone) it reconnects every 10 ms and goes on with
the next id, so the longest gap between consecutive acknowledgements is the unavailability a
client saw. @ENDPOINT_FILE: the socket path is read from that file at every (re)connect, so a
cutover hook that rewrites it moves the client, as a DNS change would. A server that refuses
the write (read-only) counts as down. SIGTERM: flush and exit 0. Standard library only.
"""

import hashlib
import os
import signal
import socket
import struct
import sys
import time

CLIENT_LONG_PASSWORD = 1
CLIENT_PROTOCOL_41 = 0x200
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000


class Gone(Exception):
    pass


class Conn:
    def __init__(self, path, timeout=5.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        try:
            self.s.connect(path)
        except OSError as e:
            self.s.close()
            raise Gone(f"connect: {e}")
        self.buf = b""
        self.handshake()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def _recv(self, n):
        while len(self.buf) < n:
            try:
                c = self.s.recv(65536)
            except OSError as e:
                raise Gone(f"recv: {e}")
            if not c:
                raise Gone("connection closed")
            self.buf += c
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_packet(self):
        h = self._recv(4)
        n = h[0] | h[1] << 8 | h[2] << 16
        self.seq = (h[3] + 1) & 0xFF
        return self._recv(n)

    def send_packet(self, payload, seq=None):
        if seq is not None:
            self.seq = seq
        n = len(payload)
        try:
            self.s.sendall(struct.pack("<I", n)[:3] + bytes([self.seq]) + payload)
        except OSError as e:
            raise Gone(f"send: {e}")
        self.seq = (self.seq + 1) & 0xFF

    @staticmethod
    def error(p):
        code = struct.unpack("<H", p[1:3])[0]
        msg = p[3:]
        if msg[:1] == b"#":
            msg = msg[6:]
        return f"error {code}: {msg.decode(errors='replace')}"

    def handshake(self):
        p = self.read_packet()
        if p[:1] == b"\xff":
            raise Gone(self.error(p))
        # protocol 10: version NUL, thread id, scramble 1 (8), filler, caps...
        i = p.index(b"\0", 1) + 1
        i += 4
        scramble = p[i:i + 8]
        i += 9
        i += 2 + 1 + 2 + 2  # caps low, charset, status, caps high
        alen = p[i]
        i += 1 + 10
        rest = max(13, alen - 8)
        scramble += p[i:i + rest - 1]
        caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | \
            CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
        resp = struct.pack("<IIB", caps, 1 << 24, 33) + b"\0" * 23
        # empty auth response: root by unix_socket, or an account without a password
        resp += os.environ.get("DBW_USER", "root").encode() + b"\0" + b"\0"
        resp += b"mysql_native_password\0"
        self.send_packet(resp)
        while True:
            p = self.read_packet()
            if p[:1] == b"\x00":
                return
            if p[:1] == b"\xff":
                raise Gone(self.error(p))
            if p[:1] == b"\xfe":  # auth switch: unix_socket needs no data, an empty password none
                self.send_packet(b"")
                continue
            if p[:1] == b"\x01":  # more data: nothing to add
                continue
            raise Gone(f"unexpected auth packet {p[:8]!r}")

    def query(self, sql):
        self.send_packet(b"\x03" + sql.encode(), seq=0)
        p = self.read_packet()
        if p[:1] == b"\x00":
            return
        if p[:1] == b"\xff":
            raise Gone(self.error(p))
        raise Gone(f"unexpected reply {p[:8]!r}")


def main():
    out_path, rate = sys.argv[1], float(sys.argv[2])
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    path = sys.argv[4] if len(sys.argv) > 4 else "/run/mysqld/mysqld.sock"
    period = 1.0 / rate
    out = open(out_path, "a", buffering=1 << 16)
    log = open(out_path + ".log", "a", buffering=1)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    pad = hashlib.sha1(b"dbwriter").hexdigest() * 2
    c = None
    i = first - 1
    last_flush = time.monotonic()
    nxt = time.monotonic()
    down_since = None
    while not stop:
        now = time.monotonic()
        if now < nxt:
            time.sleep(nxt - now)
        nxt = max(nxt + period, time.monotonic() - period)
        try:
            if c is None:
                target = path
                if path.startswith("@"):
                    with open(path[1:]) as f:
                        target = f.read().strip()
                c = Conn(target)
            i += 1
            c.query(f"INSERT INTO bench.w (id, t, pad) VALUES ({i}, {time.time():.6f}, '{pad}')")
            out.write(f"{i} {time.time():.6f}\n")
            if down_since is not None:
                log.write(f"{time.time():.6f} up after {time.monotonic() - down_since:.3f} s\n")
                down_since = None
        except (Gone, OSError) as e:
            if down_since is None:
                down_since = time.monotonic()
                log.write(f"{time.time():.6f} down: id {i}: {e}\n")
            if c is not None:
                c.close()
                c = None
            nxt = time.monotonic() + 0.01
        if time.monotonic() - last_flush > 0.5:
            out.flush()
            last_flush = time.monotonic()
    out.flush()
    out.close()
    log.write(f"{time.time():.6f} stopped after id {i}\n")


if __name__ == "__main__":
    main()
