//! rx-repack: repack received DICOM files into a human-readable
//! patient/study/series tree and write pypx's JSON records.
//!
//! One pipeline, one module per stage: [`header`] reads the tags,
//! [`layout`] (with [`template`]) decides the path, [`place`] puts the file
//! there atomically, [`records`] writes pypx's log dir, [`report`] tells the
//! user. [`pipeline`] chains them; [`batch`] runs it over many files.

pub mod atomic_file;
pub mod batch;
pub mod charset;
pub mod cli;
pub mod config;
pub mod exit_codes;
pub mod header;
pub mod keywords;
pub mod layout;
pub mod lengths;
pub mod pipeline;
pub mod place;
pub mod pyjson;
pub mod pytext;
pub mod quarantine;
pub mod records;
pub mod report;
pub mod template;
pub mod unnamed;
pub mod walk;
