//! The curve-heavy steps of the RLPx handshake (devp2p rlpx.md "Initial Handshake").
//!
//! Twin of `ethnode/p2p/rlpx/_handshake_crypto_pure.py`; `ethnode/p2p/rlpx/handshake.py`
//! keeps the state machine, the packet formats and RLP, and calls one of these per step:
//! each is one or two libsecp256k1 operations (20-35 µs) plus a few hashes, so the
//! Python around them is what they save. Both twins are deterministic: signatures use
//! RFC 6979 nonces, randomness is passed in.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sha3::{Digest, Keccak256};

use crate::buffers::with_bytes;
use crate::ecies::{node_id, node_key, secret_key};
use crate::secp::Point;

pyo3::import_exception!(ethnode.crypto.errors, InvalidSignatureError);

const NONCE_LEN: usize = 32;
const SIGNATURE_LEN: usize = 65;
const RECOVERY_ID_MAX: u8 = 1; // geth crypto.Sign produces v in {0, 1}

fn nonce(obj: &Bound<'_, PyAny>) -> PyResult<[u8; NONCE_LEN]> {
    with_bytes(obj, |b| {
        <[u8; NONCE_LEN]>::try_from(b)
            .map_err(|_| PyValueError::new_err(format!("nonce must be {NONCE_LEN} bytes")))
    })
}

/// ecdh(static, remote)[:32] ^ nonce: what the initiator's ephemeral key signs.
fn signed_value(
    static_secret: &Bound<'_, PyAny>,
    remote_node_id: &Bound<'_, PyAny>,
    nonce: [u8; 32],
) -> PyResult<[u8; 32]> {
    let key = with_bytes(static_secret, secret_key)?;
    let remote = with_bytes(remote_node_id, node_key)?;
    let mut value = key.ecdh_x(&remote);
    value.iter_mut().zip(nonce).for_each(|(v, n)| *v ^= n);
    Ok(value)
}

/// The auth signature: sign(ephemeral, ecdh(static, remote static) ^ initiator nonce), r || s || v.
#[pyfunction]
fn rlpx_auth_signature<'py>(
    py: Python<'py>,
    static_secret: &Bound<'py, PyAny>,
    remote_node_id: &Bound<'py, PyAny>,
    ephemeral_secret: &Bound<'py, PyAny>,
    initiator_nonce: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let value = signed_value(static_secret, remote_node_id, nonce(initiator_nonce)?)?;
    let ephemeral = with_bytes(ephemeral_secret, secret_key)?;
    Ok(PyBytes::new(py, &ephemeral.sign_recoverable(&value)))
}

/// The initiator's ephemeral node id, recovered from the auth signature by the recipient.
#[pyfunction]
fn rlpx_auth_recover<'py>(
    py: Python<'py>,
    static_secret: &Bound<'py, PyAny>,
    remote_node_id: &Bound<'py, PyAny>,
    initiator_nonce: &Bound<'py, PyAny>,
    signature: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let value = signed_value(static_secret, remote_node_id, nonce(initiator_nonce)?)?;
    let recovered = with_bytes(signature, |sig| {
        if sig.len() != SIGNATURE_LEN {
            return Err(InvalidSignatureError::new_err(format!(
                "a signature is {SIGNATURE_LEN} bytes, got {}",
                sig.len()
            )));
        }
        if sig[64] > RECOVERY_ID_MAX {
            return Err(InvalidSignatureError::new_err(format!(
                "invalid recovery id {}",
                sig[64]
            )));
        }
        let compact: &[u8; 64] = sig[..64].try_into().expect("64 bytes");
        Point::recover(&value, compact, sig[64]).ok_or_else(|| {
            InvalidSignatureError::new_err("no public key can be recovered from the signature")
        })
    })?;
    Ok(PyBytes::new(py, &node_id(&recovered)))
}

fn keccak(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Keccak256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// (aes-secret, mac-secret) from the ephemeral ECDH and both nonces (devp2p rlpx.md).
#[pyfunction]
fn rlpx_derive<'py>(
    py: Python<'py>,
    ephemeral_secret: &Bound<'py, PyAny>,
    remote_ephemeral_id: &Bound<'py, PyAny>,
    initiator_nonce: &Bound<'py, PyAny>,
    recipient_nonce: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let initiator_nonce = nonce(initiator_nonce)?;
    let recipient_nonce = nonce(recipient_nonce)?;
    let key = with_bytes(ephemeral_secret, secret_key)?;
    let remote = with_bytes(remote_ephemeral_id, node_key)?;
    let ephemeral_shared = key.ecdh_x(&remote);
    let shared = keccak(&[
        &ephemeral_shared,
        &keccak(&[&recipient_nonce, &initiator_nonce]),
    ]);
    let aes = keccak(&[&ephemeral_shared, &shared]);
    let mac = keccak(&[&ephemeral_shared, &aes]);
    Ok((PyBytes::new(py, &aes), PyBytes::new(py, &mac)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(rlpx_auth_signature, m)?)?;
    m.add_function(wrap_pyfunction!(rlpx_auth_recover, m)?)?;
    m.add_function(wrap_pyfunction!(rlpx_derive, m)?)?;
    Ok(())
}
