#!/usr/bin/env python3
"""Loopback stand-ins for the network a backup destination needs, for scripts/check-static.sh.

  fake-endpoints.py DNS_NAME HTTP_PORT LOG

* DNS on 127.0.0.1:53 (UDP): an A query for DNS_NAME answers 127.0.0.1; anything else NXDOMAIN.
* HTTP on 127.0.0.1:HTTP_PORT: an S3 ListObjectsV2 answer listing one key, `probe.txt`, under
  whatever prefix was asked for.
Every query and request is appended to LOG. Runs until killed. Stdlib only.
"""
import http.server
import socket
import sys
import threading
import urllib.parse

name, port, log = sys.argv[1].lower().rstrip("."), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()


def note(line):
    with lock, open(log, "a") as f:
        f.write(line + "\n")


def qname(msg):
    labels, i = [], 12
    while i < len(msg) and msg[i]:
        labels.append(msg[i + 1:i + 1 + msg[i]].decode("ascii", "replace"))
        i += 1 + msg[i]
    return ".".join(labels).lower(), i + 1


def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 53))
    while True:
        msg, peer = s.recvfrom(512)
        if len(msg) < 12:
            continue
        q, end = qname(msg)
        qtype = int.from_bytes(msg[end:end + 2], "big")
        hit = q == name and qtype == 1
        note(f"dns {q} type={qtype} {'answer' if hit else 'nxdomain' if q != name else 'empty'}")
        head = bytearray(msg[:12])
        head[2] = 0x81
        head[3] = 0x80 if q == name else 0x83
        head[6:8] = (1 if hit else 0).to_bytes(2, "big")
        head[8:12] = bytes(4)
        out = bytes(head) + msg[12:end + 4]
        if hit:
            out += bytes([0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1])
        s.sendto(out, peer)


class S3(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        prefix = urllib.parse.parse_qs(url.query).get("prefix", [""])[0]
        note(f"http GET {self.path} host={self.headers.get('Host')}")
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>bucket</Name><Prefix>{prefix}</Prefix><KeyCount>1</KeyCount>"
            "<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
            f"<Contents><Key>{prefix}probe.txt</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
            '<ETag>"0"</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents>'
            "</ListBucketResult>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


threading.Thread(target=dns, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", port), S3).serve_forever()
