use super::mysql::*;
use super::*;

/// A MariaDB 10.11 handshake as the server sends it (mysql_native_password default plugin).
fn mariadb_handshake(nonce: &[u8; 20]) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
    p.extend_from_slice(&42u32.to_le_bytes());
    p.extend_from_slice(&nonce[..8]);
    p.push(0);
    let caps: u32 = 0xF7FE | (0x81BF << 16);
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0u8; 6]);
    p.extend_from_slice(&[0x1d, 0, 0, 0]);
    p.extend_from_slice(&nonce[8..]);
    p.push(0);
    p.extend_from_slice(b"mysql_native_password\0");
    p
}

#[test]
fn handshake_is_parsed() {
    let nonce: [u8; 20] = *b"abcdefghijklmnopqrst";
    let h = parse_handshake(&mariadb_handshake(&nonce)).unwrap();
    assert_eq!(h.server_version, "5.5.5-10.11.6-MariaDB-0+deb12u1");
    assert_eq!(h.connection_id, 42);
    assert_eq!(h.nonce, nonce.to_vec());
    assert_eq!(h.plugin, "mysql_native_password");
    assert!(h.capabilities & CLIENT_PLUGIN_AUTH != 0);
    assert!(parse_handshake(&[9, 1, 2]).is_err());
    assert!(parse_handshake(&[10, b'x']).is_err());
}

#[test]
fn native_password_scramble_matches_the_reference() {
    // The server stores SHA1(SHA1(pw)); it checks SHA1(nonce + stored) XOR reply == SHA1(pw).
    use sha1::{Digest, Sha1};
    let nonce = b"01234567890123456789";
    let reply = scramble_native(b"secret", nonce);
    let stored = Sha1::digest(Sha1::digest(b"secret"));
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(stored);
    let x = h.finalize();
    let candidate: Vec<u8> = reply.iter().zip(x.iter()).map(|(a, b)| a ^ b).collect();
    assert_eq!(Sha1::digest(&candidate).as_slice(), stored.as_slice());
    assert!(scramble_native(b"", nonce).is_empty());
    assert_eq!(scramble_sha2(b"pw", nonce).len(), 32);
}

#[test]
fn lenenc_roundtrip() {
    for n in [
        0u64,
        250,
        251,
        65535,
        65536,
        0xFF_FFFF,
        0x100_0000,
        u64::MAX,
    ] {
        let mut v = Vec::new();
        put_lenenc_int(&mut v, n);
        let mut i = 0;
        assert_eq!(lenenc_int(&v, &mut i), Some(n), "{n}");
        assert_eq!(i, v.len());
    }
    let mut i = 0;
    assert_eq!(lenenc_int(&[0xFB], &mut i), None);
}

#[test]
fn rows_and_quotes() {
    let row = [3, b'a', b'b', b'c', 0xFB, 0];
    assert_eq!(
        parse_row(&row, 3).unwrap(),
        vec![Some("abc".to_string()), None, Some(String::new())]
    );
    assert_eq!(parse_row(&row, 4), None);
    assert_eq!(quote("it's \\ x"), "'it''s \\\\ x'");
    assert_eq!(
        auth_data("unix_socket", "ignored", b"n").unwrap(),
        Vec::<u8>::new()
    );
    assert!(auth_data("client_ed25519", "", b"")
        .unwrap_err()
        .contains("client_ed25519"));
}

#[test]
fn hosts_file_lookup() {
    let t = "127.0.0.1 localhost\n# 10.9.9.9 old-db\n10.0.0.5  old-db old-db.example  # the source\n::1 localhost ip6-localhost\n";
    let d = tempfile::tempdir().unwrap();
    let h = Host::with_root(d.path());
    std::fs::create_dir_all(h.etc("")).unwrap();
    std::fs::write(h.etc("hosts"), t).unwrap();
    let e = resolve(&h, "old-db", 5432).unwrap();
    assert_eq!(e.to_string(), "old-db:5432 (10.0.0.5)");
    assert_eq!(
        resolve(&h, "OLD-DB.example", 1).unwrap().to_string(),
        "OLD-DB.example:1 (10.0.0.5)"
    );
    // IPv4 first when a name has both.
    assert_eq!(
        resolve(&h, "localhost", 1).unwrap().to_string(),
        "localhost:1 (127.0.0.1)"
    );
    assert_eq!(
        resolve(&h, "127.0.0.2", 3306).unwrap().to_string(),
        "127.0.0.2:3306"
    );
    // no resolv.conf under this root: a clear error, no libc lookup
    let err = resolve(&h, "elsewhere", 1).unwrap_err().to_string();
    assert!(
        err.contains("elsewhere") && err.contains("resolv.conf"),
        "{err}"
    );
}

fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    v.push(seq);
    v.extend_from_slice(payload);
    v
}

fn read_packet(s: &mut std::os::unix::net::UnixStream) -> (u8, Vec<u8>) {
    use std::io::Read;
    let mut h = [0u8; 4];
    s.read_exact(&mut h).unwrap();
    let n = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
    let mut p = vec![0; n];
    s.read_exact(&mut p).unwrap();
    (h[3], p)
}

/// A MariaDB that switches root to unix_socket (Debian's default), then answers one query with
/// a two-column result set and a second with an error.
fn fake_mariadb(mut s: std::os::unix::net::UnixStream) {
    use std::io::Write;
    let nonce = *b"abcdefghijklmnopqrst";
    s.write_all(&packet(0, &mariadb_handshake(&nonce))).unwrap();
    let (seq, resp) = read_packet(&mut s);
    assert_eq!(seq, 1);
    assert!(resp.windows(5).any(|w| w == b"root\0"), "{resp:?}");
    s.write_all(&packet(2, b"\xfeunix_socket\0")).unwrap();
    let (seq, data) = read_packet(&mut s);
    assert_eq!((seq, data.len()), (3, 0), "unix_socket sends nothing");
    s.write_all(&packet(4, &[0, 0, 0, 2, 0, 0, 0])).unwrap();
    // SELECT @@datadir, NULL
    let (seq, q) = read_packet(&mut s);
    assert_eq!((seq, q[0]), (0, 3));
    assert_eq!(&q[1..], b"SELECT @@datadir AS d, NULL AS n");
    let mut out = packet(1, &[2]);
    for (i, name) in ["d", "n"].iter().enumerate() {
        let mut c = Vec::new();
        for f in ["def", "", "", ""] {
            put_lenenc_int(&mut c, f.len() as u64);
            c.extend_from_slice(f.as_bytes());
        }
        put_lenenc_int(&mut c, 1);
        c.extend_from_slice(name.as_bytes());
        c.extend_from_slice(&[0, 0x0c, 45, 0, 0, 1, 0, 0xfd, 0, 0, 0, 0, 0]);
        out.extend(packet(2 + i as u8, &c));
    }
    out.extend(packet(4, &[0xfe, 0, 0, 2, 0]));
    let mut r = Vec::new();
    put_lenenc_int(&mut r, 15);
    r.extend_from_slice(b"/var/lib/mysql/");
    r.push(0xfb);
    out.extend(packet(5, &r));
    out.extend(packet(6, &[0xfe, 0, 0, 2, 0]));
    s.write_all(&out).unwrap();
    let (_, q) = read_packet(&mut s);
    assert_eq!(&q[1..], b"SET GLOBAL read_only = 1");
    let mut e = vec![0xff];
    e.extend_from_slice(&1227u16.to_le_bytes());
    e.extend_from_slice(b"#42000Access denied; you need the SUPER privilege");
    s.write_all(&packet(1, &e)).unwrap();
    let (_, q) = read_packet(&mut s);
    assert_eq!(q, vec![1], "COM_QUIT at the end");
}

#[test]
fn mysql_session_against_a_fake_server() {
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("mysqld.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let server = std::thread::spawn(move || fake_mariadb(l.accept().unwrap().0));
    let t = Target::new(Protocol::Mysql, Endpoint::Unix(sock), "root");
    {
        let mut s = REAL.connect(&t).unwrap();
        let r = s.query("SELECT @@datadir AS d, NULL AS n").unwrap();
        assert_eq!(r.columns, vec!["d", "n"]);
        assert_eq!(r.scalar(), Some("/var/lib/mysql/"));
        assert_eq!(r.get(0, "n"), None);
        let e = s.query("SET GLOBAL read_only = 1").unwrap_err();
        let db = db_error(&e).unwrap();
        assert_eq!(db.code(), "1227");
        assert!(e.to_string().contains("SUPER privilege"), "{e}");
    }
    server.join().unwrap();
}

#[test]
fn unreachable_socket_is_named() {
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("nobody.sock");
    let t = Target::new(Protocol::Postgres, Endpoint::Unix(sock.clone()), "postgres");
    let e = REAL.connect(&t).err().unwrap();
    assert!(
        matches!(db_error(&e), Some(DbError::Unreachable { .. })),
        "{e}"
    );
    assert!(e.to_string().contains(&sock.display().to_string()), "{e}");
}

#[test]
fn fake_db_rules_and_refusals() {
    let f = FakeDb::new();
    f.answer("SELECT 1", Rows::value("1"));
    f.answer_at("127.0.0.2", "SHOW", Rows::value("replica"));
    f.fail("", "DROP", "42P01", "no such table");
    f.refuse_login("as repl", "28000", "no pg_hba.conf entry");
    let local = Target::new(Protocol::Postgres, Endpoint::Unix("/s".into()), "postgres");
    let remote = Target::new(
        Protocol::Postgres,
        Endpoint::Tcp {
            name: "127.0.0.2".into(),
            addr: "127.0.0.2:5432".parse().unwrap(),
        },
        "postgres",
    );
    assert_eq!(
        scalar(&f, &local, "SELECT 1").unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(scalar(&f, &local, "SHOW x").unwrap(), None);
    assert_eq!(
        scalar(&f, &remote, "SHOW x").unwrap().as_deref(),
        Some("replica")
    );
    assert_eq!(
        db_error(&query(&f, &local, "DROP t").unwrap_err())
            .unwrap()
            .code(),
        "42P01"
    );
    let mut repl = remote.clone();
    repl.user = "repl".into();
    let e = f.connect(&repl).err().unwrap();
    assert!(matches!(db_error(&e), Some(DbError::Refused { .. })));
    assert_eq!(
        f.statements(),
        vec!["SELECT 1", "SHOW x", "SHOW x", "DROP t"]
    );
}
