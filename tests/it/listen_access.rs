//! Who may associate with rx-listen: the called AE title, the calling AE
//! titles and the networks allowed, each refusal with its standard reason
//! and a log line naming the peer; and DICOM over TLS with DCMTK's
//! storescu (+tls), client certificates required.

use std::process::{Command, Output};

use crate::common::*;
use crate::listener::{AE_TITLE, Listener, send, storescu};
use crate::raw_scu;

/// A-ASSOCIATE-RJ: result 1 (permanent), source 1 (service user).
const PERMANENT_BY_USER: (u8, u8) = (1, 1);

/// The first `n` SAG-anon instances, in a directory of their own.
fn some_instances(n: usize) -> (tempfile::TempDir, usize) {
    let dir = tempfile::tempdir().unwrap();
    copy_files(&sag_anon_files()[..n], dir.path());
    (dir, n)
}

/// Runs a sender that must fail; returns what it said.
fn send_refused(cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run_bounded(cmd);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{shown} succeeded: {said}");
    said
}

fn placed(listener: &Listener) -> usize {
    let data = listener.data();
    if data.exists() {
        files_under(&data).len()
    } else {
        0
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_called_and_calling_ae_titles_must_be_allowed() {
    let (dir, n) = some_instances(2);
    let mut listener = Listener::start(&["--allow-calling", "MODALITY,STORESCU"]);

    // raw_scu calls itself RXRAWSCU: the called title is checked first.
    let wrong_called = raw_scu::rejection(listener.port, "SOMEONE");
    assert_eq!(wrong_called, (PERMANENT_BY_USER.0, PERMANENT_BY_USER.1, 7));
    let wrong_calling = raw_scu::rejection(listener.port, AE_TITLE);
    assert_eq!(wrong_calling, (PERMANENT_BY_USER.0, PERMANENT_BY_USER.1, 3));
    let said = send_refused(storescu(listener.port, dir.path(), &["-aet", "STRANGER"]));
    assert!(said.contains("Calling AE Title Not Recognized"), "{said}");
    assert_eq!(
        placed(&listener),
        0,
        "a refused association filed something"
    );

    // An allowed one is served by the same listener.
    send(storescu(listener.port, dir.path(), &[]));
    assert_eq!(placed(&listener), n);

    let log = stderr(&listener.stop());
    for line in [
        "RXRAWSCU (127.0.0.1:",
        ") -> SOMEONE: rejected: called AE title not recognized",
        ") -> RXLISTEN: rejected: calling AE title not recognized",
        "STRANGER (127.0.0.1:",
    ] {
        assert!(log.contains(line), "no log line with {line:?}:\n{log}");
    }
}

#[test]
fn any_called_title_is_taken_when_asked() {
    let (dir, n) = some_instances(2);
    let mut listener = Listener::start(&["--any-called-aet"]);
    send(storescu(listener.port, dir.path(), &["-aec", "WHATEVER"]));
    assert_eq!(placed(&listener), n);
    listener.stop();
}

#[test]
fn only_the_networks_allowed_may_associate() {
    let (dir, n) = some_instances(2);
    let mut outside = Listener::start(&["--allow-from", "10.0.0.0/8,fd00::/8"]);
    assert_eq!(
        raw_scu::rejection(outside.port, AE_TITLE),
        (PERMANENT_BY_USER.0, PERMANENT_BY_USER.1, 1),
        "an address has no reason of its own: 'no reason given'"
    );
    send_refused(storescu(outside.port, dir.path(), &[]));
    assert_eq!(placed(&outside), 0);
    let log = stderr(&outside.stop());
    assert!(
        log.contains("STORESCU (127.0.0.1:") && log.contains("rejected: no reason given"),
        "{log}"
    );

    let mut inside = Listener::start(&["--allow-from", "10.0.0.0/8,127.0.0.0/8"]);
    send(storescu(inside.port, dir.path(), &[]));
    assert_eq!(placed(&inside), n);
    inside.stop();
}

/// A CA, a server certificate it signed for localhost and 127.0.0.1, a
/// client certificate it signed, and a client certificate it did not
/// (self-signed), made with openssl.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(dir.path())
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
                .args(args)
                .output()
                .expect("openssl makes the test certificates: apt-get install openssl");
            assert!(out.status.success(), "openssl: {}", stderr(&out));
        };
        let ca = ["-CA", "ca.crt", "-CAkey", "ca.key"];
        let leaf = ["-addext", "basicConstraints=CA:FALSE"];
        let client = ["-addext", "extendedKeyUsage=clientAuth"];
        openssl(&[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=rx-listen test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]);
        let server = [
            "-keyout",
            "server.key",
            "-out",
            "server.crt",
            "-subj",
            "/CN=localhost",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ];
        openssl(&[&ca[..], &leaf, &server].concat());
        let trusted = ["-keyout", "client.key", "-out", "client.crt"];
        let subject = ["-subj", "/CN=modality"];
        openssl(&[&ca[..], &leaf, &client, &trusted, &subject].concat());
        let rogue = ["-keyout", "rogue.key", "-out", "rogue.crt"];
        openssl(&[&leaf[..], &client, &rogue, &subject].concat());
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn server_options(&self, client_ca: bool) -> Vec<String> {
        let mut options = vec![
            "--tls-cert".into(),
            self.path("server.crt"),
            "--tls-key".into(),
            self.path("server.key"),
        ];
        if client_ca {
            options.extend(["--tls-client-ca".into(), self.path("ca.crt")]);
        }
        options
    }

    /// storescu's options for TLS as the client `name` ("client" or
    /// "rogue"), or without a certificate (None), trusting our CA.
    fn client_options(&self, name: Option<&str>) -> Vec<String> {
        let mut options = match name {
            Some(name) => vec![
                "+tls".into(),
                self.path(&format!("{name}.key")),
                self.path(&format!("{name}.crt")),
            ],
            None => vec!["+tla".into()],
        };
        options.extend(["+cf".into(), self.path("ca.crt")]);
        options
    }
}

fn strs(options: &[String]) -> Vec<&str> {
    options.iter().map(String::as_str).collect()
}

#[test]
fn tls_lets_in_clients_with_a_certificate_from_the_ca_only() {
    let pki = Pki::new();
    let (dir, n) = some_instances(3);
    let mut listener = Listener::start(&strs(&pki.server_options(true)));
    let port = listener.port;

    for refused in [Some("rogue"), None] {
        let options = pki.client_options(refused);
        send_refused(storescu(port, dir.path(), &strs(&options)));
    }
    // Plain TCP to a TLS port: the sender fails cleanly.
    send_refused(storescu(port, dir.path(), &[]));
    assert_eq!(placed(&listener), 0, "a refused client filed something");

    send(storescu(
        port,
        dir.path(),
        &strs(&pki.client_options(Some("client"))),
    ));
    assert_eq!(placed(&listener), n);

    let log = stderr(&listener.stop());
    assert!(
        log.contains("UnknownIssuer") && log.contains("no certificates"),
        "the refused certificates are not said: {log}"
    );
    assert!(
        log.contains("STORESCU (127.0.0.1:") && log.contains("3 instances"),
        "{log}"
    );
}

#[test]
fn tls_without_client_certificates_takes_any_client() {
    let pki = Pki::new();
    let (dir, n) = some_instances(2);
    let mut listener = Listener::start(&strs(&pki.server_options(false)));
    send(storescu(
        listener.port,
        dir.path(),
        &strs(&pki.client_options(None)),
    ));
    assert_eq!(placed(&listener), n);
    listener.stop();
}

#[test]
fn bad_tls_files_stop_it_at_start_with_one_line() {
    let pki = Pki::new();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let start = |cert: &str, key: &str| {
        Command::new(assert_cmd::cargo::cargo_bin!("rx-listen"))
            .arg("--datadir")
            .arg(&data)
            .args(["--tls-cert", &pki.path(cert), "--tls-key", &pki.path(key)])
            .arg("127.0.0.1:0")
            .output()
            .unwrap()
    };
    for (cert, key, says) in [
        ("missing.crt", "server.key", "--tls-cert"),
        ("server.crt", "missing.key", "--tls-key"),
        ("server.key", "server.key", "no certificate"),
        ("server.crt", "client.key", "--tls-cert and --tls-key"),
    ] {
        let out = start(cert, key);
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{cert} {key}: {said}");
        assert_eq!(said.lines().count(), 1, "{cert} {key}: {said}");
        assert!(said.contains(says), "{cert} {key}: {said}");
    }
    assert!(!data.exists(), "a failed start made the data dir");
}

/// CPU seconds (user and system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("Linux /proc");
    // The fields after the command's closing parenthesis; utime and stime
    // are the 14th and 15th of the line.
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Connections that end inside their first TLS record (nothing at all,
/// half a ClientHello, a record header alone) are dropped without a
/// thread spinning on them (dicom-ul with TLS would, see
/// src/listener/opening.rs), on a TLS port and on a plain one.
#[test]
fn connections_ending_inside_their_first_record_are_dropped_quietly() {
    use std::io::Write;
    let pki = Pki::new();
    let (dir, n) = some_instances(2);
    let tls = pki.server_options(false);
    let mut tls_options = strs(&tls);
    tls_options.extend(["--acse-timeout", "1"]);
    for (options, client) in [
        (tls_options, pki.client_options(None)),
        (vec!["--acse-timeout", "1"], vec![]),
    ] {
        let mut listener = Listener::start(&options);
        let pid = listener.running.child.id();
        for first in [
            &b""[..],
            b"\x16\x03\x01\x00\x30\x01\x00\x00\x2c",
            b"\x16\x03",
        ] {
            let mut peer = std::net::TcpStream::connect(("127.0.0.1", listener.port)).unwrap();
            peer.write_all(first).unwrap();
        }
        let before = cpu_seconds(pid);
        // Past the ACSE timeout: any thread spinning would have spun.
        std::thread::sleep(std::time::Duration::from_millis(2500));
        let spent = cpu_seconds(pid) - before;
        assert!(spent < 0.5, "rx-listen used {spent} s of CPU while idle");
        send(storescu(listener.port, dir.path(), &strs(&client)));
        assert_eq!(placed(&listener), n);
        listener.stop();
    }
}
