#!/usr/bin/python3
"""pgwriter: a steady INSERT/commit load on PostgreSQL that records every acknowledged row, and
follows the database when it moves.

Usage: pgwriter OUT RATE ENDPOINT_FILE [FIRST_ID [DATABASE]]

Speaks the PostgreSQL protocol (v3) over a unix socket itself (the guest image has python3 but
no PostgreSQL module), as $PGUSER (default: the OS user it runs as) with peer or trust
authentication, no password.
ENDPOINT_FILE holds the socket path (e.g. /run/pg-old/.s.PGSQL.5433); it is read again at every
(re)connect, so a cutover hook that rewrites it is what moves the clients, as a DNS change
would. One `INSERT INTO w` per 1/RATE s, autocommit; a CommandComplete means the row is
committed (acknowledged): "id unix_time" goes to OUT (flushed every 0.5 s and at exit). On any
failure it reconnects every 10 ms and goes on with the next id, so the longest gap between
consecutive acknowledgements is the unavailability a client saw. A server that answers but
refuses the write (read-only, in recovery) counts as down. SIGTERM: flush and exit 0.
Standard library only.
"""

import os
import pwd
import signal
import socket
import struct
import sys
import time


class Gone(Exception):
    pass


class Conn:
    def __init__(self, path, database, timeout=5.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        try:
            self.s.connect(path)
        except OSError as e:
            self.s.close()
            raise Gone(f"connect {path}: {e}")
        self.buf = b""
        user = os.environ.get("PGUSER") or pwd.getpwuid(os.getuid()).pw_name
        body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" + \
            database.encode() + b"\0\0"
        self.send(struct.pack("!I", len(body) + 4) + body)
        while True:
            t, p = self.read()
            if t == b"R" and struct.unpack("!I", p[:4])[0] != 0:
                raise Gone("the server wants a password (use peer authentication)")
            if t == b"E":
                raise Gone(self.error(p))
            if t == b"Z":
                return

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def send(self, b):
        try:
            self.s.sendall(b)
        except OSError as e:
            raise Gone(f"send: {e}")

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

    def read(self):
        h = self._recv(5)
        n = struct.unpack("!I", h[1:5])[0]
        return h[:1], self._recv(n - 4)

    @staticmethod
    def error(p):
        fields = dict((f[:1], f[1:].decode(errors="replace")) for f in p.split(b"\0") if f)
        return f"{fields.get(b'C', '?')}: {fields.get(b'M', '?')}"

    def query(self, sql):
        b = sql.encode() + b"\0"
        self.send(b"Q" + struct.pack("!I", len(b) + 4) + b)
        err = None
        while True:
            t, p = self.read()
            if t == b"E":
                err = self.error(p)
            if t == b"Z":
                if err:
                    raise Gone(err)
                return


def main():
    out_path, rate, endpoint = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    first = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    database = sys.argv[5] if len(sys.argv) > 5 else "shop"
    period = 1.0 / rate
    out = open(out_path, "a", buffering=1 << 16)
    log = open(out_path + ".log", "a", buffering=1)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    pad = "p" * 64
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
                with open(endpoint) as f:
                    path = f.read().strip()
                c = Conn(path, database)
            i += 1
            c.query(f"INSERT INTO w (id, t, pad) VALUES ({i}, {time.time():.6f}, '{pad}')")
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
