// Links libseccomp (Debian's libseccomp-dev): native/src/seccomp/ffi.rs declares the few C
// functions Burrow calls to compile a container's seccomp profile into BPF before the clone.
fn main() {
    println!("cargo:rustc-link-lib=dylib=seccomp");
    println!("cargo:rerun-if-changed=build.rs");
}
