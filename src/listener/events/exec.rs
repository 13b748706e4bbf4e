//! `--exec-on-series`: a program run for each event, as DCMTK's
//! `--exec-on-eostudy` runs one, but without a shell. The template is
//! split into words once, at start, as a POSIX shell would split it;
//! placeholders are then replaced inside each word, so a tag value is
//! only ever part of one argument, never code.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

use super::delivery::{Failure, Sink};
use super::event::Event;

/// How often a running hook is looked at.
const POLL: Duration = Duration::from_millis(20);

/// The words of `template` (`PROGRAM ARG...`), split as a POSIX shell
/// splits them (blanks between words; '...', "..." with \" \\ \$ \`
/// escapes, and \ outside quotes), placeholders still in. Nothing is
/// expanded, and `#` starts no comment: `#p` is a word. (The shlex
/// crates take `#` for a comment, hence this.)
pub fn split_template(template: &str) -> Result<Vec<String>, String> {
    let bad = |why: &str| format!("--exec-on-series {template:?}: {why}");
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\'' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(bad("a ' is not closed")),
                    }
                }
            }
            '"' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => word.extend(['\\', c]),
                            None => return Err(bad("a \" is not closed")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(bad("a \" is not closed")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(bad("it ends with a \\")),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    if words.is_empty() {
        return Err("--exec-on-series: no program given".into());
    }
    Ok(words)
}

pub struct ExecSink {
    words: Vec<String>,
    timeout: Duration,
    retries: u32,
    /// How long a hook still running when rx-listen stops may go on.
    grace: Duration,
}

impl ExecSink {
    /// The sink running `words` (from [`split_template`]).
    pub fn new(words: Vec<String>, timeout: Duration, retries: u32, grace: Duration) -> ExecSink {
        ExecSink {
            words,
            timeout,
            retries,
            grace,
        }
    }

    /// The command for `event`: the template's words with the event's
    /// values in place, and the event in the environment.
    fn command(&self, event: &Event) -> io::Result<Command> {
        let mut words = self.words.iter().map(|word| expand(word, event));
        let mut command = Command::new(words.next().unwrap_or_default());
        command.args(words).envs(environment(event));
        // The hook's output goes to our stderr: our stdout may carry
        // --log-ndjson's lines.
        let stderr = io::stderr().as_fd().try_clone_to_owned()?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(stderr))
            // Its own process group, so that a hook that times out is
            // killed with whatever it started.
            .process_group(0);
        Ok(command)
    }
}

impl Sink for ExecSink {
    fn name(&self) -> &'static str {
        "exec"
    }

    fn retries(&self) -> Option<u32> {
        Some(self.retries)
    }

    fn deliver(&self, event: &Event, stop: &AtomicBool) -> Result<(), Failure> {
        let mut child = self
            .command(event)
            .and_then(|mut command| command.spawn())
            .map_err(|e| format!("cannot run {}: {e}", self.words[0]))?;
        let started = Instant::now();
        let mut stopping: Option<Instant> = None;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return exit(status).map_err(Failure::Again),
                Ok(None) => {}
                Err(e) => return Err(format!("cannot wait for {}: {e}", self.words[0]).into()),
            }
            if started.elapsed() >= self.timeout {
                kill(&mut child);
                return Err(
                    format!("timed out after {} s; killed", self.timeout.as_secs_f64()).into(),
                );
            }
            if stop.load(Ordering::Relaxed) {
                let since = *stopping.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.grace {
                    kill(&mut child);
                    return Err(Failure::Again(
                        "still running when rx-listen stopped; killed".into(),
                    ));
                }
            }
            std::thread::sleep(POLL);
        }
    }
}

fn exit(status: ExitStatus) -> Result<(), String> {
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(format!("exit status {code}")),
        None => Err(format!("{status}")),
    }
}

/// Kills the hook's process group, and reaps the hook.
fn kill(child: &mut Child) {
    let _ = kill_process_group(Pid::from_child(child), Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// `word` with the placeholders replaced by the values of `event`.
fn expand(word: &str, event: &Event) -> String {
    let first = event.first_association();
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '#' {
            out.push(c);
            continue;
        }
        let mut rest = chars.clone();
        let value = match rest.next() {
            Some('p') => event.series_dir.clone(),
            Some('s') => event.series_instance_uid.clone(),
            Some('n') => event.instances.to_string(),
            Some('a') => first.map(|a| a.calling_ae.clone()).unwrap_or_default(),
            Some('c') => first.map(|a| a.called_ae.clone()).unwrap_or_default(),
            Some('r') => first.map(|a| a.peer.clone()).unwrap_or_default(),
            _ => {
                out.push('#');
                continue;
            }
        };
        out.push_str(&value);
        chars = rest;
    }
    without_nul(out)
}

/// The event in a hook's environment.
fn environment(event: &Event) -> Vec<(&'static str, String)> {
    let first = event.first_association();
    let of_first = |f: fn(&super::event::AssociationEnd) -> &String| {
        first.map(|a| f(a).clone()).unwrap_or_default()
    };
    [
        ("RX_EVENT_ID", event.event_id.clone()),
        ("RX_SERIES_DIR", event.series_dir.clone()),
        ("RX_SERIES_DIR_RELATIVE", event.series_dir_relative.clone()),
        ("RX_PATIENT_ID", event.patient_id.clone()),
        ("RX_STUDY_INSTANCE_UID", event.study_instance_uid.clone()),
        ("RX_SERIES_INSTANCE_UID", event.series_instance_uid.clone()),
        ("RX_INSTANCES", event.instances.to_string()),
        ("RX_FIRST_ARRIVAL", event.first_arrival.clone()),
        ("RX_LAST_ARRIVAL", event.last_arrival.clone()),
        ("RX_CALLING_AE", of_first(|a| &a.calling_ae)),
        ("RX_CALLED_AE", of_first(|a| &a.called_ae)),
        ("RX_PEER", of_first(|a| &a.peer)),
        ("RX_EVENT", serde_json::to_string(event).unwrap_or_default()),
    ]
    .into_iter()
    .map(|(name, value)| (name, without_nul(value)))
    .collect()
}

/// A NUL cannot be passed to a program: it becomes U+FFFD.
fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::AssociationEnd;
    use super::*;

    fn event() -> Event {
        Event {
            event_id: "id".into(),
            patient_id: "P".into(),
            study_instance_uid: "1.2".into(),
            series_instance_uid: "1.2.3".into(),
            series_dir: "/data/p/s/e".into(),
            series_dir_relative: "p/s/e".into(),
            instances: 192,
            first_arrival: String::new(),
            last_arrival: String::new(),
            completed: String::new(),
            associations: vec![AssociationEnd {
                calling_ae: "STORESCU".into(),
                called_ae: "RXLISTEN".into(),
                peer: "127.0.0.1:4000".into(),
                ended: "released".into(),
            }],
            replayed: false,
        }
    }

    #[test]
    fn placeholders_are_replaced_inside_words() {
        let e = event();
        assert_eq!(expand("#p", &e), "/data/p/s/e");
        assert_eq!(expand("--uid=#s/#n", &e), "--uid=1.2.3/192");
        assert_eq!(expand("#a>#c@#r", &e), "STORESCU>RXLISTEN@127.0.0.1:4000");
        assert_eq!(expand("#x ## #", &e), "#x ## #");
    }

    #[test]
    fn the_template_is_split_once_as_a_shell_would_without_one() {
        let words = split_template("/bin/echo 'a b' \"#p\" c\\ d #s '' x\"\\\"\\n\"").unwrap();
        assert_eq!(words, ["/bin/echo", "a b", "#p", "c d", "#s", "", "x\"\\n"]);
        assert!(split_template("'open").is_err());
        assert!(split_template("\"open").is_err());
        assert!(split_template("end\\").is_err());
        assert!(split_template("  ").is_err());
    }
}
