//! Making what filings wrote durable in as few commits of the file system
//! as the promise allows.
//!
//! The promise (`--fsync always`): when an instance is acknowledged, its
//! bytes, its name and every record that says it exists survive a power
//! cut. On any POSIX file system that takes an fsync of every new file
//! and of every directory that got a new name, each after the last change
//! it must cover. A filing therefore owes ([`Owed`]) the fsyncs of what it
//! writes and names, and pays them all at its end, before the answer goes
//! out.
//!
//! Paid at the end, they cost one journal commit on ext4 and XFS: the
//! first fsync commits the transaction that holds every change of the
//! filing, and the others find their changes committed. How they are
//! made decides what else they cost:
//!
//! - A filing alone (no other on its way or waiting) fsyncs its files at
//!   once, one on its own thread and the others on syncer threads, so
//!   that they wait on that one commit together (one after another, each
//!   file's after the first costs a cache flush of its own); then its
//!   directories, whose changes are committed by then.
//! - Filings that meet at the gate ([`Coming`]) share commits (group
//!   commit): a filing that comes to pay while others are on their way
//!   waits for them, up to [`GATHER`], so that one commit covers them
//!   all instead of one each. Each then makes all its fsyncs at once,
//!   directories first: on ext4 a directory's fsync commits whatever
//!   transaction is running, and with other associations writing one
//!   always is, so made after the files' it would wait for a commit of
//!   other filings' changes.
//!
//! Neither changes what is synced: each filing still makes every fsync it
//! owes, each after its object's last change, and answers once all are
//! made.
//!
//! An instance is named before its fsync, so a power cut during a filing
//! could, on some file systems, leave its name on data not yet written.
//! [`write_back`] closes that on the journaling file systems Linux users
//! run: before the name is made, the new file's data is written to the
//! device and its size and blocks are in the journal, and a journal commit
//! that makes the name durable flushes the device's cache first (ext4 in
//! its default ordered mode, XFS). Records other than the image record
//! are few; their contents are synced before they are named, as before.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

/// Writes the data of `files` to the device and waits for it, without a
/// journal commit or a cache flush (Linux's `sync_file_range`): done
/// before the files are named (see the module's text). The writes of all
/// are started before any is waited for, so they are on their way
/// together. Where the call is not supported it is skipped: the fsyncs
/// owed still keep the promise.
pub fn write_back(files: &[&File]) -> io::Result<()> {
    let start = libc::SYNC_FILE_RANGE_WRITE;
    let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE | start | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    for flags in [start, wait] {
        for file in files {
            sync_file_range(file, flags)?;
        }
    }
    Ok(())
}

fn sync_file_range(file: &File, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: a plain system call on a descriptor that `file` keeps open
    // for the duration of the call; it touches no memory of ours.
    if unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, flags) } == 0 {
        return Ok(());
    }
    match io::Error::last_os_error() {
        e if matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS | libc::EINVAL | libc::ESPIPE)
        ) =>
        {
            Ok(())
        }
        e => Err(e),
    }
}

/// The fsyncs a filing owes: of the files it wrote and of the directories
/// in which it made or removed names. [`Owed::pay`] makes them.
#[derive(Default)]
pub struct Owed {
    files: RefCell<Vec<File>>,
    dirs: RefCell<Vec<PathBuf>>,
    /// The filing's count at the gate, until its payment.
    coming: Cell<Option<Coming>>,
}

impl Owed {
    /// The debts of a filing counted at the gate: its payment waits there
    /// for the other filings on their way.
    pub fn for_filing(coming: Coming) -> Owed {
        Owed {
            coming: Cell::new(Some(coming)),
            ..Owed::default()
        }
    }

    /// `file`'s contents are owed an fsync (through a descriptor of its
    /// own, so the file may be closed meanwhile).
    pub fn file(&self, file: &File) -> io::Result<()> {
        self.files.borrow_mut().push(file.try_clone()?);
        Ok(())
    }

    /// The name `path` was made or removed: its directory is owed an
    /// fsync.
    pub fn name(&self, path: &Path) {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut dirs = self.dirs.borrow_mut();
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_path_buf());
        }
    }

    /// Makes every fsync owed so far; an error, if any (the rest are made
    /// even so, and owed no more). The first payment of a filing counted
    /// at the gate waits there for the others on their way; if it met
    /// others, the fsyncs are made all at once (see [`sync_together`]).
    pub fn pay(&self) -> io::Result<()> {
        let together = self.coming.take().is_some_and(Coming::gather);
        let files = self.files.take();
        let dirs = self.dirs.take().into_iter().map(Synced::Dir);
        if together {
            // Directories first (see the module's text).
            return sync_together(dirs.chain(files.into_iter().map(Synced::File)).collect());
        }
        // Alone: the files' commit covers the directories' changes, and
        // no other filing's changes are running to commit with them. One
        // file has no other to share its flush with: no need to ask.
        let at_once = files.len() > 1 && flushes_shared(&files[0]);
        let files = files.into_iter().map(Synced::File);
        let files = if at_once {
            sync_together(files.collect())
        } else {
            in_turn(files)
        };
        files.and(in_turn(dirs))
    }
}

/// What an fsync is made of: a file through its descriptor, a directory
/// by its path.
enum Synced {
    File(File),
    Dir(PathBuf),
}

impl Synced {
    fn sync(self) -> io::Result<()> {
        match self {
            Synced::File(file) => file.sync_all(),
            Synced::Dir(dir) => File::open(dir)?.sync_all(),
        }
    }
}

/// A durable filing on its way to its payment, counted at a gate from
/// the start of its instance's data set (its filing begins when the last
/// fragment comes), until it pays or is dropped.
pub struct Coming {
    gate: &'static Gate,
    arrived: bool,
}

impl Coming {
    /// Counts one more filing on its way to the listener's gate.
    pub fn start() -> Coming {
        Coming::at(&GATE)
    }

    fn at(gate: &'static Gate) -> Coming {
        gate.lock().coming += 1;
        Coming {
            gate,
            arrived: false,
        }
    }

    /// Waits at the gate for the other filings on their way: whether it
    /// met others there.
    fn gather(mut self) -> bool {
        self.arrived = true;
        self.gate.gather()
    }
}

impl Drop for Coming {
    fn drop(&mut self) {
        if !self.arrived {
            self.gate.arrived();
        }
    }
}

/// The longest a payment waits for filings still on their way: about one
/// journal commit on a disk without a cache that survives a power cut
/// (ext4 on a loop disk here: 0.4 to 1.2 ms). Waiting longer than a
/// commit would cost more than the commit it saves; with four senders,
/// 250 us to 2 ms gave the same times, and no wait at all worse ones.
const GATHER: Duration = Duration::from_millis(1);

/// The listener's gate: its filings share commits.
static GATE: Gate = Gate::new(GATHER);

/// Where concurrent payments meet (group commit): a payment that finds
/// other filings on their way waits until none is, or for `gather`, and
/// all that waited go on together.
struct Gate {
    count: Mutex<Count>,
    opened: Condvar,
    gather: Duration,
}

struct Count {
    /// The filings on their way.
    coming: usize,
    /// The filings waiting at the gate for the next opening.
    waiting: usize,
    /// The openings so far: a payment waits for the next one.
    openings: u64,
}

impl Gate {
    const fn new(gather: Duration) -> Gate {
        Gate {
            count: Mutex::new(Count {
                coming: 0,
                waiting: 0,
                openings: 0,
            }),
            opened: Condvar::new(),
            gather,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Count> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One filing is no longer on its way, unpaid.
    fn arrived(&self) {
        self.one_less_coming(&mut self.lock());
    }

    /// One filing is no longer on its way: the gate opens if it was the
    /// last (then true).
    fn one_less_coming(&self, count: &mut Count) -> bool {
        count.coming -= 1;
        let last = count.coming == 0;
        if last {
            self.open(count);
        }
        last
    }

    /// Waits, as one filing now at the gate, until no other is on its way
    /// or for `gather`; then the gate opens for all waiting. Whether it
    /// met others: waited, or found others waiting.
    fn gather(&self) -> bool {
        let mut count = self.lock();
        let others_waiting = count.waiting > 0;
        if self.one_less_coming(&mut count) {
            return others_waiting;
        }
        let openings = count.openings;
        count.waiting += 1;
        let (mut count, _) = self
            .opened
            .wait_timeout_while(count, self.gather, |count| count.openings == openings)
            .unwrap_or_else(|e| e.into_inner());
        if count.openings == openings {
            self.open(&mut count);
        }
        true
    }

    fn open(&self, count: &mut Count) {
        count.openings += 1;
        count.waiting = 0;
        self.opened.notify_all();
    }
}

/// Whether the fsyncs of files on `file`'s file system, made at once
/// while their transaction commits, share its cache flush, where made one
/// after another each after the first flushes again: ext4's. XFS flushes
/// again for each either way (for a file whose log items another fsync
/// wrote), so there syncer threads would only add their hand-off
/// (measured: 0.04 ms more per instance on XFS, 0.07 ms less on ext4).
fn flushes_shared(file: &File) -> bool {
    // EXT4_SUPER_MAGIC, linux/magic.h.
    rustix::fs::fstatfs(file).is_ok_and(|fs| fs.f_type == 0xef53)
}

/// Makes the fsyncs `owed` one after another, all of them even after an
/// error: the first error, if any.
fn in_turn(owed: impl Iterator<Item = Synced>) -> io::Result<()> {
    owed.map(Synced::sync).fold(Ok(()), Result::and)
}

/// Makes the fsyncs `owed` at once: the first on this thread, the others
/// on syncer threads, so that they all wait on the same commit. An error,
/// if any, once all are made.
fn sync_together(owed: Vec<Synced>) -> io::Result<()> {
    let mut owed = owed.into_iter();
    let Some(first) = owed.next() else {
        return Ok(());
    };
    let (done, results) = mpsc::channel();
    let others = owed.len();
    for synced in owed {
        let done = done.clone();
        let job: SyncJob = Box::new(move || drop(done.send(synced.sync())));
        if let Err(mpsc::SendError(job)) = SYNCERS.send(job) {
            // No syncer thread could be started: the fsync is made here.
            job();
        }
    }
    drop(done);
    let first = first.sync();
    (0..others).fold(first, |result, _| {
        let synced = results
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("a syncer thread died")));
        result.and(synced)
    })
}

type SyncJob = Box<dyn FnOnce() + Send>;

/// How many fsyncs can be made for other threads at once: enough for
/// several associations' filings at the same time (up to three each,
/// beside the one on the filing's own thread).
const SYNCER_THREADS: usize = 16;

/// The syncer threads' queue, started on first use; the threads block in
/// fsync, not on a core.
static SYNCERS: LazyLock<mpsc::Sender<SyncJob>> = LazyLock::new(|| {
    let (jobs, queue) = mpsc::channel::<SyncJob>();
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..SYNCER_THREADS {
        let queue = Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name(format!("syncer-{i}"))
            .spawn(move || {
                loop {
                    // The queue's lock is let go before the job runs, so
                    // that the syncers make their fsyncs at once.
                    let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(mpsc::RecvError) => return,
                    }
                }
            });
        // Fewer syncers only means fewer fsyncs at once; with none, the
        // queue's end is dropped and every fsync is made by its filing.
        drop(spawned);
    }
    jobs
});

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    #[test]
    fn a_payment_waits_at_the_gate_until_the_filings_on_their_way_arrive() {
        // A gather far longer than the test: only an arrival opens it.
        static LONG: Gate = Gate::new(Duration::from_secs(600));
        let a = Coming::at(&LONG);
        let b = Coming::at(&LONG);
        let on_its_way = Coming::at(&LONG);
        let (met, a_met) = mpsc::channel();
        let a = std::thread::spawn(move || met.send(a.gather()).unwrap());
        let waited = Duration::from_millis(100);
        let early = "went on while others were on their way";
        assert!(a_met.recv_timeout(waited).is_err(), "{early}");
        // One arrives unpaid (its C-STORE failed): b is still on its way.
        drop(on_its_way);
        assert!(a_met.recv_timeout(waited).is_err(), "{early}");
        assert!(b.gather(), "b, the last to come, did not meet a");
        let a_met = a_met.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(a_met, "a waited, so it met others");
        a.join().unwrap();
        assert_eq!(LONG.lock().coming, 0);
        // Alone at the gate: it goes on at once, and says so.
        assert!(!Coming::at(&LONG).gather());
        // Either way, a filing counted at the gate pays what it owes.
        let dir = tempfile::tempdir().unwrap();
        let owed = Owed::for_filing(Coming::at(&LONG));
        owed.name(&dir.path().join("sub/c"));
        let err = owed.pay().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_payment_waits_for_a_filing_that_does_not_come_no_longer_than_its_gather() {
        static SHORT: Gate = Gate::new(Duration::from_millis(50));
        let stalled = Coming::at(&SHORT);
        let owed = Owed::for_filing(Coming::at(&SHORT));
        let started = Instant::now();
        owed.pay().unwrap();
        let waited = started.elapsed();
        assert!(waited >= SHORT.gather, "waited {waited:?}");
        assert!(waited < Duration::from_secs(10), "waited {waited:?}");
        drop(stalled);
        assert_eq!(SHORT.lock().coming, 0);
    }

    #[test]
    fn each_directory_is_owed_once_and_a_failed_fsync_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let owed = Owed::default();
        owed.name(&dir.path().join("a"));
        owed.name(&dir.path().join("b"));
        owed.name(&dir.path().join("sub/c"));
        assert_eq!(owed.dirs.borrow().len(), 2);
        // The subdirectory does not exist: its fsync fails, and says so.
        let err = owed.pay().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(owed.dirs.borrow().is_empty(), "a payment leaves debts");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        owed.name(&dir.path().join("sub/c"));
        owed.name(&dir.path().join("a"));
        owed.pay().unwrap();
    }

    #[test]
    fn files_written_back_and_synced_even_once_closed_and_errors_told() {
        let dir = tempfile::tempdir().unwrap();
        let owed = Owed::default();
        let files: Vec<File> = (0..3)
            .map(|i| {
                let mut file = File::create(dir.path().join(i.to_string())).unwrap();
                file.write_all(b"data").unwrap();
                file
            })
            .collect();
        write_back(&files.iter().collect::<Vec<_>>()).unwrap();
        for file in files {
            owed.file(&file).unwrap();
        }
        owed.pay().unwrap();
        // A pipe cannot be synced: its error comes back, from this thread
        // or from a syncer thread.
        let (reader, _writer) = io::pipe().unwrap();
        let pipe = File::from(std::os::fd::OwnedFd::from(reader));
        owed.file(&pipe).unwrap();
        let err = owed.pay().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
        owed.file(&File::open(dir.path().join("0")).unwrap())
            .unwrap();
        owed.file(&pipe).unwrap();
        let err = owed.pay().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
        assert!(owed.files.borrow().is_empty());
    }
}
