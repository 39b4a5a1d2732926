//! devp2p's ECIES (geth crypto/ecies, ECIES_AES128_SHA256) and the secp256k1 helpers the
//! RLPx handshake shares with it.
//!
//! Twin of `ethnode/crypto/_ecies_pure.py`: same functions, bytes and errors. One call per
//! message does all of it: the ephemeral public key, ECDH, the concat KDF (SHA-256),
//! AES-128-CTR and HMAC-SHA256. The curve operations are libsecp256k1's (see `secp.rs`),
//! the same calls the pure twin makes through coincurve, so the curve work costs about
//! the same either way; what this saves is the Python around it (~8 µs a message, a third
//! of it creating a `cryptography` cipher context), which is what keeps a handshake from
//! its libsecp256k1 bound.
//!
//! Randomness is always passed in (the ephemeral secret and IV come from `os.urandom` on
//! the Python side), so both twins are deterministic functions of their arguments.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{KeyIvInit, StreamCipher};
use aes::Aes128;
use hmac::{Hmac, Mac};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sha2::{Digest, Sha256};

use crate::buffers::with_bytes;
use crate::secp::{self, Point, Secret};

pyo3::import_exception!(ethnode.crypto.errors, ECIESDecryptError);
pyo3::import_exception!(ethnode.crypto.errors, InvalidKeyError);

type Aes128Ctr = ctr::Ctr128BE<Aes128>;
type HmacSha256 = Hmac<Sha256>;

pub(crate) const NODE_ID_LEN: usize = 64;
const KEY_LEN: usize = 16;
const IV_LEN: usize = 16;
const TAG_LEN: usize = 32;
const PUBKEY_LEN: usize = 1 + NODE_ID_LEN;
/// 0x04 || ephemeral public key || iv || tag: 113 bytes, geth rlpx eciesOverhead.
const OVERHEAD: usize = PUBKEY_LEN + IV_LEN + TAG_LEN;

/// A private key from 32 bytes, with keys.PrivateKey's errors.
pub(crate) fn secret_key(secret: &[u8]) -> PyResult<Secret> {
    if secret.len() != secp::SECRET_LEN {
        return Err(InvalidKeyError::new_err(format!(
            "a private key is {} bytes, got {}",
            secp::SECRET_LEN,
            secret.len()
        )));
    }
    Secret::from_slice(secret).ok_or_else(|| {
        InvalidKeyError::new_err("private key is zero or not below the secp256k1 group order")
    })
}

/// A public key from a 64-byte node id, with keys.PublicKey's errors.
pub(crate) fn node_key(node_id: &[u8]) -> PyResult<Point> {
    if node_id.len() != NODE_ID_LEN {
        return Err(InvalidKeyError::new_err(format!(
            "a node id is {NODE_ID_LEN} bytes, got {}",
            node_id.len()
        )));
    }
    let mut encoded = [0u8; PUBKEY_LEN];
    encoded[0] = 0x04;
    encoded[1..].copy_from_slice(node_id);
    Point::parse(&encoded)
        .ok_or_else(|| InvalidKeyError::new_err("public key is not a point on secp256k1"))
}

/// The 64-byte node id (uncompressed key without its 0x04) of a public key.
pub(crate) fn node_id(key: &Point) -> [u8; NODE_ID_LEN] {
    let mut out = [0u8; NODE_ID_LEN];
    out.copy_from_slice(&key.serialize_uncompressed()[1..]);
    out
}

/// (AES-128 key, HMAC key): concat KDF H(00000001 || x) split in halves, the MAC half hashed again.
fn derive_keys(shared_x: &[u8; 32]) -> ([u8; KEY_LEN], [u8; 32]) {
    let material = Sha256::new()
        .chain_update(1u32.to_be_bytes())
        .chain_update(shared_x)
        .finalize();
    let mut enc_key = [0u8; KEY_LEN];
    enc_key.copy_from_slice(&material[..KEY_LEN]);
    (enc_key, Sha256::digest(&material[KEY_LEN..]).into())
}

fn tag(mac_key: &[u8; 32], iv_and_ciphertext: &[u8], shared_mac_data: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(mac_key).expect("HMAC takes any key length");
    mac.update(iv_and_ciphertext);
    mac.update(shared_mac_data);
    mac
}

/// 0x04 || ephemeral pubkey || iv || AES-128-CTR(plaintext) || HMAC-SHA256(iv || ct || shared_mac_data).
#[pyfunction]
fn ecies_encrypt<'py>(
    py: Python<'py>,
    remote_node_id: &Bound<'py, PyAny>,
    plaintext: &Bound<'py, PyAny>,
    shared_mac_data: &Bound<'py, PyAny>,
    ephemeral_secret: &Bound<'py, PyAny>,
    iv: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let remote = with_bytes(remote_node_id, node_key)?;
    let ephemeral = with_bytes(ephemeral_secret, secret_key)?;
    let iv = with_bytes(iv, |iv| {
        <[u8; IV_LEN]>::try_from(iv)
            .map_err(|_| PyValueError::new_err(format!("iv must be {IV_LEN} bytes")))
    })?;
    let ephemeral_pub = ephemeral.public().serialize_uncompressed();
    let (enc_key, mac_key) = derive_keys(&ephemeral.ecdh_x(&remote));
    with_bytes(plaintext, |plaintext| {
        with_bytes(shared_mac_data, |shared| {
            let body_end = PUBKEY_LEN + IV_LEN + plaintext.len();
            PyBytes::new_with(py, body_end + TAG_LEN, |out| {
                out[..PUBKEY_LEN].copy_from_slice(&ephemeral_pub);
                let (body, out_tag) = out[PUBKEY_LEN..].split_at_mut(IV_LEN + plaintext.len());
                body[..IV_LEN].copy_from_slice(&iv);
                body[IV_LEN..].copy_from_slice(plaintext);
                let mut cipher = Aes128Ctr::new(
                    GenericArray::from_slice(&enc_key),
                    GenericArray::from_slice(&iv),
                );
                cipher.apply_keystream(&mut body[IV_LEN..]);
                out_tag.copy_from_slice(&tag(&mac_key, body, shared).finalize().into_bytes());
                Ok(())
            })
        })
    })
}

/// Open a message sealed to `secret`; the tag is checked (constant time) before decrypting.
#[pyfunction]
fn ecies_decrypt<'py>(
    py: Python<'py>,
    secret: &Bound<'py, PyAny>,
    message: &Bound<'py, PyAny>,
    shared_mac_data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = with_bytes(secret, secret_key)?;
    with_bytes(message, |message| {
        if message.len() < OVERHEAD {
            return Err(ECIESDecryptError::new_err(format!(
                "ECIES message too short ({} < {OVERHEAD} bytes)",
                message.len()
            )));
        }
        if message[0] != 0x04 {
            return Err(ECIESDecryptError::new_err(
                "ECIES message does not start with an uncompressed public key",
            ));
        }
        let ephemeral = Point::parse(&message[..PUBKEY_LEN])
            .ok_or_else(|| ECIESDecryptError::new_err("ECIES ephemeral public key is invalid"))?;
        let (enc_key, mac_key) = derive_keys(&key.ecdh_x(&ephemeral));
        let (body, received) = message[PUBKEY_LEN..].split_at(message.len() - PUBKEY_LEN - TAG_LEN);
        with_bytes(shared_mac_data, |shared| {
            tag(&mac_key, body, shared)
                .verify_slice(received)
                .map_err(|_| {
                    ECIESDecryptError::new_err(
                        "ECIES message authentication failed (bad MAC or wrong key)",
                    )
                })
        })?;
        let (iv, ciphertext) = body.split_at(IV_LEN);
        PyBytes::new_with(py, ciphertext.len(), |out| {
            let mut cipher = Aes128Ctr::new(
                GenericArray::from_slice(&enc_key),
                GenericArray::from_slice(iv),
            );
            cipher
                .apply_keystream_b2b(ciphertext, out)
                .expect("same length");
            Ok(())
        })
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let seed: [u8; 32] = m
        .py()
        .import("os")?
        .call_method1("urandom", (32,))?
        .extract()?;
    secp::init(&seed);
    m.add_function(wrap_pyfunction!(ecies_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(ecies_decrypt, m)?)?;
    Ok(())
}
