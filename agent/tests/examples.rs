//! The user-facing examples parse and say what the docs promise: the cloud-init user-data is
//! YAML with an embedded v1 profile and the exact apply command; the Packer template is
//! balanced HCL whose provisioners upload the binary, apply, generalize, then deprovision.

use std::path::PathBuf;
use std::process::Command;

fn repo_file(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The block scalar under `content: |` of the write_files entry for `path`.
fn write_files_content(yaml: &str, path: &str) -> String {
    let mut lines = yaml
        .lines()
        .skip_while(|l| l.trim() != format!("- path: {path}"));
    lines.next().expect("write_files entry");
    let mut out = String::new();
    let mut indent = None;
    let mut in_block = false;
    for l in lines {
        if !in_block {
            if l.trim() == "content: |" {
                in_block = true;
            }
            continue;
        }
        if l.trim().is_empty() {
            out.push('\n');
            continue;
        }
        let ind = l.len() - l.trim_start().len();
        let block_indent = *indent.get_or_insert(ind);
        if ind < block_indent {
            break;
        }
        out.push_str(&l[block_indent..]);
        out.push('\n');
    }
    out
}

#[test]
fn cloud_init_user_data_is_valid_and_runs_apply() {
    let y = repo_file("examples/cloud-init/user-data.yaml");
    assert!(
        y.starts_with("#cloud-config\n"),
        "cloud-init needs the header on line 1"
    );
    assert!(!y.contains('\t'), "YAML must not contain tabs");
    let profile = write_files_content(&y, "/etc/dbhost/profile.toml");
    let v: toml::Value = toml::from_str(&profile).unwrap_or_else(|e| panic!("{e}\n{profile}"));
    assert_eq!(v["version"].as_integer(), Some(1));
    assert_eq!(v["database"]["engine"].as_str(), Some("mariadb"));
    assert_eq!(v["filesystem"]["mount-point"].as_str(), Some("/datadrive"));
    assert!(y.contains(
        "/usr/local/sbin/dbhost apply --profile /etc/dbhost/profile.toml --yes --wait-disks 300s --output json"
    ));

    // Full YAML parse when python3-yaml is available (CI image); the checks above always run.
    let py = "import sys,yaml\nd=yaml.safe_load(open(sys.argv[1]))\n\
assert set(d)=={'write_files','runcmd'}, d.keys()\n\
assert d['write_files'][0]['path']=='/etc/dbhost/profile.toml'\n\
assert d['runcmd'][0][0:2]==['sh','-c']\n\
assert 'dbhost apply' in d['runcmd'][0][2]\nprint('ok')";
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/cloud-init/user-data.yaml");
    match Command::new("python3").args(["-c", "import yaml"]).output() {
        Ok(o) if o.status.success() => {
            let o = Command::new("python3")
                .args(["-c", py])
                .arg(&path)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        _ => eprintln!("python3-yaml not available: structural YAML checks only"),
    }
}

/// Braces/brackets/parens balance outside strings and comments; strings terminate on their line.
fn hcl_balanced(src: &str) -> Result<(), String> {
    let mut stack = Vec::new();
    for (n, line) in src.lines().enumerate() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut interp = 0usize;
        for c in line.chars() {
            if in_str {
                match c {
                    '"' if prev != '\\' && interp == 0 => in_str = false,
                    '{' if prev == '$' => interp += 1,
                    '}' if interp > 0 => interp -= 1,
                    _ => {}
                }
            } else {
                match c {
                    '#' => break,
                    '"' => in_str = true,
                    '{' | '[' | '(' => stack.push((c, n + 1)),
                    '}' | ']' | ')' => {
                        let want = match c {
                            '}' => '{',
                            ']' => '[',
                            _ => '(',
                        };
                        match stack.pop() {
                            Some((o, _)) if o == want => {}
                            other => return Err(format!("line {}: `{c}` closes {other:?}", n + 1)),
                        }
                    }
                    _ => {}
                }
            }
            prev = c;
        }
        if in_str {
            return Err(format!("line {}: unterminated string", n + 1));
        }
    }
    match stack.pop() {
        None => Ok(()),
        Some((c, l)) => Err(format!("`{c}` opened on line {l} is never closed")),
    }
}

#[test]
fn packer_template_is_balanced_and_orders_the_steps() {
    let h = repo_file("examples/packer/dbhost-mariadb.pkr.hcl");
    hcl_balanced(&h).unwrap();
    assert!(
        hcl_balanced("a = {\n  b = \"x}\"\n").is_err(),
        "checker must catch an unclosed block"
    );
    assert!(h.contains("source \"azure-arm\""));
    assert_eq!(h.matches("provisioner \"file\"").count(), 2);
    let pos = |s: &str| h.find(s).unwrap_or_else(|| panic!("{s} missing"));
    let apply = pos(
        "dbhost apply --profile /etc/dbhost/profile.toml --yes --wait-disks 300s --output json",
    );
    let generalize = pos("dbhost generalize --yes");
    let waagent = pos("waagent -force -deprovision+user");
    let check = pos("dbhost generalize --check");
    assert!(apply < generalize && generalize < waagent && waagent < check);
    assert!(repo_file("examples/packer/README.md").contains("packer validate"));
}
