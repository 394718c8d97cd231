use super::*;

#[test]
fn the_hba_line_to_add() {
    let m = "no pg_hba.conf entry for replication connection from host \"10.0.0.9\", user \"repl\", no encryption";
    assert_eq!(hba_host(m).as_deref(), Some("10.0.0.9"));
    assert_eq!(
        hba_line("replication", "repl", "10.0.0.9"),
        "host    replication    repl    10.0.0.9/32    scram-sha-256"
    );
    assert_eq!(
        hba_line("all", "postgres", "fd00::9"),
        "host    all    postgres    fd00::9/128    scram-sha-256"
    );
    assert_eq!(hba_host("password authentication failed"), None);
    assert_eq!(quote("it's"), "'it''s'");
}
