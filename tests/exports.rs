//! What libdaskr.so and the `daskr` command export: exactly the C ABI. Every function in the
//! dynamic symbol table starts with `daskr_` (a plugin host must not offer its Rust
//! internals, and a library must not clash with its users' symbols), every function the
//! header declares is there, and the library's SONAME carries the C ABI version.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use daskr::abi::DASKR_ABI_VERSION;

fn profile_dir() -> PathBuf {
    // target/<profile>/deps/exports-<hash> -> target/<profile>
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// libdaskr.so, built as the C programs use it (`cargo test` builds the rlib only).
fn cdylib() -> PathBuf {
    let dir = profile_dir();
    let built = Command::new(env!("CARGO"))
        .args(["build", "--lib", "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .args(if dir.ends_with("release") {
            &["--release"][..]
        } else {
            &[][..]
        })
        .status()
        .expect("cargo runs");
    assert!(built.success(), "cargo build --lib failed");
    dir.join("libdaskr.so")
}

/// The names `nm -D --defined-only` lists for `file`.
fn exported(file: &Path) -> BTreeSet<String> {
    let out = Command::new("nm")
        .args(["-D", "--defined-only", "--format=posix"])
        .arg(file)
        .output()
        .expect("nm (binutils) runs");
    assert!(out.status.success(), "nm {}: {:?}", file.display(), out);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        // Symbol versions (`name@VERSION`) do not occur here; strip them if they ever do.
        .map(|n| n.split('@').next().unwrap().to_string())
        .collect()
}

/// The functions include/daskr.h declares: declarations start at column 0.
fn header_functions() -> BTreeSet<String> {
    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/daskr.h"))
            .unwrap();
    let names: BTreeSet<String> = header
        .lines()
        .filter(|l| !l.starts_with([' ', '/', '#', '}']) && !l.starts_with("typedef"))
        .filter_map(|l| l.split_once('(').map(|(before, _)| before))
        .filter_map(|before| before.rsplit([' ', '*']).next())
        .map(str::to_string)
        .collect();
    assert!(names.len() > 50, "found too few functions: {names:?}");
    names
}

fn check(file: &Path) {
    let exports = exported(file);
    let foreign: Vec<_> = exports
        .iter()
        .filter(|n| !n.starts_with("daskr_"))
        .collect();
    assert!(
        foreign.is_empty(),
        "{} exports {} symbols that are not daskr_*: {:?}",
        file.display(),
        foreign.len(),
        &foreign[..foreign.len().min(20)]
    );
    let missing: Vec<_> = header_functions().difference(&exports).cloned().collect();
    assert!(
        missing.is_empty(),
        "{} does not export these functions of include/daskr.h: {missing:?}",
        file.display()
    );
}

#[test]
fn the_library_exports_the_c_abi_only() {
    check(&cdylib());
}

#[test]
fn the_daskr_command_exports_the_c_abi_only() {
    check(Path::new(env!("CARGO_BIN_EXE_daskr")));
}

#[test]
fn the_library_is_named_by_the_abi_version() {
    let lib = cdylib();
    let out = Command::new("readelf")
        .arg("-d")
        .arg(&lib)
        .output()
        .unwrap();
    let dynamic = String::from_utf8(out.stdout).unwrap();
    let want = format!("Library soname: [libdaskr.so.{DASKR_ABI_VERSION}]");
    assert!(dynamic.contains(&want), "{}: {dynamic}", lib.display());
    // The in-tree link that programs linked against the build load (build.rs).
    let link = lib.with_file_name(format!("libdaskr.so.{DASKR_ABI_VERSION}"));
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("libdaskr.so"));
}
