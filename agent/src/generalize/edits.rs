//! Pure text transforms used by generalize: each takes the current file content and returns the
//! new content (identical input → identical output, so applying twice changes nothing). Lines the
//! transform does not concern are kept byte-identical.

use serde::Serialize;

/// A content transform applied to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "edit", content = "arg")]
pub enum Edit {
    /// `/etc/shadow`: the root password field becomes `*` (no hash left in the image).
    LockRoot,
    /// `mdadm.conf`: `HOMEHOST <ignore>`, ARRAY lines with host-bound names dropped.
    MdadmHostIndependent,
    /// `/etc/hosts`: drop `127.0.1.1` lines naming this (builder) host name.
    DropHostsName(String),
    /// MySQL option files: empty every `password =` value (client credentials).
    BlankPasswords,
    /// `mysqld-auto.cnf` (SET PERSIST JSON): drop host-specific variables.
    MysqldAutoCnf,
    /// `postgresql.auto.conf`: drop replication settings naming another server.
    PgAutoConf,
    /// `/etc/hostname`: `localhost` unless already a generic name (`localhost`,
    /// `localhost.localdomain` as waagent -deprovision writes it).
    ResetHostname,
}

impl Edit {
    /// Apply the transform. `Err` when the input cannot be understood (the file is then left alone).
    pub fn apply(&self, input: &str) -> Result<String, String> {
        match self {
            Edit::LockRoot => Ok(lock_root(input)),
            Edit::MdadmHostIndependent => Ok(mdadm_host_independent(input)),
            Edit::DropHostsName(name) => Ok(drop_hosts_name(input, name)),
            Edit::BlankPasswords => Ok(blank_passwords(input)),
            Edit::MysqldAutoCnf => mysqld_auto_cnf(input),
            Edit::PgAutoConf => Ok(pg_auto_conf(input)),
            Edit::ResetHostname => Ok(match input.trim() {
                "localhost" | "localhost.localdomain" => input.to_string(),
                _ => "localhost\n".to_string(),
            }),
        }
    }

    /// What the edit does, for `--dry-run`.
    pub fn describe(&self) -> String {
        match self {
            Edit::LockRoot => "lock the root password (field set to `*`, hash removed)".into(),
            Edit::MdadmHostIndependent => {
                "set `HOMEHOST <ignore>` and drop ARRAY lines bound to a host name".into()
            }
            Edit::DropHostsName(n) => format!("drop the `127.0.1.1 {n}` line"),
            Edit::BlankPasswords => "empty the stored password values".into(),
            Edit::MysqldAutoCnf => format!(
                "drop host-specific persisted variables ({})",
                HOST_SPECIFIC_PERSISTED.join(", ")
            ),
            Edit::ResetHostname => "set to `localhost` (the platform names the new VM)".into(),
            Edit::PgAutoConf => format!(
                "drop ALTER SYSTEM replication settings ({})",
                PG_HOST_SPECIFIC.join(", ")
            ),
        }
    }
}

/// Split keeping line terminators so untouched lines stay byte-identical.
fn lines_keep(input: &str) -> impl Iterator<Item = &str> {
    input.split_inclusive('\n')
}

fn split_eol(line: &str) -> (&str, &str) {
    match line.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (line, ""),
    }
}

/// True when a shadow password field already holds no usable hash.
pub fn shadow_field_locked(field: &str) -> bool {
    !field.is_empty() && (field == "*LOCK*" || field.chars().all(|c| c == '!' || c == '*'))
}

/// `/etc/shadow`: set root's password field to `*` unless it is already a hash-free lock.
pub fn lock_root(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for line in lines_keep(input) {
        let (body, eol) = split_eol(line);
        if let Some(rest) = body.strip_prefix("root:") {
            let (field, tail) = match rest.find(':') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            if !shadow_field_locked(field) {
                out.push_str("root:*");
                out.push_str(tail);
                out.push_str(eol);
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// The root password field of a shadow file, if there is a root line.
pub fn root_shadow_field(input: &str) -> Option<&str> {
    input.lines().find_map(|l| {
        l.strip_prefix("root:")
            .map(|rest| rest.split(':').next().unwrap_or(""))
    })
}

/// An mdadm.conf `name=` value bound to a host: `host:name` with host neither empty nor `any`.
fn host_bound_name(value: &str) -> bool {
    match value.split_once(':') {
        Some((host, _)) => !host.is_empty() && host != "any",
        None => false,
    }
}

/// mdadm.conf: `HOMEHOST <ignore>` (replacing `<system>` or a literal host name, appended when
/// absent) and ARRAY entries (with their indented continuation lines) whose `name=` carries a
/// host name are dropped.
pub fn mdadm_host_independent(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut saw_homehost = false;
    let mut dropping = false;
    // Group an ARRAY line with its continuation lines (lines starting with whitespace).
    let lines: Vec<&str> = lines_keep(input).collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let (body, eol) = split_eol(line);
        let continuation = body.starts_with(' ') || body.starts_with('\t');
        if continuation && dropping {
            i += 1;
            continue;
        }
        dropping = false;
        let mut words = body.split_whitespace();
        let keyword = words.next().unwrap_or("").to_ascii_uppercase();
        if keyword.starts_with("HOMEHOST") {
            saw_homehost = true;
            let val = words.next().unwrap_or("");
            if val == "<ignore>" || val == "<none>" {
                out.push_str(line);
            } else {
                out.push_str("HOMEHOST <ignore>");
                out.push_str(eol);
            }
            i += 1;
            continue;
        }
        if keyword.starts_with("ARRAY") {
            // Gather the whole entry's words, continuation lines included.
            let mut all: Vec<&str> = body.split_whitespace().collect();
            let mut j = i + 1;
            while j < lines.len() && (lines[j].starts_with(' ') || lines[j].starts_with('\t')) {
                all.extend(lines[j].split_whitespace());
                j += 1;
            }
            let bound = all.iter().any(|w| {
                w.split_once('=')
                    .map(|(k, v)| k.eq_ignore_ascii_case("name") && host_bound_name(v))
                    .unwrap_or(false)
            });
            if bound {
                dropping = true;
                i += 1;
                continue;
            }
        }
        out.push_str(line);
        i += 1;
    }
    if !saw_homehost {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("HOMEHOST <ignore>\n");
    }
    out
}

/// /etc/hosts: drop `127.0.1.1` lines that name `name` (the builder's host name).
pub fn drop_hosts_name(input: &str, name: &str) -> String {
    if name.is_empty() || name == "localhost" {
        return input.to_string();
    }
    let short = name.split('.').next().unwrap_or(name);
    let mut out = String::with_capacity(input.len());
    for line in lines_keep(input) {
        let mut w = line.split_whitespace();
        if w.next() == Some("127.0.1.1") && w.any(|h| h == name || h == short) {
            continue;
        }
        out.push_str(line);
    }
    out
}

/// Option files (`debian.cnf`, `.my.cnf`): `password = secret` → `password =`.
pub fn blank_passwords(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for line in lines_keep(input) {
        let (body, eol) = split_eol(line);
        if let Some((key, value)) = body.split_once('=') {
            let k = key.trim();
            if (k == "password" || k == "passwd") && !value.trim().is_empty() {
                out.push_str(key.trim_end());
                out.push_str(" =");
                out.push_str(eol);
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// Set every `password =` value (the first-boot rotation of debian.cnf).
pub fn set_passwords(input: &str, pw: &str) -> String {
    let mut out = String::with_capacity(input.len() + pw.len());
    for line in lines_keep(input) {
        let (body, eol) = split_eol(line);
        if let Some((key, _)) = body.split_once('=') {
            let k = key.trim();
            if k == "password" || k == "passwd" {
                out.push_str(key.trim_end());
                out.push_str(" = ");
                out.push_str(pw);
                out.push_str(eol);
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// ALTER SYSTEM settings that tie a PostgreSQL server to its upstream or role.
pub const PG_HOST_SPECIFIC: &[&str] = &["primary_conninfo", "primary_slot_name"];

/// `postgresql.auto.conf`: drop [`PG_HOST_SPECIFIC`] lines.
pub fn pg_auto_conf(input: &str) -> String {
    lines_keep(input)
        .filter(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            !PG_HOST_SPECIFIC.contains(&key)
        })
        .collect()
}

/// Non-empty password values in an option file (`[section]`, `password = x`), for the scanner.
pub fn cnf_has_password(input: &str) -> bool {
    input.lines().any(|l| {
        let l = l.trim();
        if l.starts_with('#') || l.starts_with(';') {
            return false;
        }
        match l.split_once('=') {
            Some((k, v)) => {
                let k = k.trim();
                (k == "password" || k == "passwd") && !v.trim().trim_matches('"').is_empty()
            }
            None => false,
        }
    })
}

/// Variables in `mysqld-auto.cnf` that belong to one host and must not be cloned.
pub const HOST_SPECIFIC_PERSISTED: &[&str] = &[
    "server_id",
    "server_uuid",
    "report_host",
    "report_port",
    "bind_address",
    "admin_address",
    "gtid_purged",
    "group_replication_local_address",
    "group_replication_group_seeds",
    "group_replication_group_name",
    "group_replication_view_change_uuid",
    "wsrep_node_address",
    "wsrep_node_name",
    "wsrep_cluster_address",
];

/// mysqld-auto.cnf is JSON (`{"Version": .., "mysql_server": {..}}` or, v2,
/// `{"mysql_dynamic_parse_early_variables": {..}, ...}`): remove host-specific keys from every
/// object nested under the top level. Unchanged input is returned as is (formatting kept).
pub fn mysqld_auto_cnf(input: &str) -> Result<String, String> {
    let mut v: serde_json::Value =
        serde_json::from_str(input).map_err(|e| format!("not valid JSON: {e}"))?;
    fn strip(v: &mut serde_json::Value) -> bool {
        let mut changed = false;
        if let serde_json::Value::Object(map) = v {
            for key in HOST_SPECIFIC_PERSISTED {
                if map.remove(*key).is_some() {
                    changed = true;
                }
            }
            for (_, child) in map.iter_mut() {
                if child.is_object() {
                    changed |= strip(child);
                }
            }
        }
        changed
    }
    let mut changed = false;
    if let serde_json::Value::Object(map) = &mut v {
        for (_, child) in map.iter_mut() {
            changed |= strip(child);
        }
    }
    if !changed {
        return Ok(input.to_string());
    }
    serde_json::to_string(&v).map_err(|e| e.to_string())
}

/// One fstab entry that would break or misbehave on a clone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FstabProblem {
    pub line: usize,
    pub entry: String,
    pub problem: String,
}

/// Options that mark an fstab entry as written by dbhost (an owner tag such as `x-dbhost` or
/// `x-dbhost.owner=...`).
fn dbhost_tagged(opts: &str) -> bool {
    opts.split(',').any(|o| o.starts_with("x-dbhost"))
}

/// Check fstab for host-bound storage references: dbhost's entries must mount by filesystem
/// UUID with `nofail`; no entry may reference an md device by kernel name (`/dev/md127`,
/// `/dev/md/name`), since numbering and names change on clones.
pub fn fstab_problems(input: &str) -> Vec<FstabProblem> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = t.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let (spec, opts) = (f[0], f[3]);
        let mut problems = Vec::new();
        if spec.starts_with("/dev/md") {
            problems.push(format!(
                "mounts the md device `{spec}` by name; use UUID=<filesystem uuid>"
            ));
        }
        if dbhost_tagged(opts) {
            if !spec.starts_with("UUID=") && !spec.starts_with("/dev/md") {
                problems.push(format!(
                    "dbhost entry mounts `{spec}`, not UUID=<filesystem uuid>"
                ));
            }
            if !opts.split(',').any(|o| o == "nofail") {
                problems.push(
                    "dbhost entry lacks `nofail` (boot would hang without the data disks)".into(),
                );
            }
        }
        for p in problems {
            out.push(FstabProblem {
                line: i + 1,
                entry: t.to_string(),
                problem: p,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_root_keeps_other_lines_byte_identical() {
        let input = "root:$6$abc$def:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nu:$y$j9T$x:1:0:99999:7:::";
        let out = lock_root(input);
        assert_eq!(
            out,
            "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nu:$y$j9T$x:1:0:99999:7:::"
        );
        assert_eq!(lock_root(&out), out);
        // `!` + hash still carries the hash: replaced.
        assert_eq!(lock_root("root:!$6$x:1::::::\n"), "root:*:1::::::\n");
        // empty password (login without password) is locked too.
        assert_eq!(lock_root("root::1::::::\n"), "root:*:1::::::\n");
        for locked in [
            "root:!:1::::::\n",
            "root:*LOCK*:1::::::\n",
            "root:!*:1::::::\n",
        ] {
            assert_eq!(lock_root(locked), locked);
        }
        assert_eq!(root_shadow_field("a:b\nroot:x:1\n"), Some("x"));
    }

    #[test]
    fn mdadm_conf_loses_host_bound_lines() {
        let input = "# mdadm.conf\nHOMEHOST <system>\nMAILADDR root\n\
ARRAY /dev/md/data metadata=1.2 UUID=a:b:c:d name=builder:data\n\
ARRAY /dev/md/keep metadata=1.2 UUID=e:f:0:1\n   name=any:keep\n\
ARRAY /dev/md/cont metadata=1.2 UUID=1:2:3:4\n   name=builder:cont\nDEVICE partitions\n";
        let out = mdadm_host_independent(input);
        assert_eq!(
            out,
            "# mdadm.conf\nHOMEHOST <ignore>\nMAILADDR root\n\
ARRAY /dev/md/keep metadata=1.2 UUID=e:f:0:1\n   name=any:keep\nDEVICE partitions\n"
        );
        assert_eq!(mdadm_host_independent(&out), out);
        assert_eq!(
            mdadm_host_independent("MAILADDR root"),
            "MAILADDR root\nHOMEHOST <ignore>\n"
        );
        assert_eq!(
            mdadm_host_independent("HOMEHOST builder\n"),
            "HOMEHOST <ignore>\n"
        );
    }

    #[test]
    fn hosts_and_passwords() {
        let hosts = "127.0.0.1 localhost\n127.0.1.1 builder.example builder\n::1 ip6-localhost\n";
        assert_eq!(
            drop_hosts_name(hosts, "builder"),
            "127.0.0.1 localhost\n::1 ip6-localhost\n"
        );
        assert_eq!(drop_hosts_name(hosts, "other"), hosts);
        let cnf = "[client]\nhost     = localhost\nuser     = debian-sys-maint\npassword = s3cr3t\nsocket   = /run/mysqld/mysqld.sock\n[mysql_upgrade]\npassword=s3cr3t\n";
        let out = blank_passwords(cnf);
        assert_eq!(out, "[client]\nhost     = localhost\nuser     = debian-sys-maint\npassword =\nsocket   = /run/mysqld/mysqld.sock\n[mysql_upgrade]\npassword =\n");
        assert!(cnf_has_password(cnf));
        assert!(!cnf_has_password(&out));
        assert_eq!(blank_passwords(&out), out);
    }

    #[test]
    fn pg_auto_conf_drops_replication() {
        let t = "# Do not edit this file manually!\nprimary_conninfo = 'host=10.0.0.4 user=rep password=x'\nwork_mem = '64MB'\nprimary_slot_name = 'b'\n";
        assert_eq!(
            pg_auto_conf(t),
            "# Do not edit this file manually!\nwork_mem = '64MB'\n"
        );
    }

    #[test]
    fn mysqld_auto_cnf_drops_host_values_only() {
        let v1 = r#"{ "Version" : 1 , "mysql_server" : { "server_id" : { "Value" : "7" , "Metadata" : { "Timestamp" : 1 , "User" : "root" , "Host" : "localhost" } } , "max_connections" : { "Value" : "500" , "Metadata" : { "Timestamp" : 1 , "User" : "root" , "Host" : "localhost" } } , "mysql_server_static_options" : { "report_host" : { "Value" : "builder" , "Metadata" : {} } } } }"#;
        let out = mysqld_auto_cnf(v1).unwrap();
        assert!(!out.contains("server_id"), "{out}");
        assert!(!out.contains("report_host"), "{out}");
        assert!(out.contains("max_connections"), "{out}");
        assert_eq!(mysqld_auto_cnf(&out).unwrap(), out);
        assert!(mysqld_auto_cnf("not json").is_err());
    }

    #[test]
    fn fstab_checks() {
        let good =
            "UUID=1234 / ext4 defaults 0 1\nUUID=abcd /data xfs noatime,nofail,x-dbhost 0 0\n";
        assert!(fstab_problems(good).is_empty());
        let bad = "/dev/md127 /data xfs noatime,x-dbhost 0 0\n/dev/md/data /x xfs defaults 0 0\n";
        let p = fstab_problems(bad);
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(p[0].line, 1);
        assert!(p.iter().any(|x| x.problem.contains("nofail")));
        assert_eq!(p[2].line, 2);
    }
}
