//! rx-repack as deployed: DCMTK's storescp receives instances over the
//! network and runs rx-repack once per received file (`-xcr`). Each test
//! starts its own storescp on a loopback port, sends with storescu (or with
//! a minimal hand-written SCU, for data sets storescu would never send), and
//! checks the tree, the records and storescp's own directory.
//!
//! storescp parses what it receives and aborts the association on a data
//! set it cannot parse, so a broken data set reaches rx-repack only when
//! storescp writes it unparsed: in bit-preserving mode (`+B`), which the
//! mixed test uses.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::raw_scu;
use dicom_core::VR;
use dicom_dictionary_std::tags;

/// Bound on every wait: storescp starting, storescu sending, rx-repack
/// finishing.
const DEADLINE: Duration = Duration::from_secs(120);
const SCP_AE_TITLE: &str = "RXREPACK";
/// Root of the UIDs these tests make up (a UUID-derived `2.25` root).
const UID_ROOT: &str = "2.25.302932107225393012546871040186125370321";

fn test_uid(suffix: &str) -> String {
    format!("{UID_ROOT}.{suffix}")
}

// ---------------------------------------------------------------------------
// The receiving site and storescp

/// storescp's directory, the tree and the log dir, all under `sandbox/`:
/// anything else appearing there is a write outside the allowed places.
struct Site {
    tmp: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let site = Site {
            tmp: tempfile::tempdir().unwrap(),
        };
        for dir in [site.incoming(), site.datadir(), site.logdir()] {
            std::fs::create_dir_all(dir).unwrap();
        }
        site
    }

    fn sandbox(&self) -> PathBuf {
        self.tmp.path().join("sandbox")
    }

    /// storescp's output directory (`-od`).
    fn incoming(&self) -> PathBuf {
        self.sandbox().join("incoming")
    }

    fn datadir(&self) -> PathBuf {
        self.sandbox().join("out/data")
    }

    fn logdir(&self) -> PathBuf {
        self.sandbox().join("out/log")
    }

    /// A path outside the sandbox, for logs and files to send.
    fn scratch(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The command storescp runs per file, as the README deploys it.
    fn xcr_command(&self) -> String {
        format!(
            "{} --xcrdir #p --xcrfile #f --datadir {} --logdir {} --cleanup",
            sh_quote(rx_path()),
            sh_quote(&self.datadir()),
            sh_quote(&self.logdir()),
        )
    }
}

/// Quotes `path` for `/bin/sh`, which storescp hands the `-xcr` command to.
fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Fails with the install command when a DCMTK tool is missing.
fn require_dcmtk(tool: &str) {
    let found = Command::new(tool).arg("--version").output().is_ok();
    assert!(
        found,
        "{tool} (DCMTK) is not installed: run `apt-get install dcmtk`"
    );
}

/// A DCMTK command; TCP_NODELAY=1 turns off Nagle's algorithm, which
/// Debian's DCMTK leaves on, costing ~45 ms per instance on loopback.
fn dcmtk(tool: &str) -> Command {
    require_dcmtk(tool);
    let mut cmd = Command::new(tool);
    cmd.env("TCP_NODELAY", "1");
    cmd
}

/// Opens `path` for a child's stdout and stderr.
fn log_to(cmd: &mut Command, path: &Path) {
    let log = File::create(path).unwrap();
    cmd.stdout(log.try_clone().unwrap()).stderr(log);
}

/// The last lines of a log file, for failure messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A port nobody listens on right now (storescp cannot bind port 0).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running storescp, killed with everything it started when dropped, so
/// a failing test leaves no process behind.
struct Storescp {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Storescp {
    /// Starts storescp with `options` on a free port, retrying when the
    /// port was taken in between. storescp 3.6 has no option to choose the
    /// interface; only loopback connects to it.
    fn start(site: &Site, options: &[&str]) -> Storescp {
        let log = site.scratch("storescp.log");
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = dcmtk("storescp");
            cmd.args(options)
                .args(["-aet", SCP_AE_TITLE, "+xa", "-od"])
                .arg(site.incoming())
                .arg("-xcr")
                .arg(site.xcr_command())
                .arg(port.to_string())
                // Its own group, so that Drop also ends the association
                // children of --fork and any rx-repack still running.
                .process_group(0);
            log_to(&mut cmd, &log);
            let child = cmd.spawn().expect("storescp starts");
            let mut scp = Storescp {
                child,
                port,
                log: log.clone(),
            };
            if scp.wait_listening() {
                return scp;
            }
        }
        panic!("storescp never listened:\n{}", tail(&log));
    }

    /// Whether storescp accepts connections, false if it exited (port in
    /// use).
    fn wait_listening(&mut self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            // A bare connect and close: storescp logs nothing for it.
            if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("storescp did not listen in time:\n{}", self.tail());
    }

    fn tail(&self) -> String {
        tail(&self.log)
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("storescp exited ({status}):\n{}", self.tail());
        }
    }

    /// Lines of storescp's log (where rx-repack's stderr goes) naming
    /// `file` in an error (`rx-repack: error: <file>: <cause>`).
    fn errors_about(&self, file: &Path) -> Vec<String> {
        let name = format!("{}:", file.display());
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("error") && line.contains(&name))
            .map(String::from)
            .collect()
    }
}

impl Drop for Storescp {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` with output to `log`, killing it at the deadline.
fn run_bounded(mut cmd: Command, log: &Path) -> ExitStatus {
    log_to(&mut cmd, log);
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{cmd:?} did not finish in {DEADLINE:?}:\n{}", tail(log));
}

/// Sends every file in the directory `dir` in one association (no file
/// name pattern: the example series' directory holds only its instances).
fn storescu(scp: &Storescp, dir: &Path) {
    // Beside storescp's own log, in the test's scratch dir.
    let log = scp.log.with_file_name(format!(
        "storescu-{}.log",
        dir.file_name().unwrap().to_string_lossy()
    ));
    let mut cmd = dcmtk("storescu");
    cmd.args(["-aet", "RXTESTSCU", "-aec", SCP_AE_TITLE])
        .args(["-ta", "30", "-td", "60", "+sd", "127.0.0.1"])
        .arg(scp.port.to_string())
        .arg(dir);
    let status = run_bounded(cmd, &log);
    assert!(
        status.success(),
        "storescu {} failed ({status}):\n{}\nstorescp:\n{}",
        dir.display(),
        tail(&log),
        scp.tail()
    );
}

// ---------------------------------------------------------------------------
// What arrived

/// The instances in the tree (not rx-repack's temporary files).
fn placed(site: &Site) -> Vec<PathBuf> {
    files_under(&site.datadir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect()
}

fn incoming(site: &Site) -> Vec<PathBuf> {
    files_under(&site.incoming())
}

/// The files storescp wrote that rx-repack refused, with the error lines.
fn refused(site: &Site, scp: &Storescp) -> Vec<(PathBuf, Vec<String>)> {
    incoming(site)
        .into_iter()
        .map(|f| {
            let errors = scp.errors_about(&f);
            (f, errors)
        })
        .filter(|(_, errors)| !errors.is_empty())
        .collect()
}

/// What a test sees at the end, for failure messages.
fn state(site: &Site, scp: &Storescp) -> String {
    let incoming = incoming(site);
    format!(
        "{} placed, {} in storescp's dir {:?}...\nstorescp's log:\n{}",
        placed(site).len(),
        incoming.len(),
        &incoming[..incoming.len().min(5)],
        scp.tail()
    )
}

/// Waits until each of the `sent` instances is either placed or refused
/// (left in storescp's dir with an error logged) and storescp's dir holds
/// nothing else, i.e. every rx-repack storescp started has finished.
fn settle(site: &Site, scp: &mut Storescp, sent: usize) {
    let start = Instant::now();
    loop {
        scp.assert_running();
        let refused = refused(site, scp).len();
        if incoming(site).len() == refused && placed(site).len() + refused >= sent {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{sent} instances not settled in {DEADLINE:?}: {}",
            state(site, scp)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The UIDs rx-repack files an instance under.
struct Uids {
    sop: String,
    series: String,
}

fn uids(path: &Path) -> Uids {
    let obj = dicom_object::OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .unwrap_or_else(|e| panic!("{} does not open: {e}", path.display()));
    let text = |tag| {
        obj.element(tag)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(['\0', ' '])
            .to_string()
    };
    Uids {
        sop: text(tags::SOP_INSTANCE_UID),
        series: text(tags::SERIES_INSTANCE_UID),
    }
}

fn sop_uids(files: &[PathBuf]) -> BTreeSet<String> {
    files.iter().map(|f| uids(f).sop).collect()
}

/// The instance's `seriesData/<SeriesUID>-img/<file>.json` exists and
/// points at `file`.
fn assert_recorded(site: &Site, file: &Path) {
    let Uids { series, .. } = uids(file);
    let name = file.file_name().unwrap().to_str().unwrap();
    let record = site
        .logdir()
        .join("seriesData")
        .join(format!("{series}-img"))
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&record)
        .unwrap_or_else(|e| panic!("no record {} for {}: {e}", record.display(), file.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        json[&series]["imageObj"][name]["FSlocation"],
        file.display().to_string(),
        "{}",
        record.display()
    );
}

/// Exactly the instances `expected` are in the tree, each recorded, each
/// inside its own patient/study/series directories.
fn assert_placed(site: &Site, scp: &Storescp, expected: &BTreeSet<String>) {
    let placed = placed(site);
    assert_eq!(
        &sop_uids(&placed),
        expected,
        "SOPInstanceUIDs in the tree: {}",
        state(site, scp)
    );
    assert_eq!(placed.len(), expected.len(), "{}", state(site, scp));
    for file in &placed {
        let rel = file.strip_prefix(site.datadir()).unwrap();
        let levels = rel
            .components()
            .filter(|c| matches!(c, Component::Normal(_)));
        assert_eq!(
            levels.count(),
            4,
            "{} is not at patient/study/series/file",
            rel.display()
        );
        assert_recorded(site, file);
    }
}

/// Nothing was written in the sandbox outside storescp's dir, the tree and
/// the log dir.
fn assert_nothing_escaped(site: &Site) {
    let allowed = [site.incoming(), site.datadir(), site.logdir()];
    let escaped: Vec<PathBuf> = files_under(&site.sandbox())
        .into_iter()
        .filter(|f| !allowed.iter().any(|dir| f.starts_with(dir)))
        .collect();
    assert!(escaped.is_empty(), "written outside: {escaped:?}");
}

// ---------------------------------------------------------------------------
// Test data

/// Copies `files` into the new directory `name` for storescu to send.
fn stage(site: &Site, name: &str, files: &[PathBuf]) -> PathBuf {
    let dir = site.scratch(name);
    copy_files(files, &dir);
    dir
}

/// Copies of `example` with path-like PatientID and descriptions, each a
/// new instance; written into `dir`.
fn hostile_variants(example: &Path, dir: &Path) -> Vec<PathBuf> {
    let values = [
        (tags::PATIENT_ID, VR::LO, "../../x"),
        (tags::PATIENT_ID, VR::LO, "a/b"),
        (tags::PATIENT_NAME, VR::PN, ".."),
        (tags::STUDY_DESCRIPTION, VR::LO, "/etc/passwd"),
        (tags::SERIES_DESCRIPTION, VR::LO, "../../.."),
    ];
    (0..)
        .zip(values)
        .map(|(n, edit)| {
            let dst = dir.join(format!("hostile-{n}.dcm"));
            let uid = test_uid(&format!("2.{n}"));
            write_variant(
                example,
                &dst,
                &[edit, (tags::SOP_INSTANCE_UID, VR::UI, &uid)],
            );
            dst
        })
        .collect()
}

/// The data set of a DICOM file (what follows its file meta group).
fn data_set_of(file: &Path) -> Vec<u8> {
    let bytes = std::fs::read(file).unwrap();
    assert_eq!(&bytes[128..132], b"DICM", "{}", file.display());
    // (0002,0000) UL: 8 bytes of header, then the group's length.
    let meta_len = u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize;
    bytes[144 + meta_len..].to_vec()
}

/// `bytes` cut inside the first occurrence of `marker`, at an even length
/// (storescp refuses odd fragments).
fn cut_inside(bytes: &[u8], marker: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("marker present");
    bytes[..(at + marker.len() / 2) & !1].to_vec()
}

// ---------------------------------------------------------------------------
// Tests

/// The whole example series through storescp in `mode`: every instance
/// placed and recorded, storescp's dir left empty.
fn receive_series(mode: &[&str]) {
    let site = Site::new();
    let files = sag_anon_files();
    let expected = sop_uids(&files);
    let mut scp = Storescp::start(&site, mode);
    storescu(&scp, &sag_anon());
    settle(&site, &mut scp, files.len());
    assert!(
        incoming(&site).is_empty(),
        "left in storescp's dir: {}",
        state(&site, &scp)
    );
    assert_placed(&site, &scp, &expected);
}

#[test]
fn series_through_single_process_storescp() {
    receive_series(&[]);
}

#[test]
fn series_through_forking_storescp() {
    receive_series(&["--fork"]);
}

#[test]
fn bad_instances_stay_with_storescp_which_keeps_serving() {
    let site = Site::new();
    let examples = sag_anon_files();
    // Bit-preserving: storescp writes each data set exactly as received,
    // without parsing it, so broken ones reach rx-repack.
    let mut scp = Storescp::start(&site, &["+B"]);

    // 1st association (storescu): good instances and hostile values.
    let first = stage(&site, "first", &examples[..3]);
    let hostile = hostile_variants(&examples[3], &first);
    storescu(&scp, &first);

    // 2nd association: data sets rx-repack cannot read.
    let not_dicom = b"This is not a DICOM data set.\n".repeat(40);
    let truncated = cut_inside(&data_set_of(&examples[4]), b"anonymized");
    let bad = [(test_uid("3.1"), not_dicom), (test_uid("3.2"), truncated)];
    let statuses = raw_scu::send(scp.port, SCP_AE_TITLE, &bad);
    assert_eq!(statuses, [0, 0], "storescp refused:\n{}", scp.tail());

    // 3rd association (storescu): storescp still serves, rx-repack still runs.
    let last = stage(&site, "last", &examples[5..7]);
    storescu(&scp, &last);

    let good: Vec<PathBuf> = [&examples[..3], &hostile[..], &examples[5..7]].concat();
    settle(&site, &mut scp, good.len() + bad.len());
    assert_placed(&site, &scp, &sop_uids(&good));
    for (uid, data_set) in &bad {
        // storescp names files after the modality and SOPInstanceUID.
        let file = site.incoming().join(format!("MR.{uid}"));
        let bytes = std::fs::read(&file)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", file.display(), state(&site, &scp)));
        assert!(bytes.ends_with(data_set), "{} was changed", file.display());
        let errors = scp.errors_about(&file);
        assert_eq!(
            errors.len(),
            1,
            "one error line for {}: {errors:?}",
            file.display()
        );
    }
    assert_eq!(incoming(&site).len(), bad.len(), "{}", state(&site, &scp));
    assert_nothing_escaped(&site);
}

/// A SOPInstanceUID with a letter is not a valid UID, but storescu sends
/// it, storescp writes it (also into the file meta group) and px-repack
/// places it; so must we (dicom-rs alone refuses such a meta group).
#[test]
fn instance_with_a_letter_in_its_uid_is_placed() {
    let site = Site::new();
    let dir = site.scratch("letter-uid");
    let uid = test_uid("4.1a");
    write_variant(
        &sag_anon_files()[0],
        &dir.join("letter-uid.dcm"),
        &[(tags::SOP_INSTANCE_UID, VR::UI, &uid)],
    );
    let mut scp = Storescp::start(&site, &[]);
    storescu(&scp, &dir);
    settle(&site, &mut scp, 1);
    let refused = refused(&site, &scp);
    assert!(refused.is_empty(), "refused: {refused:?}");
    let placed = placed(&site);
    assert!(
        placed.len() == 1
            && placed[0]
                .to_string_lossy()
                .ends_with(&format!("-{uid}.dcm")),
        "{}",
        state(&site, &scp)
    );
}
