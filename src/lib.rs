//! rx-repack: file received DICOM instances into a human-readable
//! patient/study/series tree and write pypx's JSON records.
//!
//! Two front doors over one hall. [`repacker`] is rx-repack's: files at
//! paths, one as storescp asks or many in a batch. [`listener`] is
//! rx-listen's: a DICOM storage SCP that files what it receives as it
//! streams in. Both take the options of [`filing`] and send each instance
//! through the [`pipeline`]: [`reading`] reads the header, [`layout`]
//! decides the path from the templates, [`placing`] puts the file there
//! atomically, [`records`] writes pypx's log dir, and [`report`] tells the
//! user. [`atomic_file`], the bottom layer, makes every file appear
//! complete or not at all, and [`syncing`] makes it durable in few commits.
//! docs/architecture.md has the map and the
//! layering rule.

pub mod atomic_file;
pub mod error_text;
pub mod exit_codes;
pub mod filing;
pub mod layout;
pub mod listener;
pub mod pipeline;
pub mod placing;
pub mod reading;
pub mod records;
pub mod repacker;
pub mod report;
pub mod syncing;
