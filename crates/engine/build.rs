//! Finds ISA-L (Intel's igzip library, Debian's libisal-dev) for gzip
//! captures: where its header compiles, the binary can decompress gzip
//! with it (`cfg(tcpshut_isal)`, `wire/isal.rs`; the library is loaded at
//! run time, where it is installed); elsewhere the build goes on with
//! flate2's zlib-rs only (its decompression takes about a quarter
//! longer), and says so.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tcpshut_isal)");
    println!("cargo::rerun-if-changed=csrc/isal_gzip.c");
    println!("cargo::rerun-if-env-changed=TCPSHUT_NO_ISAL");
    if std::env::var_os("TCPSHUT_NO_ISAL").is_some() {
        println!(
            "cargo::warning=TCPSHUT_NO_ISAL is set: gzip captures are decompressed with zlib-rs"
        );
        return;
    }
    let found = cc::Build::new()
        .file("csrc/isal_gzip.c")
        .cargo_warnings(false)
        .try_compile("tcpshut_isal_gzip")
        .is_ok();
    if found {
        println!("cargo::rustc-link-lib=dl");
        println!("cargo::rustc-cfg=tcpshut_isal");
    } else {
        println!(
            "cargo::warning=ISA-L not found (<isa-l/igzip_lib.h>; Debian: libisal-dev, \
             which scripts/install-deps installs): gzip captures are decompressed with \
             zlib-rs, which takes about a quarter longer. After installing it: \
             cargo clean -p tcpshut-engine"
        );
    }
}
