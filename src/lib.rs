//! rx-repack: repack received DICOM files into a human-readable
//! patient/study/series tree and write pypx's JSON records.
//!
//! One pipeline, a folder per stage, each using only the stages before it:
//! [`reading`] reads the header, [`layout`] decides the path from the
//! templates, [`placing`] puts the file there atomically, [`records`]
//! writes pypx's log dir. [`pipeline`] chains them for one file and
//! [`report`] tells the user; [`batch`] runs the pipeline over many files.
//! [`cli`] parses the command line, [`config`] resolves it. [`receiving`]
//! is rx-listen, a DICOM storage SCP that files what it receives through
//! the same pipeline.

pub mod batch;
pub mod cli;
pub mod config;
pub mod error_text;
pub mod exit_codes;
pub mod layout;
pub mod pipeline;
pub mod placing;
pub mod reading;
pub mod receiving;
pub mod records;
pub mod report;
