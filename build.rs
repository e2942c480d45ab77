// Tells the C test runner (tests/c_abi.rs) which target the `cc` crate compiles for, names the
// shared library (its SONAME), and makes the `daskr` command a host for plugins (see
// `c_abi_exports` below).
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!(
        "cargo:rustc-env=DASKR_TARGET={}",
        std::env::var("TARGET").expect("cargo sets TARGET")
    );
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os.ends_with("bsd") {
        soname();
        c_abi_exports();
    } else {
        // Elsewhere (no ELF linker) the command is not a plugin host; the table is empty.
        write_table(&[]);
    }
}

/// The C ABI version (`DASKR_ABI_VERSION` in src/abi.rs, the number plugins are checked
/// against) is the SONAME's number: it changes exactly when the C ABI breaks. The file that
/// carries it is libdaskr.so.<abi>.<crate version> (README, "Installing and versions").
fn soname() {
    println!("cargo:rerun-if-changed=src/abi.rs");
    let abi = std::fs::read_to_string("src/abi.rs").expect("src/abi.rs is readable");
    let abi = abi
        .lines()
        .find_map(|l| l.strip_prefix("pub const DASKR_ABI_VERSION: u32 = "))
        .and_then(|rest| rest.strip_suffix(';'))
        .expect("src/abi.rs defines `pub const DASKR_ABI_VERSION: u32 = N;` on one line");
    let soname = format!("libdaskr.so.{abi}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    // A program linked with target/<profile>/libdaskr.so asks for the SONAME at run time; the
    // link beside it lets the in-tree programs (the C tests, examples, the Go package, the
    // benchmarks) run from the build as they would from an installed prefix. OUT_DIR lies
    // under target/[<triple>/]<profile>/build/ (daskr-<hash>/out for stable cargo, one level
    // more for nightly's build-dir layout): the profile folder is the parent of `build`.
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let profile_dir = Path::new(&out)
        .ancestors()
        .find(|p| p.file_name() == Some(std::ffi::OsStr::new("build")))
        .and_then(Path::parent);
    if let Some(profile_dir) = profile_dir {
        uninstalled_pc(profile_dir);
        let link = profile_dir.join(&soname);
        if std::fs::read_link(&link).is_err() {
            let _ = std::fs::remove_file(&link);
            #[cfg(unix)]
            std::os::unix::fs::symlink("libdaskr.so", &link).expect("target/<profile> is writable");
        }
    }
}

/// `pkg-config daskr` for the build itself: target/<profile>/pkgconfig/daskr-uninstalled.pc
/// (pkg-config prefers a `NAME-uninstalled.pc` over `NAME.pc` in the same folder) points at
/// this checkout's include/ and this profile's library. The Go package links through
/// `#cgo pkg-config: daskr`, so from a checkout `PKG_CONFIG_PATH=target/release/pkgconfig`
/// is all it needs, as `<prefix>/lib/pkgconfig` is from an installed prefix.
fn uninstalled_pc(profile_dir: &Path) {
    let root = env!("CARGO_MANIFEST_DIR");
    let lib = profile_dir.display();
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let pc = format!(
        "# Written by build.rs: libdaskr as built in this checkout, not installed.\n\
         Name: daskr\n\
         Description: Dask-style task-graph schedulers, native (uninstalled build)\n\
         Version: {version}\n\
         Cflags: -I{root}/include\n\
         Libs: -L{lib} -Wl,-rpath,{lib} -ldaskr\n\
         Libs.private: -lpthread -ldl -lm\n"
    );
    let dir = profile_dir.join("pkgconfig");
    let path = dir.join("daskr-uninstalled.pc");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(pc.as_str()) {
        std::fs::create_dir_all(&dir).expect("target/<profile> is writable");
        std::fs::write(&path, pc).expect("target/<profile>/pkgconfig is writable");
    }
}

/// Plugins are built without linking libdaskr: they take the `daskr_*` functions from the
/// process that loads them. For the `daskr` command (and the integration tests that load
/// plugins in-process) to be such a process, its binary must
///  - keep every C ABI function: the linker drops code nothing refers to, so
///    $OUT_DIR/c_abi_symbols.rs (`include!`d by the binary) refers to each function the
///    header declares from a `#[used]` static;
///  - export exactly those: the dynamic list `daskr.dynlist` (`daskr_*`) puts them, and
///    nothing else, in the dynamic symbol table (`-rdynamic` exported ~900 Rust symbols).
///
/// The cdylib needs neither: rustc keeps and exports exactly its `#[no_mangle]` functions
/// with its own version script (a second one cannot be combined with it); tests/exports.rs
/// checks both files export `daskr_*` only, and every function of the header.
fn c_abi_exports() {
    let dynlist = Path::new(env!("CARGO_MANIFEST_DIR")).join("daskr.dynlist");
    println!("cargo:rerun-if-changed={}", dynlist.display());
    let arg = format!("-Wl,--dynamic-list={}", dynlist.display());
    println!("cargo:rustc-link-arg-bins={arg}");
    println!("cargo:rustc-link-arg-tests={arg}");

    // The header is the C ABI's list of functions (generated by cbindgen from src/ffi; the
    // header test fails when it is stale).
    println!("cargo:rerun-if-changed=include/daskr.h");
    let header = std::fs::read_to_string("include/daskr.h").expect("include/daskr.h is readable");
    let mut names = Vec::new();
    for line in header.lines() {
        // Declarations start at column 0; comments are indented (` * ...`) or start with `/`.
        if line.starts_with([' ', '/', '#', '}']) || line.starts_with("typedef") {
            continue;
        }
        let Some(open) = line.find('(') else { continue };
        let name = line[..open].rsplit([' ', '*']).next().unwrap_or("");
        if name.starts_with("daskr_") {
            names.push(name.to_string());
        }
    }
    assert!(
        names.len() > 50,
        "found too few functions in include/daskr.h"
    );
    write_table(&names);
}

fn write_table(names: &[String]) {
    // In a module of its own so that the declarations clash with no name of the includer.
    let mut out = String::from(
        "/// Every C ABI function, so the linker keeps them all in the binary.\n\
         mod c_abi_exports {\n\
         #[allow(dead_code)]\n\
         struct CAbi([unsafe extern \"C\" fn(); N_C_ABI]);\n",
    );
    let _ = writeln!(out, "const N_C_ABI: usize = {};", names.len());
    // Declared with no arguments: only their addresses are taken, never called from here.
    out.push_str("extern \"C\" {\n");
    for n in names {
        let _ = writeln!(out, "    fn {n}();");
    }
    out.push_str("}\n#[used]\nstatic C_ABI: CAbi = CAbi([\n");
    for n in names {
        let _ = writeln!(out, "    {n},");
    }
    out.push_str("]);\n}\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("c_abi_symbols.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
