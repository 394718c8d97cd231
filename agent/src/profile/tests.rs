use super::*;

fn p(text: &str) -> Result<Profile, ProfileErrors> {
    parse(text, Path::new("t.toml"))
}

fn err(text: &str) -> ProfileErrors {
    match p(text) {
        Ok(p) => panic!("expected an error, parsed {p:?}"),
        Err(e) => e,
    }
}

/// The one error a profile produces, as `file:line:col: message (key `k`)`.
fn one(text: &str) -> String {
    let e = err(text);
    assert_eq!(e.0.len(), 1, "expected one error, got:\n{e}");
    e.0[0].to_string()
}

#[test]
fn minimal_profile_gets_documented_defaults() {
    let prof = p("version = 1\n").unwrap();
    assert_eq!(prof.disks, Disks::default());
    assert_eq!(prof.disks.select_mode(), SelectMode::AllCandidates);
    assert_eq!(prof.disks.min_size, Size::gib(1));
    assert_eq!(prof.array.level, Level::Raid0);
    assert_eq!(prof.array.chunk(), Size::kib(512));
    assert_eq!(prof.array.name, "dbdata");
    assert_eq!(prof.filesystem.fs_type, FsType::Xfs);
    assert_eq!(prof.filesystem.mount_point, "/datadrive");
    assert_eq!(prof.filesystem.label, "dbdata");
    assert_eq!(prof.filesystem.device_timeout, Duration::secs(120));
    assert_eq!(prof.database.engine, Engine::None);
    assert_eq!(prof.database.datadir(), None);
    assert!(prof.database.keep_old_datadir);
    assert!(prof.tuning.enabled);
}

#[test]
fn full_profile_parses() {
    let text = r#"
version = 1
description = "two disks"

[disks]
platform = "azure"
allowed-cache-modes = ["none", "readonly"]
assume-cache-mode = "none"
luns = [0, 1, "4-7"]
min-size = "64G"
expected-count = 6
imds-endpoint = "http://127.0.0.1:9999"
wait-timeout = "5m"

[array]
level = "raid0"
chunk = "256K"
name = "pgdata"

[filesystem]
type = "ext4"
label = "pg-data-16char"
mount-point = "/srv/db"
mount-options = ["discard"]
device-timeout = "90s"

[database]
engine = "postgresql"
keep-old-datadir = true
retention = "7d"

[tuning]
enabled = true
disk-mbps = 200
disk-iops = 5000

[tuning.overrides]
"vm.swappiness" = 1
random_page_cost = 1.1
"#;
    let prof = p(text).unwrap();
    assert_eq!(prof.disks.select_mode(), SelectMode::Luns);
    assert_eq!(
        prof.disks.luns.as_deref(),
        Some(&[LunSpec::One(0), LunSpec::One(1), LunSpec::Range(4, 7)][..])
    );
    assert_eq!(prof.disks.expected_count, ExpectedCount::Exactly(6));
    assert_eq!(prof.disks.wait_timeout, Duration::secs(300));
    assert_eq!(prof.array.chunk(), Size::kib(256));
    assert_eq!(prof.database.datadir(), Some("postgresql"));
    assert_eq!(prof.tuning.overrides.len(), 2);
    // Round trip: serialize and parse again gives the same profile.
    let again = toml::to_string(&prof).unwrap();
    assert_eq!(p(&again).unwrap(), prof);
}

#[test]
fn malformed_toml_names_line_and_col() {
    assert_eq!(
        one("version = 1\n[disks]\nplatform = \n"),
        "t.toml:3:12: string values must be quoted, expected literal string"
    );
    let e = one("version = 1\n[disks\n");
    assert!(e.starts_with("t.toml:2:"), "{e}");
}

#[test]
fn unknown_key_is_named_with_its_path() {
    let e = one("version = 1\n[disks]\nplatfrom = \"azure\"\n");
    assert!(
        e.starts_with("t.toml:3:1: unknown field `platfrom`, expected one of"),
        "{e}"
    );
    assert!(e.ends_with("(key `disks.platfrom`)"), "{e}");
    let e = one("version = 1\ncolour = 1\n");
    assert!(e.starts_with("t.toml:2:1: unknown field `colour`"), "{e}");
    assert!(e.ends_with("(key `colour`)"), "{e}");
    let e = one("version = 1\n[filesystem]\ntype = \"xfs\"\nmount_point = \"/x\"\n");
    assert!(e.contains("unknown field `mount_point`"), "{e}");
    assert!(e.ends_with("(key `filesystem.mount_point`)"), "{e}");
}

#[test]
fn bad_values_point_at_the_value() {
    assert_eq!(
        one("version = 1\n[disks]\nmin-size = \"64GB\"\n"),
        "t.toml:3:12: invalid size \"64GB\": unit \"GB\" is ambiguous; sizes are binary, write \"64G\" (or \"64GiB\") (key `disks.min-size`)"
    );
    assert_eq!(
        one("version = 1\n[disks]\nwait-timeout = \"300\"\n"),
        "t.toml:3:16: invalid duration \"300\": a unit is required (ms, s, m, h or d), e.g. \"300s\" (key `disks.wait-timeout`)"
    );
    let e = one("version = 1\n[disks]\nplatform = \"azur\"\n");
    assert!(e.starts_with("t.toml:3:12: unknown variant `azur`"), "{e}");
    assert!(e.ends_with("(key `disks.platform`)"), "{e}");
    let e = one("version = 1\n[disks]\nluns = [0, \"4to7\"]\n");
    assert!(
        e.starts_with("t.toml:3:12: invalid LUN range \"4to7\""),
        "{e}"
    );
    assert!(e.ends_with("(key `disks.luns[1]`)"), "{e}");
    let e = one("version = 1\n[disks]\nmin-size = 64\n");
    assert!(e.contains("expected a size string like \"512K\""), "{e}");
}

#[test]
fn version_is_required_and_checked() {
    assert_eq!(
        one("[disks]\nplatform = \"azure\"\n"),
        "t.toml:1:1: missing required key `version`; add `version = 1` at the top (key `version`)"
    );
    assert_eq!(
        one("# hi\nversion = 2\n"),
        "t.toml:2:11: unsupported profile version 2: this dbhost reads version 1 (key `version`)"
    );
    assert!(one("version = \"1\"\n").contains("unsupported profile version \"1\""));
}

/// Each cross-field rule: (profile body after `version = 1`, key, line, message fragment).
#[test]
fn every_cross_field_rule_reports_key_and_position() {
    let cases: &[(&str, &str, usize, &str)] = &[
        (
            "[disks]\nallowed-cache-modes = []\n",
            "disks.allowed-cache-modes",
            3,
            "at least one cache mode",
        ),
        (
            "[disks]\nallowed-cache-modes = [\"none\", \"none\"]\n",
            "disks.allowed-cache-modes[1]",
            3,
            "listed twice",
        ),
        (
            "[disks]\nassume-cache-mode = \"unknown\"\n",
            "disks.assume-cache-mode",
            3,
            "has no effect",
        ),
        (
            "[disks]\nallowed-cache-modes = [\"none\"]\nassume-cache-mode = \"readonly\"\n",
            "disks.assume-cache-mode",
            4,
            "not in disks.allowed-cache-modes",
        ),
        (
            "[disks]\nselect = \"all-candidates\"\nluns = [0]\n",
            "disks.luns",
            4,
            "no effect with select",
        ),
        (
            "[disks]\nselect = \"luns\"\n",
            "disks.luns",
            2,
            "non-empty list",
        ),
        (
            "[disks]\nluns = [0]\nserial = [\"x*\"]\n",
            "disks.serial",
            4,
            "cannot be combined",
        ),
        (
            "[disks]\nselect = \"match\"\n",
            "disks.select",
            3,
            "needs disks.serial",
        ),
        (
            "[disks]\nserial = [\"x*\"]\nluns = [1]\n",
            "disks.serial",
            3,
            "cannot be combined",
        ),
        (
            "[disks]\nselect = \"match\"\nserial = [\"x*\"]\nluns = [1]\n",
            "disks.luns",
            5,
            "cannot be combined",
        ),
        (
            "[disks]\nluns = [\"7-4\"]\n",
            "disks.luns[0]",
            3,
            "backwards",
        ),
        (
            "[disks]\nluns = [1, \"0-3\"]\n",
            "disks.luns[1]",
            3,
            "LUN 1 is listed more than once",
        ),
        (
            "[disks]\nserial = [\"\"]\n",
            "disks.serial[0]",
            3,
            "empty glob",
        ),
        (
            "[disks]\nexpected-count = 0\n",
            "disks.expected-count",
            3,
            "at least 1",
        ),
        (
            "[disks]\nexpected-count = 1\n",
            "disks.expected-count",
            3,
            "raid0 needs at least 2 disks",
        ),
        (
            "[array]\nlevel = \"none\"\n",
            "disks.expected-count",
            1,
            "uses exactly one disk",
        ),
        (
            "[disks]\nimds-endpoint = \"https://x\"\n",
            "disks.imds-endpoint",
            3,
            "must be an http:// URL",
        ),
        (
            "[disks]\nplatform = \"aws\"\nimds-endpoint = \"http://127.0.0.1:1\"\n",
            "disks.imds-endpoint",
            4,
            "only consulted on Azure",
        ),
        (
            "[array]\nchunk = \"384K\"\n",
            "array.chunk",
            3,
            "power of two",
        ),
        ("[array]\nchunk = \"2K\"\n", "array.chunk", 3, "at least 4K"),
        (
            "[array]\nchunk = \"128M\"\n",
            "array.chunk",
            3,
            "larger than 64M",
        ),
        (
            "[disks]\nexpected-count = 1\n[array]\nlevel = \"none\"\nchunk = \"512K\"\n",
            "array.chunk",
            6,
            "no meaning",
        ),
        ("[array]\nname = \"host:data\"\n", "array.name", 3, "no ':'"),
        ("[array]\nname = \"\"\n", "array.name", 3, "1 to 31"),
        (
            "[filesystem]\nlabel = \"thirteen-char\"\n",
            "filesystem.label",
            3,
            "a xfs label is 1 to 12",
        ),
        (
            "[filesystem]\ntype = \"ext4\"\nlabel = \"seventeen-chars-x\"\n",
            "filesystem.label",
            4,
            "a ext4 label is 1 to 16",
        ),
        (
            "[filesystem]\nmount-point = \"datadrive\"\n",
            "filesystem.mount-point",
            3,
            "absolute path",
        ),
        (
            "[filesystem]\nmount-point = \"/\"\n",
            "filesystem.mount-point",
            3,
            "root filesystem",
        ),
        (
            "[filesystem]\nmount-point = \"/proc/db\"\n",
            "filesystem.mount-point",
            3,
            "system directory",
        ),
        (
            "[filesystem]\nmount-point = \"/sys\"\n",
            "filesystem.mount-point",
            3,
            "system directory",
        ),
        (
            "[filesystem]\nmount-point = \"/dev/x\"\n",
            "filesystem.mount-point",
            3,
            "system directory",
        ),
        (
            "[filesystem]\nmount-point = \"/boot/x\"\n",
            "filesystem.mount-point",
            3,
            "system directory",
        ),
        (
            "[filesystem]\nmount-point = \"/data/../etc\"\n",
            "filesystem.mount-point",
            3,
            "'..'",
        ),
        (
            "[filesystem]\nmount-options = [\"nobarrier\"]\n",
            "filesystem.mount-options[0]",
            3,
            "removed from XFS",
        ),
        (
            "[filesystem]\nmount-options = [\"discard\", \"nofail\"]\n",
            "filesystem.mount-options[1]",
            3,
            "set by dbhost",
        ),
        (
            "[filesystem]\nmount-options = [\"a,b\"]\n",
            "filesystem.mount-options[0]",
            3,
            "without commas",
        ),
        (
            "[filesystem]\nmount-options = [\"noauto\"]\n",
            "filesystem.mount-options[0]",
            3,
            "after a reboot",
        ),
        (
            "[filesystem]\ndevice-timeout = \"0s\"\n",
            "filesystem.device-timeout",
            3,
            "between 1s and 1h",
        ),
        (
            "[database]\ndatadir = \"mysql\"\n",
            "database.datadir",
            3,
            "moves no datadir",
        ),
        (
            "[database]\nengine = \"mysql\"\ndatadir = \"../mysql\"\n",
            "database.datadir",
            4,
            "'..'",
        ),
        (
            "[database]\nengine = \"mysql\"\ndatadir = \"/var/lib/mysql\"\n",
            "database.datadir",
            4,
            "relative",
        ),
        (
            "[database]\nengine = \"mysql\"\nkeep-old-datadir = false\nretention = \"7d\"\n",
            "database.retention",
            5,
            "no effect with keep-old-datadir",
        ),
        (
            "[tuning]\nenabled = false\ndisk-iops = 100\n",
            "tuning.disk-iops",
            4,
            "no effect with tuning.enabled = false",
        ),
        (
            "[tuning]\ndisk-mbps = 0\n",
            "tuning.disk-mbps",
            3,
            "more than 0",
        ),
        (
            "[tuning.overrides]\nswapiness = 1\n",
            "tuning.overrides.swapiness",
            3,
            "unknown tuning knob",
        ),
        (
            "[database]\nengine = \"postgresql\"\n[tuning.overrides]\ninnodb_io_capacity = 1000\n",
            "tuning.overrides.innodb_io_capacity",
            5,
            "is for mysql/mariadb",
        ),
        (
            "[database]\nengine = \"mariadb\"\n[tuning.overrides]\nrandom_page_cost = [1]\n",
            "tuning.overrides.random_page_cost",
            5,
            "is for postgresql",
        ),
    ];
    for (body, key, line, frag) in cases {
        let text = format!("version = 1\n{body}");
        let e = err(&text);
        let hit = e.0.iter().find(|x| x.key.as_deref() == Some(*key));
        let Some(hit) = hit else {
            panic!("{body:?}: no error for key {key}; got:\n{e}");
        };
        assert!(hit.message.contains(frag), "{body:?}: {hit}");
        assert_eq!(hit.line, *line, "{body:?}: {hit}");
        assert_eq!(hit.file, Path::new("t.toml"));
        assert!(hit.to_string().ends_with(&format!("(key `{key}`)")));
    }
}

#[test]
fn all_problems_are_reported_in_file_order() {
    let e = err(
        "version = 1\n[array]\nchunk = \"3K\"\nname = \"a:b\"\n[filesystem]\nmount-point = \"/\"\n",
    );
    let lines: Vec<String> = e.0.iter().map(|x| x.to_string()).collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(lines[0].starts_with("t.toml:3:9: chunk 3K must be a power of two"));
    assert!(lines[1].starts_with("t.toml:4:8: \"a:b\" may only use"));
    assert!(lines[2].starts_with("t.toml:6:15: \"/\" is the root filesystem"));
}

#[test]
fn problem_from_a_default_points_at_the_section() {
    // label defaults to "dbdata" (fine); level none with the default count "all" blames
    // disks.expected-count, which is absent: the error points at [array]'s enclosing key or 1:1.
    let e = err("version = 1\n\n[array]\nlevel = \"none\"\n");
    assert_eq!(
        e.0[0].to_string(),
        "t.toml:1:1: array.level = \"none\" uses exactly one disk; set expected-count = 1 (is all) (key `disks.expected-count`)"
    );
}

#[test]
fn select_mode_is_inferred() {
    let prof = p("version = 1\n[disks]\nserial = [\"data*\"]\n").unwrap();
    assert_eq!(prof.disks.select_mode(), SelectMode::Match);
    let prof = p("version = 1\n[disks]\nselect = \"luns\"\nluns = [\"0-3\"]\n").unwrap();
    assert_eq!(prof.disks.select_mode(), SelectMode::Luns);
}

/// Every key of the schema, from a fully-populated profile serialized to TOML. Tables of free
/// keys (`tuning.overrides`) count as one key.
pub(crate) fn schema_keys() -> Vec<String> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in t {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) if path != "tuning.overrides" => walk(&path, inner, out),
                _ => out.push(path),
            }
        }
    }
    let text = toml::to_string(&Profile::full_example()).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut out = Vec::new();
    walk("", &table, &mut out);
    out
}

#[test]
fn full_example_sets_every_key() {
    let keys = schema_keys();
    // Spot-check that Options are populated (a None would silently drop a key from the check).
    for k in [
        "description",
        "disks.assume-cache-mode",
        "disks.select",
        "disks.luns",
        "disks.serial",
        "disks.model",
        "disks.imds-endpoint",
        "array.chunk",
        "database.datadir",
        "database.retention",
        "tuning.overrides",
        "tuning.disk-mbps",
        "tuning.disk-iops",
        "backup.endpoint",
        "backup.encrypt-to",
        "backup.retention.keep-last",
        "backup.schedule.verify",
        "backup.restore-on-apply",
        "migrate.source-port",
        "migrate.stop-command",
        "migrate.server-id",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
    }
    assert_eq!(keys.len(), 66, "{keys:?}");
}

const MIGRATE_PG: &str = "version = 1\n[database]\nengine = \"postgresql\"\n\
[migrate]\nsource-host = \"127.0.0.2\"\nsource-port = 5433\nreplication-user = \"repl\"\n\
password-file = \"/root/pw\"\nfence = \"stop\"\nsource-unit = \"oldpg.service\"\n\
on-cutover = [\"/usr/local/bin/hook\", \"a b\"]\nmax-lag = \"16M\"\n";

#[test]
fn migrate_section_parses_with_defaults() {
    let p = parse(MIGRATE_PG, Path::new("m.toml")).unwrap();
    let m = p.migrate.unwrap();
    assert_eq!(m.source_port, Some(5433));
    assert_eq!(m.fence, Fence::Stop);
    assert_eq!(m.slot, DEFAULT_SLOT);
    assert_eq!(m.max_lag, Size::mib(16));
    assert_eq!(m.catch_up_timeout.as_secs(), 60);
    assert_eq!(m.on_cutover.unwrap()[1], "a b");
    assert!(parse("version = 1\n", Path::new("x"))
        .unwrap()
        .migrate
        .is_none());
}

#[test]
fn migrate_rules_name_their_keys() {
    let bad = |text: &str, key: &str, needle: &str| {
        let e = parse(text, Path::new("m.toml")).unwrap_err();
        assert!(
            e.0.iter()
                .any(|x| x.key.as_deref() == Some(key) && x.message.contains(needle)),
            "{key}: {needle}: {e}"
        );
    };
    bad(
        &MIGRATE_PG.replace("source-unit = \"oldpg.service\"\n", ""),
        "migrate.fence",
        "exactly one of source-unit",
    );
    bad(
        &MIGRATE_PG.replace("fence = \"stop\"\n", ""),
        "migrate.source-unit",
        "only used with fence",
    );
    bad(
        &MIGRATE_PG.replace("max-lag", "slot = \"Bad-Slot\"\nmax-lag"),
        "migrate.slot",
        "a-z, 0-9",
    );
    bad(
        &MIGRATE_PG.replace("engine = \"postgresql\"", "engine = \"none\""),
        "migrate.source-host",
        "database.engine",
    );
    bad(
        &MIGRATE_PG.replace("/root/pw", "pw"),
        "migrate.password-file",
        "absolute",
    );
    bad(
        &MIGRATE_PG.replace("[\"/usr/local/bin/hook\", \"a b\"]", "[]"),
        "migrate.on-cutover",
        "must name a program",
    );
    let e = parse(
        &MIGRATE_PG.replace("max-lag", "sauce-host = 1\nmax-lag"),
        Path::new("m.toml"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("sauce-host"), "{e}");
}

#[test]
fn readme_documents_every_key() {
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/README.md"),
    )
    .expect("profiles/README.md");
    let missing: Vec<String> = schema_keys()
        .into_iter()
        .filter(|k| !readme.contains(&format!("| `{k}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "profiles/README.md has no table row `| `key` |` for: {missing:?}"
    );
}

#[test]
fn shipped_profiles_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = load(&path).unwrap() {
                panic!("{e}");
            }
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "azure-mariadb.toml",
            "azure-mysql.toml",
            "postgresql.toml",
            "qemu-dev.toml",
            "single-disk-test.toml"
        ]
    );
}

#[test]
fn readme_lists_every_tuning_knob() {
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/README.md"),
    )
    .unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `tuning.overrides` |"))
        .expect("tuning.overrides row");
    let missing: Vec<&str> = validate::KNOBS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !row.contains(&format!("`{k}`")))
        .collect();
    assert!(missing.is_empty(), "knobs missing from README: {missing:?}");
}
