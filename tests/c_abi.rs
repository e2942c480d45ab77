//! Compiles every C test program in tests/c with the system C compiler (found by the `cc`
//! crate), links it against the libdaskr.so this build produced, and runs it: each program
//! exits 0 only if all its checks passed.
//!
//! DASKR_C_CHECK=valgrind runs each program under valgrind (memory errors and definite leaks
//! fail); DASKR_C_CHECK=asan builds them with AddressSanitizer/LeakSanitizer instead (the
//! library uninstrumented: `make test-asan` instruments it too). DASKR_C_ONLY=name runs one.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn lib_dir() -> PathBuf {
    // target/<profile>/deps/c_abi-<hash> -> target/<profile>
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

#[test]
fn c_programs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = lib_dir();
    // `cargo test` links tests against the rlib only; build the cdylib the C programs use.
    let built = Command::new(env!("CARGO"))
        .args(["build", "--lib", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .args(if lib.ends_with("release") {
            &["--release"][..]
        } else {
            &[][..]
        })
        .status()
        .expect("cargo runs");
    assert!(built.success(), "cargo build --lib failed");
    assert!(
        lib.join("libdaskr.so").exists(),
        "libdaskr.so not built in {}",
        lib.display()
    );
    let out_dir = lib.join("c-tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let check = std::env::var("DASKR_C_CHECK").unwrap_or_default();
    // DASKR_C_ONLY=name runs that program alone (`make fuzz` runs fuzz_api longer).
    let only = std::env::var("DASKR_C_ONLY").unwrap_or_default();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(root.join("tests/c"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .filter(|p| only.is_empty() || p.file_stem().is_some_and(|s| s == only.as_str()))
        .collect();
    sources.sort();
    assert!(!sources.is_empty());
    let mut failed = Vec::new();
    for src in &sources {
        let name = src.file_stem().unwrap().to_string_lossy().to_string();
        let exe = out_dir.join(&name);
        let mut cmd = common::c_compiler();
        cmd.arg("-pthread")
            .arg(src)
            .arg("-o")
            .arg(&exe)
            .arg(format!("-L{}", lib.display()))
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-ldaskr");
        if check == "asan" {
            cmd.arg("-fsanitize=address").arg("-fno-omit-frame-pointer");
        }
        let status = cmd.status().expect("C compiler runs");
        assert!(status.success(), "compiling {} failed", src.display());

        let mut run = if check == "valgrind" {
            let mut v = Command::new("valgrind");
            v.args([
                "--quiet",
                // Workers the processes scheduler forks run under valgrind too; tests/c/processes.c
                // crashes them on purpose, which is not this program's error to report.
                "--child-silent-after-fork=yes",
                "--error-exitcode=99",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect",
                "--show-leak-kinds=definite,indirect",
            ])
            .arg(&exe);
            v
        } else {
            Command::new(&exe)
        };
        if check == "asan" {
            run.env("ASAN_OPTIONS", "detect_leaks=1");
        }
        let output = run.output().expect("C test program runs");
        print!("{}", String::from_utf8_lossy(&output.stdout));
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            failed.push(format!("{name} ({})", output.status));
        }
    }
    assert!(failed.is_empty(), "C test programs failed: {failed:?}");
}
