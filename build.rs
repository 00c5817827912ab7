//! Compiles the provider catalog (`providers/*.toml`) into the binary: a
//! list of every profile's name and text, so adding a provider is adding
//! its file.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new("providers");
    println!("cargo::rerun-if-changed=providers");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the providers/ directory")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "toml").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    let mut out = String::from("&[\n");
    for name in &names {
        println!("cargo::rerun-if-changed=providers/{name}.toml");
        writeln!(
            out,
            "    ({name:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/providers/{name}.toml\"))),"
        )
        .unwrap();
    }
    out.push(']');
    let target = Path::new(&std::env::var("OUT_DIR").unwrap()).join("providers.rs");
    std::fs::write(target, out).unwrap();
}
