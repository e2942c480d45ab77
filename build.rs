// Tells the C test runner (tests/c_abi.rs) which target the `cc` crate compiles for, and makes
// the `daskr` command a host for plugins (see `c_abi_symbols` below).
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!(
        "cargo:rustc-env=DASKR_TARGET={}",
        std::env::var("TARGET").expect("cargo sets TARGET")
    );
    println!("cargo:rerun-if-changed=build.rs");
    c_abi_symbols();
}

/// Plugins are built without linking libdaskr: they take the `daskr_*` functions from the
/// process that loads them. For the `daskr` command to be such a process, its binary must keep
/// every C ABI function (a `#[used]` static referring to each, written here from the
/// `#[no_mangle]` functions in src/ffi, into $OUT_DIR/c_abi_symbols.rs for `include!`) and
/// export them (`-rdynamic`).
fn c_abi_symbols() {
    println!("cargo:rerun-if-changed=src/ffi");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "windows" {
        println!("cargo:rustc-link-arg-bins=-rdynamic");
        // The integration tests that load plugins in-process include the same list.
        println!("cargo:rustc-link-arg-tests=-rdynamic");
    }
    let mut names = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir("src/ffi")
        .expect("src/ffi exists")
        .map(|e| e.expect("src/ffi is readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let module = if stem == "mod" {
            "daskr::ffi".to_string()
        } else {
            format!("daskr::ffi::{stem}")
        };
        let text = std::fs::read_to_string(&file).expect("src/ffi files are UTF-8");
        let mut after_no_mangle = false;
        for line in text.lines() {
            let line = line.trim();
            if line == "#[no_mangle]" || line == "#[unsafe(no_mangle)]" {
                after_no_mangle = true;
                continue;
            }
            if after_no_mangle {
                if let Some(rest) = line.split("extern \"C\" fn ").nth(1) {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    names.push(format!("{module}::{name}"));
                }
                after_no_mangle = line.starts_with("#[");
            }
        }
    }
    let mut out = String::from(
        "/// Every C ABI function, so the linker keeps them all in the binary.\n\
         #[allow(dead_code)]\n\
         struct CAbi([*const (); N_C_ABI]);\n\
         // SAFETY: only addresses, never dereferenced.\n\
         unsafe impl Sync for CAbi {}\n",
    );
    let _ = writeln!(out, "const N_C_ABI: usize = {};", names.len());
    out.push_str("#[used]\nstatic C_ABI: CAbi = CAbi([\n");
    for n in &names {
        let _ = writeln!(out, "    {n} as *const (),");
    }
    out.push_str("]);\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("c_abi_symbols.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
