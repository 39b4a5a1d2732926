//! ethnode's Rust extension: the hot, stateful pieces that gain from native code.
//!
//! Each submodule registers its classes and functions here; every one of them has a
//! pure-Python twin in `ethnode/` with the same API, bytes and errors.

use pyo3::prelude::*;

mod buffers;
mod discv5;
mod ecies;
mod evm;
mod frame;
mod handshake;
mod keccak;
mod knowncache;
mod secp;
mod snapwalk;

/// The crate version, so `ethnode-fast version` can tell a stale build from a fresh one.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _rust(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(version, m)?)?;
    ecies::register(m)?;
    discv5::register(m)?;
    evm::register(m)?;
    frame::register(m)?;
    handshake::register(m)?;
    keccak::register(m)?;
    knowncache::register(m)?;
    snapwalk::register(m)?;
    Ok(())
}
