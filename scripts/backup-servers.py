#!/usr/bin/env python3
"""Real object-store servers for the backup tests, on the host's loopback only.

  backup-servers.py install                  # Azurite (npm, pinned) and moto's S3 server (PyPI venv)
  backup-servers.py start DIR                # start both; print shell exports (ports, state dir)
  backup-servers.py stop DIR                 # stop what `start DIR` started
  backup-servers.py selftest                 # start, exercise, stop (used by scripts/test-all.sh)
  backup-servers.py container azure|s3 PORT NAME     # create a container / bucket
  backup-servers.py flip azure|s3 PORT CONTAINER KEY # flip one bit of a stored object (mid-object)

* Azurite: Microsoft's Azure Storage emulator. Pinned to 3.35.0, the newest release whose
  `engines` fits Node.js 20 (`npm view azurite@3.35.0 engines` -> node >=10; 3.36.0 wants >=21,
  3.37.0 >=22). Blob service only, `--skipApiVersionCheck --loose`, data under DIR.
* moto: its S3 server mode (`moto[server]` 5.2.6 from PyPI) in a venv; keeps data in memory.
Both are installed under $DBHOST_SERVERS_CACHE (default /var/cache/dbhost-backup-servers).

Also a library for the VM scenarios: Azure SharedKey requests (create a container, read and
rewrite a blob: the flipped-byte test) and plain S3 requests (moto does not check signatures).
Python 3 standard library only.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

AZURITE_VERSION = "3.35.0"
MOTO_VERSION = "5.2.6"
CACHE = Path(os.environ.get("DBHOST_SERVERS_CACHE", "/var/cache/dbhost-backup-servers"))
AZURITE_DIR = CACHE / f"azurite-{AZURITE_VERSION}"
MOTO_DIR = CACHE / f"moto-{MOTO_VERSION}"
# Azurite's published development account (not a secret: the same in every Azurite).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def log(msg: str):
    print(f"backup-servers: {msg}", file=sys.stderr, flush=True)


def install():
    CACHE.mkdir(parents=True, exist_ok=True)
    bin_ = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if not bin_.exists():
        log(f"npm install azurite@{AZURITE_VERSION}")
        subprocess.run(["npm", "install", "--prefix", str(AZURITE_DIR), "--no-audit", "--no-fund",
                        "--loglevel", "error", f"azurite@{AZURITE_VERSION}"], check=True, stdout=sys.stderr)
    moto = MOTO_DIR / "bin" / "moto_server"
    if not moto.exists():
        log(f"pip install moto[server]=={MOTO_VERSION} into {MOTO_DIR}")
        subprocess.run([sys.executable, "-m", "venv", str(MOTO_DIR)], check=True)
        subprocess.run([str(MOTO_DIR / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        f"moto[server]=={MOTO_VERSION}"], check=True, stdout=sys.stderr)
    return bin_, moto


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"backup-servers: {what} exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"backup-servers: {what} did not listen on 127.0.0.1:{port} within {seconds} s")


def start(state: Path) -> dict:
    azurite, moto = install()
    state.mkdir(parents=True, exist_ok=True)
    (state / "azurite").mkdir(exist_ok=True)
    az_port, s3_port = free_port(), free_port()
    az = subprocess.Popen([str(azurite), "--blobHost", "127.0.0.1", "--blobPort", str(az_port), "--location",
                           str(state / "azurite"), "--skipApiVersionCheck", "--loose", "--silent"],
                          stdout=open(state / "azurite.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    # dbhost addresses S3-compatible endpoints path-style (http://HOST:PORT/BUCKET/KEY); without
    # this moto would take a dotted host name's first label for the bucket (virtual-host style).
    s3 = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(s3_port)],
                          env=dict(os.environ, S3_IGNORE_SUBDOMAIN_BUCKETNAME="true"),
                          stdout=open(state / "moto.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    info = {"azurite": {"pid": az.pid, "port": az_port}, "s3": {"pid": s3.pid, "port": s3_port}}
    (state / "servers.json").write_text(json.dumps(info))
    wait_port(az_port, az, "Azurite")
    wait_port(s3_port, s3, "moto")
    return info


def stop(state: Path):
    p = state / "servers.json"
    if not p.exists():
        return
    for name, s in json.loads(p.read_text()).items():
        try:
            os.killpg(s["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    p.unlink()


# ------------------------------------------------------------------ Azure Blob (SharedKey)

def azure(method: str, port: int, path: str, query: dict | None = None, body: bytes = b"",
          headers: dict | None = None, host: str = "127.0.0.1") -> tuple[int, bytes, dict]:
    """One request to Azurite at http://host:port/ACCOUNT/PATH, signed with the well-known key."""
    query = query or {}
    hdrs = {"x-ms-date": datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT"),
            "x-ms-version": "2021-08-06"}
    if method in ("PUT", "POST"):
        # urllib would add a form Content-Type of its own, which the signature must cover.
        hdrs["Content-Type"] = "application/octet-stream"
    hdrs.update(headers or {})
    url_path = f"/{ACCOUNT}/{path.lstrip('/')}"
    canon_headers = "".join(f"{k}:{v}\n" for k, v in sorted((k.lower(), v) for k, v in hdrs.items()
                                                            if k.lower().startswith("x-ms-")))
    canon_res = f"/{ACCOUNT}{urllib.parse.quote(url_path)}" + "".join(
        f"\n{k}:{v}" for k, v in sorted((k.lower(), v) for k, v in query.items()))
    length = str(len(body)) if body else ""
    ctype = hdrs.get("Content-Type", "")
    sts = "\n".join([method, "", "", length, "", ctype, "", "", "", "", "", ""]) + "\n" + canon_headers + canon_res
    sig = base64.b64encode(hmac.new(base64.b64decode(KEY), sts.encode(), hashlib.sha256).digest()).decode()
    hdrs["Authorization"] = f"SharedKey {ACCOUNT}:{sig}"
    url = f"http://{host}:{port}{urllib.parse.quote(url_path)}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    req = urllib.request.Request(url, data=body if method in ("PUT", "POST") else None, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def azure_container(port: int, name: str):
    st, body, _ = azure("PUT", port, name, {"restype": "container"})
    if st not in (201, 409):
        raise SystemExit(f"backup-servers: creating container {name}: HTTP {st} {body[:300]!r}")


def azure_get(port: int, container: str, blob: str) -> bytes:
    st, body, _ = azure("GET", port, f"{container}/{blob}")
    if st != 200:
        raise SystemExit(f"backup-servers: reading {container}/{blob}: HTTP {st} {body[:300]!r}")
    return body


def azure_put(port: int, container: str, blob: str, data: bytes):
    st, body, _ = azure("PUT", port, f"{container}/{blob}", body=data,
                        headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"})
    if st != 201:
        raise SystemExit(f"backup-servers: writing {container}/{blob}: HTTP {st} {body[:300]!r}")


# ------------------------------------------------------------------ S3 (moto: unsigned is fine)

def s3(method: str, port: int, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    # Without a Content-Type of its own urllib sends a form type, which moto's server parses.
    req = urllib.request.Request(f"http://127.0.0.1:{port}/{path.lstrip('/')}", data=body, method=method,
                                 headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def s3_bucket(port: int, name: str):
    st, body = s3("PUT", port, name, b"")
    if st not in (200, 409):
        raise SystemExit(f"backup-servers: creating bucket {name}: HTTP {st} {body[:300]!r}")


def s3_keys(port: int, bucket: str, prefix: str) -> list:
    st, body = s3("GET", port, f"{bucket}?list-type=2&prefix={urllib.parse.quote(prefix)}")
    if st != 200:
        raise SystemExit(f"backup-servers: listing {bucket}/{prefix}: HTTP {st}")
    import xml.etree.ElementTree as ET
    ns = {"s": "http://s3.amazonaws.com/doc/2006-03-01/"}
    return [k.text for k in ET.fromstring(body).findall(".//s:Contents/s:Key", ns)]


def flip_byte(data: bytes, offset: int) -> bytes:
    b = bytearray(data)
    b[offset % len(b)] ^= 0x01
    return bytes(b)


def selftest(state: Path):
    """Both servers answer the way the tests rely on: containers, blobs, buckets, a flip."""
    info = start(state)
    try:
        az, s3p = info["azurite"]["port"], info["s3"]["port"]
        azure_container(az, "selftest")
        azure_put(az, "selftest", "a/b.bin", b"hello")
        got = azure_get(az, "selftest", "a/b.bin")
        assert got == b"hello", got
        azure_put(az, "selftest", "a/b.bin", flip_byte(got, 1))
        assert azure_get(az, "selftest", "a/b.bin") == b"hdllo"
        st, _, _ = azure("GET", az, "selftest/a/b.bin", headers={"x-ms-version": "2021-08-06"}, host="127.0.0.1")
        assert st == 200
        s3_bucket(s3p, "selftest")
        assert s3("PUT", s3p, "selftest/x/y", b"data")[0] == 200
        assert s3_keys(s3p, "selftest", "x/") == ["x/y"]
        log(f"selftest ok: Azurite {AZURITE_VERSION} on :{az}, moto {MOTO_VERSION} on :{s3p}")
    finally:
        stop(state)


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    cmd = sys.argv[1]
    if cmd == "install":
        install()
    elif cmd == "start":
        info = start(Path(sys.argv[2]))
        print(f"export DBHOST_AZURITE_PORT={info['azurite']['port']} DBHOST_S3_PORT={info['s3']['port']} "
              f"DBHOST_BACKUP_SERVERS={sys.argv[2]}")
    elif cmd == "stop":
        stop(Path(sys.argv[2]))
    elif cmd == "container":
        kind, port, name = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        (azure_container if kind == "azure" else s3_bucket)(port, name)
    elif cmd == "flip":
        kind, port, container, key = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
        if kind == "azure":
            data = azure_get(port, container, key)
            azure_put(port, container, key, flip_byte(data, len(data) // 2))
        else:
            st, data = s3("GET", port, f"{container}/{key}")
            if st != 200:
                raise SystemExit(f"backup-servers: reading s3 {container}/{key}: HTTP {st}")
            st, _ = s3("PUT", port, f"{container}/{key}", flip_byte(data, len(data) // 2))
            if st != 200:
                raise SystemExit(f"backup-servers: writing s3 {container}/{key}: HTTP {st}")
        log(f"flipped one bit in the middle of {kind} {container}/{key} ({len(data)} bytes)")
    elif cmd == "selftest":
        selftest(Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/dbhost-backup-servers-selftest"))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
