//! Issue 24: rx-listen's metrics, health and readiness, read by a real
//! Prometheus (Debian's `prometheus`, scraping every second) and checked
//! by promtool.

use std::process::Command;

use crate::common::*;
use crate::listener::{AE_TITLE, Listener, data_set, send, storescu};
use crate::raw_scu::{self, MR_IMAGE_STORAGE};
use crate::services::{Prometheus, free_port, http_get as get, wait_for};

#[test]
fn prometheus_scrapes_what_a_series_sent_and_promtool_passes_the_exposition() {
    let metrics = free_port();
    let address = format!("127.0.0.1:{metrics}");
    let mut listener = Listener::start(&["--metrics", &address]);
    let prometheus = Prometheus::start(&address);
    assert_eq!(get(metrics, "/healthz").0, 200);
    assert_eq!(get(metrics, "/readyz"), (200, "ready\n".into()));
    assert_eq!(get(metrics, "/nothing").0, 404);

    send(storescu(
        listener.port,
        &examples_dir().join("SAG-anon"),
        &[],
    ));
    let files = sag_anon_files();
    let bytes: usize = files
        .iter()
        .map(|path| data_set(&std::fs::read(path).unwrap()).len())
        .sum();
    let received = r#"rx_listen_instances_total{outcome="success"}"#;
    wait_for("Prometheus to scrape 192 received", || {
        prometheus.value(received) == Some(files.len() as f64)
    });
    assert_eq!(
        prometheus.value("rx_listen_received_bytes_total"),
        Some(bytes as f64)
    );
    wait_for("one released association", || {
        prometheus.value(r#"rx_listen_associations_total{ended="released"}"#) == Some(1.0)
    });
    let acknowledged = prometheus.value("rx_listen_acknowledgement_seconds_count");
    assert_eq!(acknowledged, Some(files.len() as f64));
    assert!(
        prometheus
            .value(r#"rx_listen_free_bytes{dir="data"}"#)
            .unwrap()
            > 0.0
    );

    let (code, exposition) = get(metrics, "/metrics");
    assert_eq!(code, 200);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    listener.stop();
}

/// The series /metrics holds, without their values.
fn series(exposition: &str) -> Vec<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' ').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn ten_thousand_associations_with_distinct_ae_titles_leave_the_metrics_as_they_were() {
    let metrics = free_port();
    let address = format!("127.0.0.1:{metrics}");
    let mut listener = Listener::start(&["--metrics", &address, "--allow-calling", "TRUSTED"]);
    let refused = |calling: &str, called: &str| {
        let request = raw_scu::associate_rq_from(calling, called, MR_IMAGE_STORAGE);
        raw_scu::rejection_of(listener.port, &request)
    };
    // One of each first, so that every series there will be exists.
    refused("FIRST", AE_TITLE);
    let before = get(metrics, "/metrics").1;
    for i in 0..10_000 {
        // A calling AE title not allowed, or a called one not ours.
        match i % 2 {
            0 => refused(&format!("HOSTILE{i}"), AE_TITLE),
            _ => refused("TRUSTED", &format!("NOTYOU{i}")),
        };
    }
    let after = get(metrics, "/metrics").1;
    assert_eq!(series(&after), series(&before), "the series changed");
    assert!(
        after.contains(r#"rx_listen_associations_total{ended="rejected"} 10001"#),
        "{after}"
    );
    // The text differs only in the counts' digits.
    assert!(
        after.len() <= before.len() + 16,
        "{} then {} bytes",
        before.len(),
        after.len()
    );
    listener.stop();
}

/// The value of the sample `name` in an exposition.
fn sample(exposition: &str, name: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn series_events_are_counted_completed_waiting_and_failed() {
    let metrics = free_port();
    let address = format!("127.0.0.1:{metrics}");
    let mut listener = Listener::start(&[
        "--metrics",
        &address,
        "--series-settle",
        "0.3",
        // A hook that always fails, given up on after its first try.
        "--exec-on-series",
        "/bin/false",
        "--exec-retries",
        "0",
    ]);
    send(storescu(
        listener.port,
        &examples_dir().join("SAG-anon"),
        &[],
    ));
    wait_for("the series completed and its hook failed", || {
        let exposition = get(metrics, "/metrics").1;
        sample(&exposition, "rx_listen_series_completed_total") == Some(1.0)
            && sample(&exposition, "rx_listen_delivery_failures_total") == Some(1.0)
    });
    wait_for("the outbox counted empty", || {
        let exposition = get(metrics, "/metrics").1;
        sample(
            &exposition,
            r#"rx_listen_outbox_waiting_events{sink="exec"}"#,
        ) == Some(0.0)
    });
    listener.stop();
}

#[test]
fn a_metrics_address_in_use_stops_the_start_with_a_line_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = crate::common::run_bounded({
        let mut cmd = Command::new(crate::listener::listen_path());
        cmd.arg("--datadir")
            .arg(tmp.path())
            .args(["--metrics", &address, "127.0.0.1:0"]);
        cmd
    });
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("metrics on {address}")),
        "{stderr}"
    );
}
