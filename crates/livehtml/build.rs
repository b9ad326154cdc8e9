//! Builds livehtml.js as the browser fetches it: its six parts joined, minified, compressed
//! with brotli and gzip, and named by a hash of its content, once per build (never per request,
//! and with nothing outside Cargo). The readable source stays in `client/`.

use std::io::Write;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// The parts in the order they run: each later one uses what the earlier ones define.
const PARTS: [&str; 6] = ["dom.js", "input.js", "commands.js", "upload.js", "http.js", "livehtml.js"];

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut source = String::new();
    for part in PARTS {
        let path = format!("client/{part}");
        println!("cargo::rerun-if-changed={path}");
        source.push_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")));
    }
    // minifier drops comments and spaces without renaming anything: the script keeps its
    // names, so an error in the browser console still reads as the source does.
    let minified = minifier::js::minify(&source).to_string();

    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(minified.as_bytes()).expect("gzip into memory");
    let gzip = gzip.finish().expect("gzip into memory");

    let mut brotli = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut minified.as_bytes(), &mut brotli, &params).expect("brotli into memory");

    let digest = Sha256::digest(minified.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();

    std::fs::write(out.join("livehtml.min.js"), &minified).expect("write OUT_DIR");
    std::fs::write(out.join("livehtml.min.js.gz"), gzip).expect("write OUT_DIR");
    std::fs::write(out.join("livehtml.min.js.br"), brotli).expect("write OUT_DIR");
    println!("cargo::rustc-env=LIVEHTML_CLIENT_HASH={hash}");
}
