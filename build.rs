//! Build facts for `dlms-bridge --version`: the commit and the target triple. No dependency;
//! a build outside a git checkout says "unknown".
#![forbid(unsafe_code)]

fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=DLMS_BRIDGE_COMMIT={commit}");
    println!(
        "cargo:rustc-env=DLMS_BRIDGE_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
