//! `daskr cache stats|clear DIR`, and opening the cache `daskr run --cache DIR` uses.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use daskr::{Cache, Error};

#[derive(Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Print how many entries a cache directory holds, and their size.
    Stats {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Print JSON: {"entries": N, "bytes": N}.
        #[arg(long)]
        json: bool,
    },
    /// Remove every entry of a cache directory.
    Clear {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Opens `dir` for `daskr run --cache`, with its size bound and entry limit (if given).
pub fn open(
    dir: &Path,
    (max_bytes, max_entry_bytes): (Option<u64>, Option<u64>),
) -> Result<Cache, Error> {
    let cache = Cache::open(dir)?;
    if let Some(max) = max_bytes {
        cache.set_max_bytes(max);
    }
    if let Some(max) = max_entry_bytes {
        cache.set_max_entry_bytes(max);
    }
    Ok(cache)
}

pub fn main(args: CacheArgs) -> ExitCode {
    let (dir, clear, json) = match &args.action {
        Action::Stats { dir, json } => (dir, false, *json),
        Action::Clear { dir } => (dir, true, false),
    };
    // Refuse a directory that is not a cache rather than create one: stats and clear read.
    // An earlier format's folder counts (clear removes it; this version ignores it).
    let layouts =
        std::iter::once(&daskr::cache::store::LAYOUT).chain(daskr::cache::store::OLD_LAYOUTS);
    if !layouts.into_iter().any(|l| dir.join(l).is_dir()) {
        eprintln!(
            "daskr: '{}' is not a daskr cache directory (no {} in it)",
            dir.display(),
            daskr::cache::store::LAYOUT
        );
        return ExitCode::from(1);
    }
    let result = Cache::open(dir).and_then(|cache| {
        if clear {
            let removed = cache.clear()?;
            println!(
                "removed {} entries ({} bytes) from {}",
                removed.entries,
                removed.bytes,
                dir.display()
            );
        } else {
            let u = cache.usage();
            if json {
                println!("{{\"entries\": {}, \"bytes\": {}}}", u.entries, u.bytes);
            } else {
                println!(
                    "{}: {} entries, {} bytes",
                    dir.display(),
                    u.entries,
                    u.bytes
                );
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daskr: {}", e.message);
            ExitCode::from(1)
        }
    }
}
