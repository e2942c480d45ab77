// Tells the C test runner (tests/c_abi.rs) which target the `cc` crate compiles for.
fn main() {
    println!("cargo:rustc-env=DASKR_TARGET={}", std::env::var("TARGET").expect("cargo sets TARGET"));
    println!("cargo:rerun-if-changed=build.rs");
}
