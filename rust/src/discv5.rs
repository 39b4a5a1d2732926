//! The per-packet crypto of discv5 (devp2p discv5-wire): header masking, AES-128-GCM
//! message sealing, and the ECDH of the handshake.
//!
//! Twin of `ethnode/p2p/discover/v5wire/_crypto_pure.py`: same functions, bytes and
//! results. Only the crypto lives here; packet layout, sessions and handshakes stay in
//! Python, so the surface is five functions on byte strings. Failures that a peer can
//! cause (a bad tag, a point off the curve, a short packet) return None instead of
//! raising, because the caller drops the packet either way and an exception per bad
//! packet would cost more than the check.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{KeyIvInit, StreamCipher};
use aes::Aes128;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes128Gcm;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::ecies::secret_key;
use crate::secp::Point;

type Aes128Ctr = ctr::Ctr128BE<Aes128>;

const KEY_LEN: usize = 16;
const IV_LEN: usize = 16; // masking IV
const NONCE_LEN: usize = 12; // GCM nonce
/// masking IV, then protocol-id (6) || version (2) || flag (1) || nonce (12) || authdata-size (2)
const STATIC_PACKET_LEN: usize = IV_LEN + 23;

fn key16(key: &[u8], what: &str) -> PyResult<[u8; KEY_LEN]> {
    key.get(..KEY_LEN)
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| PyValueError::new_err(format!("{what} must be at least {KEY_LEN} bytes")))
}

fn nonce12(nonce: &[u8]) -> PyResult<&[u8]> {
    if nonce.len() != NONCE_LEN {
        return Err(PyValueError::new_err(format!(
            "nonce must be {NONCE_LEN} bytes"
        )));
    }
    Ok(nonce)
}

fn ctr(dest_id: &[u8; KEY_LEN], iv: &[u8]) -> Aes128Ctr {
    Aes128Ctr::new(
        GenericArray::from_slice(dest_id),
        GenericArray::from_slice(iv),
    )
}

/// AES-128-CTR keyed by the first 16 bytes of `dest_id`: masks (and unmasks) a header.
#[pyfunction]
fn v5_mask<'py>(
    py: Python<'py>,
    dest_id: &[u8],
    iv: &[u8],
    data: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let key = key16(dest_id, "dest_id")?;
    if iv.len() != IV_LEN {
        return Err(PyValueError::new_err(format!("iv must be {IV_LEN} bytes")));
    }
    let mut out = data.to_vec();
    ctr(&key, iv).apply_keystream(&mut out);
    Ok(PyBytes::new(py, &out))
}

/// The unmasked header of a received packet: masking IV || static header || authdata.
///
/// None when the packet cannot hold a static header. When the declared authdata size runs
/// past the end, only IV || static header comes back, so the caller sees the mismatch.
#[pyfunction]
fn v5_unmask_header<'py>(
    py: Python<'py>,
    local_id: &[u8],
    packet: &[u8],
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let key = key16(local_id, "local_id")?;
    if packet.len() < STATIC_PACKET_LEN {
        return Ok(None);
    }
    let mut cipher = ctr(&key, &packet[..IV_LEN]);
    let mut out = packet[..STATIC_PACKET_LEN].to_vec();
    cipher.apply_keystream(&mut out[IV_LEN..]);
    let auth_size = u16::from_be_bytes([out[IV_LEN + 21], out[IV_LEN + 22]]) as usize;
    if STATIC_PACKET_LEN + auth_size <= packet.len() {
        let start = out.len();
        out.extend_from_slice(&packet[STATIC_PACKET_LEN..STATIC_PACKET_LEN + auth_size]);
        cipher.apply_keystream(&mut out[start..]);
    }
    Ok(Some(PyBytes::new(py, &out)))
}

/// AES-128-GCM seal: ciphertext || 16-byte tag, `aad` authenticated (the unmasked header).
#[pyfunction]
fn v5_encrypt<'py>(
    py: Python<'py>,
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    if key.len() != KEY_LEN {
        return Err(PyValueError::new_err(format!(
            "key must be {KEY_LEN} bytes"
        )));
    }
    let cipher = Aes128Gcm::new(GenericArray::from_slice(key));
    let sealed = cipher
        .encrypt(
            GenericArray::from_slice(nonce12(nonce)?),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| PyValueError::new_err("AES-GCM encryption failed"))?;
    Ok(PyBytes::new(py, &sealed))
}

/// AES-128-GCM open; None when the tag does not verify (wrong key, tampered packet).
#[pyfunction]
fn v5_decrypt<'py>(
    py: Python<'py>,
    key: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    if key.len() != KEY_LEN {
        return Err(PyValueError::new_err(format!(
            "key must be {KEY_LEN} bytes"
        )));
    }
    let cipher = Aes128Gcm::new(GenericArray::from_slice(key));
    Ok(cipher
        .decrypt(
            GenericArray::from_slice(nonce12(nonce)?),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(|pt| PyBytes::new(py, &pt)))
}

/// The discv5 ECDH secret: the compressed point secret * pubkey (33 bytes, y parity kept).
///
/// `pubkey` is any SEC1 encoding; None when it is not a point on the curve.
#[pyfunction]
fn v5_ecdh<'py>(
    py: Python<'py>,
    secret: &[u8],
    pubkey: &[u8],
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let secret = secret_key(secret)?;
    Ok(Point::parse(pubkey).map(|p| PyBytes::new(py, &p.mul(&secret).serialize_compressed())))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(v5_mask, m)?)?;
    m.add_function(wrap_pyfunction!(v5_unmask_header, m)?)?;
    m.add_function(wrap_pyfunction!(v5_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(v5_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(v5_ecdh, m)?)?;
    Ok(())
}
