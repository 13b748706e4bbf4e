//! oxidicom's settings: the `OXIDICOM_*` environment variables a ChRIS
//! deployment gives its receiver, read as rx-listen's options, so that a
//! deployment swaps the image and keeps its configuration. They are
//! defaults: the command line wins. A variable rx-listen cannot honour is
//! refused, with one line, rather than ignored.
//!
//! `OXIDICOM_FILES_ROOT` (which oxidicom requires) turns this on; it also
//! brings oxidicom's ways: the ChRIS layout, any called AE title taken,
//! port 11111 on every address, and the log dir (the series' state and
//! the outbox, which must outlive the container) on the same volume, in
//! `<FILES_ROOT>/.rx-listen`.

use std::ffi::OsString;
use std::time::Duration;

/// The prefix of oxidicom's variables.
const PREFIX: &str = "OXIDICOM_";

/// What the environment says, as rx-listen's options.
#[derive(Debug, Default, PartialEq)]
pub struct FromEnv {
    /// Options to put before the command line's.
    pub args: Vec<OsString>,
    /// Where to listen, unless the command line says.
    pub listen: Option<String>,
}

/// Reads oxidicom's variables among `vars`.
pub fn from_env(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Result<FromEnv, String> {
    let mut ours: Vec<(String, String)> = Vec::new();
    for (name, value) in vars {
        let Some(name) = name.to_str().filter(|n| n.starts_with(PREFIX)) else {
            continue;
        };
        let value = value
            .into_string()
            .map_err(|_| format!("{name}: not UTF-8"))?;
        ours.push((name.to_string(), value));
    }
    if ours.is_empty() {
        return Ok(FromEnv::default());
    }
    ours.sort();
    let Some((_, root)) = ours.iter().find(|(name, _)| name == "OXIDICOM_FILES_ROOT") else {
        return Err(format!(
            "{} is set but not OXIDICOM_FILES_ROOT, which oxidicom's settings need",
            ours[0].0
        ));
    };
    let mut args: Vec<String> = vec![
        "--layout".into(),
        "chris".into(),
        "--datadir".into(),
        root.clone(),
        "--logdir".into(),
        format!("{}/.rx-listen", root.trim_end_matches('/')),
        "--any-called-aet".into(),
        "--aet".into(),
        "ChRIS".into(),
    ];
    let mut listen = Some("0.0.0.0:11111".to_string());
    for (name, value) in &ours {
        let option = |option: &str| vec![option.to_string(), value.clone()];
        let refused = |why: &str| Err(format!("{name}={value}: {why}"));
        let more = match name.as_str() {
            "OXIDICOM_FILES_ROOT" => vec![],
            "OXIDICOM_SCP_AET" => option("--aet"),
            "OXIDICOM_LISTENER_PORT" => {
                let port: u16 = value
                    .parse()
                    .map_err(|_| format!("{name}={value}: not a port"))?;
                listen = Some(format!("0.0.0.0:{port}"));
                vec![]
            }
            "OXIDICOM_LISTENER_THREADS" => option("--max-associations"),
            "OXIDICOM_SCP_MAX_PDU_LENGTH" => option("--max-pdu"),
            "OXIDICOM_CELERY_BROKER" | "OXIDICOM_AMQP_ADDRESS" => option("--celery-broker"),
            "OXIDICOM_QUEUE_NAME" => option("--celery-queue"),
            "OXIDICOM_NATS_ADDRESS" => option("--nats"),
            "OXIDICOM_ROOT_SUBJECT" => option("--nats-root"),
            "OXIDICOM_PROGRESS_INTERVAL" => {
                let interval = humantime::parse_duration(value)
                    .map_err(|e| format!("{name}={value}: {e} (e.g. 500ms)"))?;
                vec!["--progress-interval".into(), seconds(interval)]
            }
            // What rx-listen always does, or never: the value that asks
            // for it is taken, the other refused.
            "OXIDICOM_SCP_STRICT" => match boolean(name, value)? {
                true => vec![],
                false => {
                    return refused(
                        "rx-listen always holds a peer to the PDU length it negotiated (set it to true)",
                    );
                }
            },
            "OXIDICOM_SCP_PROMISCUOUS" => match boolean(name, value)? {
                false => vec![],
                true => {
                    return refused(
                        "rx-listen takes every storage SOP class DICOM names, and no other (set it to false)",
                    );
                }
            },
            "OXIDICOM_SCP_UNCOMPRESSED_ONLY" => match boolean(name, value)? {
                false => vec![],
                true => {
                    return refused(
                        "rx-listen takes every transfer syntax, compressed ones too (set it to false)",
                    );
                }
            },
            "OXIDICOM_CUBE_LOGIN_URL"
            | "OXIDICOM_CUBE_CHRIS_PASSWORD"
            | "OXIDICOM_CUBE_SERIES_URL" => {
                return refused(
                    "registering over CUBE's HTTP API (oxidicom 3.1) is not supported: give OXIDICOM_CELERY_BROKER (or --celery-broker)",
                );
            }
            "OXIDICOM_DEV_SLEEP" => return refused("a debugging delay rx-listen does not have"),
            _ => return refused("not one of oxidicom's settings that rx-listen knows"),
        };
        args.extend(more);
    }
    Ok(FromEnv {
        args: args.into_iter().map(OsString::from).collect(),
        listen,
    })
}

fn boolean(name: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{name}={value}: expected true or false")),
    }
}

/// `interval` as rx-listen's options write seconds.
fn seconds(interval: Duration) -> String {
    interval.as_secs_f64().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<FromEnv, String> {
        from_env(
            vars.iter()
                .map(|(n, v)| (OsString::from(n), OsString::from(v))),
        )
    }

    fn args(from: &FromEnv) -> Vec<&str> {
        from.args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    #[test]
    fn no_oxidicom_variables_change_nothing() {
        assert_eq!(env(&[("PATH", "/bin")]).unwrap(), FromEnv::default());
    }

    #[test]
    fn a_chris_deployments_variables_become_options() {
        let from = env(&[
            ("OXIDICOM_FILES_ROOT", "/data"),
            ("OXIDICOM_AMQP_ADDRESS", "redis://redis:6379/0"),
            ("OXIDICOM_NATS_ADDRESS", "nats:4222"),
            ("OXIDICOM_PROGRESS_INTERVAL", "250ms"),
            ("OXIDICOM_SCP_AET", "CHRISLOCAL"),
            ("OXIDICOM_LISTENER_PORT", "11113"),
            ("OXIDICOM_SCP_STRICT", "true"),
            ("HOME", "/root"),
        ])
        .unwrap();
        let given = args(&from);
        for pair in [
            ["--datadir", "/data"],
            ["--logdir", "/data/.rx-listen"],
            ["--layout", "chris"],
            ["--celery-broker", "redis://redis:6379/0"],
            ["--nats", "nats:4222"],
            ["--progress-interval", "0.25"],
        ] {
            assert!(given.windows(2).any(|w| w == pair), "{pair:?} in {given:?}");
        }
        // oxidicom's AE title default, then the deployment's.
        let aet = given.iter().rposition(|a| *a == "--aet").unwrap();
        assert_eq!(given[aet + 1], "CHRISLOCAL");
        assert_eq!(from.listen.as_deref(), Some("0.0.0.0:11113"));
    }

    #[test]
    fn what_rx_listen_cannot_honour_is_refused_with_its_name() {
        for (name, value) in [
            ("OXIDICOM_SCP_STRICT", "false"),
            ("OXIDICOM_SCP_PROMISCUOUS", "true"),
            (
                "OXIDICOM_CUBE_SERIES_URL",
                "http://cube:8000/api/v1/pacs/series/",
            ),
            ("OXIDICOM_DEV_SLEEP", "5ms"),
            ("OXIDICOM_VERBOSE", "yes"),
            ("OXIDICOM_LISTENER_PORT", "eleven"),
            ("OXIDICOM_PROGRESS_INTERVAL", "soon"),
        ] {
            let error = env(&[("OXIDICOM_FILES_ROOT", "/data"), (name, value)]).unwrap_err();
            assert!(error.starts_with(&format!("{name}={value}: ")), "{error}");
        }
        let error = env(&[("OXIDICOM_NATS_ADDRESS", "nats:4222")]).unwrap_err();
        assert!(error.contains("OXIDICOM_FILES_ROOT"), "{error}");
    }
}
