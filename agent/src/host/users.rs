//! Accounts from the host's `/etc/passwd`, read as a file: a static binary has no NSS, and a
//! sysroot's accounts are not the running system's.

use super::Host;

/// One `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// Parse `/etc/passwd` text (pure).
pub fn parse_passwd(text: &str) -> Vec<Account> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(Account {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// The account `name` of this host, if it has one.
pub fn lookup(host: &Host, name: &str) -> Option<Account> {
    let text = std::fs::read_to_string(host.etc("passwd")).ok()?;
    parse_passwd(&text).into_iter().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let a = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\nbroken\npostgres:x:107:114:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n",
        );
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].name, "postgres");
        assert_eq!((a[1].uid, a[1].gid), (107, 114));
        assert_eq!(a[1].home, "/var/lib/postgresql");
    }
}
