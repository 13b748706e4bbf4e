//! Every exit status the program uses.

/// All files repacked.
pub const SUCCESS: u8 = 0;
/// At least one file could not be repacked.
pub const FAILED: u8 = 1;
/// The command line is wrong (clap uses 2 as well).
pub const USAGE: u8 = 2;
/// Stopped by Ctrl-C or SIGTERM (files in flight were finished).
pub const INTERRUPTED: u8 = 130;
