//! Records the locked revm and alloy-evm versions, so `ethnode-fast version` names what was built.

use std::fs;

fn locked(lock: &str, name: &str) -> String {
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.find(&needle)
        .map(|i| {
            let rest = &lock[i + needle.len()..];
            rest[..rest.find('"').unwrap_or(0)].to_string()
        })
        .unwrap_or_else(|| "?".into())
}

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = fs::read_to_string("Cargo.lock").unwrap_or_default();
    println!("cargo:rustc-env=ETHNODE_REVM_VERSION={}", locked(&lock, "revm"));
    println!("cargo:rustc-env=ETHNODE_ALLOY_EVM_VERSION={}", locked(&lock, "alloy-evm"));
}
