//! What the in-process benchmarks share.

/// The program of `services` services, as bench/gen_services.py writes it.
pub fn generate(services: usize) -> String {
    let output = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/bench/gen_services.py"
        ))
        .arg(services.to_string())
        .output()
        .expect("python3 runs bench/gen_services.py");
    assert!(
        output.status.success(),
        "bench/gen_services.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
