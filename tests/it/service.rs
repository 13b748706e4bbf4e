//! Issue 15: rx-listen as a system service. The unit in deploy/ passes
//! `systemd-analyze verify` without a word and `systemd-analyze security`
//! at exposure "OK", has the hardening the README promises, and names
//! options rx-listen takes; its sysusers and tmpfiles files make the user
//! and the dirs; and rx-listen runs as the unit runs it: an unprivileged
//! user holding CAP_NET_BIND_SERVICE alone binds port 104 and files what
//! it receives, which without the capability it cannot.
//!
//! systemd-analyze, systemd-sysusers and systemd-tmpfiles are Debian's
//! package `systemd`; setpriv is util-linux.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;
use crate::listener::{AE_TITLE, Listener, data_set, listen_path};
use crate::raw_scu;

/// Where the unit and its companions are.
fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name)
}

/// Where the unit expects the binary.
const INSTALLED: &str = "/usr/bin/rx-listen";

/// Runs one of systemd's tools; fails saying how to install it.
fn systemd_tool(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("{tool} cannot run ({e}): install it (Debian: apt-get install systemd)")
    })
}

/// `systemd-analyze verify` of `unit`: everything it says.
fn verify(unit: &Path) -> (bool, String) {
    let out = systemd_tool("systemd-analyze", &["verify", unit.to_str().unwrap()]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// The unit, as written, and a copy in `dir` whose ExecStart names the
/// binary just built (verify wants an executable there).
fn unit_and_copy(dir: &Path) -> (String, PathBuf) {
    let unit = std::fs::read_to_string(deploy("rx-listen.service")).unwrap();
    assert_eq!(
        unit.matches(INSTALLED).count(),
        1,
        "ExecStart={INSTALLED} ..."
    );
    let copy = dir.join("rx-listen.service");
    let built = listen_path().display().to_string();
    std::fs::write(&copy, unit.replace(INSTALLED, &built)).unwrap();
    (unit, copy)
}

/// The value of `key` in the unit (the last assignment).
fn setting<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .next_back()
}

#[test]
fn the_systemd_unit_verifies_without_a_warning_and_is_hardened() {
    let tmp = tempfile::tempdir().unwrap();
    let (unit, copy) = unit_and_copy(tmp.path());
    let (ok, said) = verify(&copy);
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify {}: {said}",
        copy.display()
    );
    // The check can fail: a misspelt key is reported.
    let bad = tmp.path().join("bad.service");
    let text = std::fs::read_to_string(&copy).unwrap();
    std::fs::write(
        &bad,
        text.replace("[Service]\n", "[Service]\nNoNewPrivilege=yes\n"),
    )
    .unwrap();
    let (_, said) = verify(&bad);
    assert!(
        said.contains("Unknown key"),
        "verify did not see a misspelt key: {said:?}"
    );

    let security = systemd_tool(
        "systemd-analyze",
        &[
            "security",
            "--offline=yes",
            "--threshold=20",
            copy.to_str().unwrap(),
        ],
    );
    assert!(
        security.status.success(),
        "exposure above 2.0 (\"OK\"): {}",
        String::from_utf8_lossy(&security.stdout)
    );

    let required = [
        ("User", "rx-listen"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
    ];
    for (key, value) in required {
        assert_eq!(setting(&unit, key), Some(value), "{key}=");
    }
    assert!(setting(&unit, "LimitNOFILE").is_some(), "LimitNOFILE=");

    // rx-listen takes the options of ExecStart (--version at the end
    // parses them all, then stops).
    let exec = setting(&unit, "ExecStart").unwrap();
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    let out = Command::new(listen_path())
        .args(&args)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "ExecStart: {out:?}");
    let option = |name: &str| {
        args.iter()
            .position(|a| *a == name)
            .map(|i| args[i + 1].to_string())
    };
    // It may write its data dir and log dir, and nothing else.
    let writable: Vec<&str> = setting(&unit, "ReadWritePaths")
        .unwrap()
        .split_whitespace()
        .collect();
    for dir in ["--datadir", "--logdir"] {
        let dir = option(dir).unwrap();
        assert!(writable.contains(&dir.as_str()), "{dir} not writable");
    }
    // systemd waits longer than the grace period before it kills.
    let grace: u64 = option("--grace").map_or(10, |g| g.parse().unwrap());
    let timeout: u64 = setting(&unit, "TimeoutStopSec").unwrap().parse().unwrap();
    assert!(
        timeout > grace,
        "TimeoutStopSec={timeout} within --grace {grace}"
    );
}

#[test]
fn the_sysusers_and_tmpfiles_files_make_the_user_and_the_dirs() {
    let root = tempfile::tempdir().unwrap();
    for (file, dir) in [("sysusers", "sysusers.d"), ("tmpfiles", "tmpfiles.d")] {
        let target = root.path().join("etc").join(dir).join("rx-listen.conf");
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(deploy(&format!("rx-listen.{file}")), target).unwrap();
    }
    let root_option = format!("--root={}", root.path().display());
    let users = systemd_tool("systemd-sysusers", &[&root_option]);
    assert!(users.status.success(), "{users:?}");
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let user = passwd
        .lines()
        .find(|line| line.starts_with("rx-listen:"))
        .unwrap_or_else(|| panic!("no user rx-listen: {passwd}"));
    let uid: u32 = user.split(':').nth(2).unwrap().parse().unwrap();
    assert!(uid > 0 && uid < 1000, "not a system user: {user}");
    let dirs = systemd_tool("systemd-tmpfiles", &["--create", &root_option]);
    assert!(dirs.status.success(), "{dirs:?}");
    let unit = std::fs::read_to_string(deploy("rx-listen.service")).unwrap();
    for dir in setting(&unit, "ReadWritePaths").unwrap().split_whitespace() {
        let made = root.path().join(dir.trim_start_matches('/'));
        let metadata =
            std::fs::metadata(&made).unwrap_or_else(|e| panic!("{}: {e}", made.display()));
        assert_eq!(metadata.uid(), uid, "{dir} is not rx-listen's");
    }
}

/// The nobody user, which runs rx-listen as the unit runs it.
const NOBODY: u32 = 65534;

/// rx-listen as user nobody, with no capability but those in `caps`
/// (setpriv, as systemd's User=, AmbientCapabilities= and
/// CapabilityBoundingSet= do).
fn as_nobody(caps: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg("--clear-groups")
        .arg(format!("--inh-caps=-all{caps}"))
        .arg(format!("--ambient-caps=-all{caps}"))
        .arg(format!("--bounding-set=-all{caps}"))
        .args(["--no-new-privs", "--"])
        .arg(listen_path());
    cmd
}

#[test]
fn an_unprivileged_user_with_cap_net_bind_service_alone_serves_port_104() {
    let tmp = tempfile::tempdir().unwrap();
    // nobody may pass through the scratch dir and owns the data and log dirs.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
    for dir in [&data, &log] {
        std::fs::create_dir(dir).unwrap();
        std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }

    // Without the capability: no port 104.
    let mut denied = as_nobody("");
    denied
        .arg("--datadir")
        .arg(&data)
        .arg("127.0.0.1:104")
        .stdin(std::process::Stdio::null());
    let out = Running::spawn(&mut denied)
        .finish(std::time::Duration::from_secs(10))
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("Permission denied"),
        "port 104 without CAP_NET_BIND_SERVICE: {out:?}"
    );

    let mut listener = Listener::start_at(
        as_nobody(",+net_bind_service"),
        &data,
        &log,
        &[],
        "127.0.0.1:104",
    );
    let example = std::fs::read(&sag_anon_files()[0]).unwrap();
    let uid = "1.2.826.0.1.3680043.8.498.59".to_string();
    let statuses = raw_scu::send(104, AE_TITLE, &[(uid, data_set(&example).to_vec())]);
    assert_eq!(statuses, [0]);
    listener.stop();
    let placed = files_under(&data);
    assert_eq!(placed.len(), 1);
    assert_eq!(std::fs::metadata(&placed[0]).unwrap().uid(), NOBODY);
    assert_eq!(json_files(&log).len(), 6, "records");
}
