//! `dlms-bridge backup FILE` and `dlms-bridge restore FILE`: the whole database, secrets
//! included (`dlms_bridge::store::backup`).

use super::args::{usage, UsageError};
use super::run::default_db;
use dlms_bridge::store::Store;
use lexopt::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;

pub const BACKUP_HELP: &str = "\
dlms-bridge backup FILE [--db PATH]
  Writes a consistent copy of the whole database (meters with their passwords and keys,
  settings and tokens, invocation counters, alarms) to FILE, a new file with mode 0600,
  while the bridge runs. Keep it as secret as the keys in it.";

pub const RESTORE_HELP: &str = "\
dlms-bridge restore FILE [--db PATH]
  Replaces the database with the backup FILE. Only while no bridge runs on the database
  (stop the service first), and only with a dlms-bridge database; the one replaced is kept
  as DB.before-restore.";

/// FILE and --db of either command.
fn parse(mut parser: lexopt::Parser, help: &str) -> Result<Option<(PathBuf, PathBuf)>, UsageError> {
    let (mut file, mut db) = (None, default_db());
    while let Some(arg) = parser.next()? {
        match arg {
            Long("db") => db = parser.value()?.into(),
            Short('h') | Long("help") => {
                println!("{help}");
                return Ok(None);
            }
            Value(v) if file.is_none() => file = Some(PathBuf::from(v)),
            other => return Err(other.unexpected().into()),
        }
    }
    let file = file.ok_or_else(|| usage("needs a FILE"))?;
    Ok(Some((file, db)))
}

pub fn backup(parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let Some((file, db)) = parse(parser, BACKUP_HELP)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let done = Store::open(&db).and_then(|s| s.backup_to(&file));
    Ok(match done {
        Ok(()) => {
            eprintln!(
                "dlms-bridge: {} backed up to {}",
                db.display(),
                file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dlms-bridge backup: {e}");
            ExitCode::FAILURE
        }
    })
}

pub fn restore(parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let Some((file, db)) = parse(parser, RESTORE_HELP)? else {
        return Ok(ExitCode::SUCCESS);
    };
    Ok(match dlms_bridge::store::backup::restore(&file, &db) {
        Ok(()) => {
            eprintln!(
                "dlms-bridge: {} restored from {} (the one before is {}.before-restore)",
                db.display(),
                file.display(),
                db.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dlms-bridge restore: {e}");
            ExitCode::FAILURE
        }
    })
}
