//! The RLPx frame codec: one object per connection holding both directions' crypto state.
//!
//! Twin of `ethnode/p2p/rlpx/_frame_pure.py`; both follow geth `p2p/rlpx/rlpx.go`
//! (`WriteMsg`/`ReadMsg`, `updateMAC`) byte for byte and raise the same Python exception
//! classes, defined once in `ethnode.p2p.rlpx.frame_errors`.
//!
//! A frame is keccak-bound: AES-256 runs on AES-NI (picked at run time by the `aes`
//! crate), so what is left is three Keccak-f permutations per frame and direction plus
//! one per 136 bytes absorbed (~300 ns each portable, less with AVX-512; see
//! `keccak.rs`). The MACs are a sponge of our own over that permutation, so that taking
//! a digest copies 200 bytes of state and runs one permutation, nothing more. Frames are
//! built straight into the `bytes` object Python receives and decrypted straight into the
//! payload object returned, so no intermediate copy exists.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher, StreamCipherSeek};
use aes::Aes256;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::buffers::{bytes_filled, with_bytes};
use crate::keccak::{self, Sponge};
use pyo3::types::{PyBytes, PyTuple};

pyo3::import_exception!(ethnode.p2p.rlpx.frame_errors, FrameError);
pyo3::import_exception!(ethnode.p2p.rlpx.frame_errors, MACMismatchError);
pyo3::import_exception!(ethnode.p2p.rlpx.frame_errors, FrameTooLargeError);

/// geth: CTR mode over the whole 128-bit block as a big-endian counter (Go's cipher.NewCTR).
type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// Largest frame body (message code + payload) the 3-byte size field can carry; geth: maxUint24.
const MAX_FRAME_SIZE: usize = 0xFF_FFFF;
/// Header data rlp([capability-id=0, context-id=0]); geth: zeroHeader.
const HEADER_DATA: [u8; 3] = [0xC2, 0x80, 0x80];
const BLOCK: usize = 16;
const MAC_SIZE: usize = 16;
/// Encrypted header (16) plus its MAC (16): what a reader takes before each frame.
const HEADER_SIZE: usize = 32;
/// Above this many body bytes the keccak pass runs without the GIL (~150 µs at 430 MB/s);
/// below it, releasing and retaking the GIL would cost more than it frees.
const RELEASE_GIL_ABOVE: usize = 64 * 1024;

fn padded_len(size: usize) -> usize {
    size.div_ceil(BLOCK) * BLOCK
}

/// A running keccak MAC and its last digest.
///
/// Each MAC step needs the digest of the state the previous step left, so caching it
/// saves one of the four fixed Keccak-f permutations per frame and direction.
struct RunningMac {
    hash: Sponge,
    digest: Option<[u8; MAC_SIZE]>,
}

impl RunningMac {
    fn new(seed: &[u8]) -> Self {
        let mut hash = Sponge::new(keccak::best());
        hash.update(seed);
        RunningMac { hash, digest: None }
    }

    fn update(&mut self, data: &[u8]) {
        self.hash.update(data);
        self.digest = None;
    }

    /// The first 16 bytes of the digest, leaving the hash able to absorb more.
    fn digest16(&mut self) -> [u8; MAC_SIZE] {
        let hash = &self.hash;
        *self.digest.get_or_insert_with(|| hash.digest16())
    }

    /// geth updateMAC: mix AES(mac-secret, digest[:16]) ^ seed in; return the new digest[:16].
    fn update_mac(&mut self, cipher: &Aes256, seed: &[u8; MAC_SIZE]) -> [u8; MAC_SIZE] {
        let mut block = GenericArray::from(self.digest16());
        cipher.encrypt_block(&mut block);
        for (b, s) in block.iter_mut().zip(seed) {
            *b ^= s;
        }
        self.update(&block);
        self.digest16()
    }
}

/// Constant-time equality of two MACs, so a peer cannot probe them byte by byte.
fn macs_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// rlp(code) as geth writes it with rlp.EncodeToBytes(uint64): 0 -> 0x80, < 0x80 -> itself.
fn encode_code(code: u64) -> ([u8; 9], usize) {
    let mut out = [0u8; 9];
    if code == 0 {
        out[0] = 0x80;
        return (out, 1);
    }
    if code < 0x80 {
        out[0] = code as u8;
        return (out, 1);
    }
    let bytes = code.to_be_bytes();
    let skip = (code.leading_zeros() / 8) as usize;
    let n = 8 - skip;
    out[0] = 0x80 + n as u8;
    out[1..=n].copy_from_slice(&bytes[skip..]);
    (out, n + 1)
}

/// The canonical RLP uint64 at the start of `data` and its encoded length, with geth's
/// rlp.Decode(&uint64) rules: no leading zeros, no single byte below 0x80 in long form.
fn decode_code(data: &[u8]) -> Result<(u64, usize), &'static str> {
    let Some(&first) = data.first() else {
        return Err("frame has no message code");
    };
    match first {
        0x00 => Err("non-canonical message code (0x00)"),
        0x01..=0x7F => Ok((first as u64, 1)),
        0x80 => Ok((0, 1)),
        0x81..=0x88 => {
            let n = (first - 0x80) as usize;
            let Some(digits) = data.get(1..=n) else {
                return Err("message code runs past the frame");
            };
            if digits[0] == 0 {
                return Err("non-canonical message code (leading zero)");
            }
            if n == 1 && digits[0] < 0x80 {
                return Err("non-canonical message code (single byte in long form)");
            }
            let code = digits.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64);
            Ok((code, n + 1))
        }
        0x89..=0xBF => Err("message code does not fit in 64 bits"),
        _ => Err("message code is a list"),
    }
}

/// The sending half: its own CTR keystream and keccak MAC.
struct Egress {
    enc: Aes256Ctr,
    mac: RunningMac,
    mac_cipher: Aes256,
}

impl Egress {
    /// Write header || header-mac || frame-ciphertext || frame-mac into `out`, which is
    /// exactly HEADER_SIZE + padded body + MAC_SIZE long; every byte of it is written.
    fn seal(&mut self, ptype: &[u8], payload: &[u8], out: &mut [u8]) {
        let fsize = ptype.len() + payload.len();
        let (header, rest) = out.split_at_mut(HEADER_SIZE);
        let (body, frame_mac) = rest.split_at_mut(rest.len() - MAC_SIZE);

        header[..3].copy_from_slice(&(fsize as u32).to_be_bytes()[1..]);
        header[3..6].copy_from_slice(&HEADER_DATA);
        header[6..BLOCK].fill(0);
        let (head, head_mac) = header.split_at_mut(BLOCK);
        self.enc.apply_keystream(head);
        let seed: [u8; MAC_SIZE] = (&*head).try_into().expect("16-byte header");
        head_mac.copy_from_slice(&self.mac.update_mac(&self.mac_cipher, &seed));

        // Encrypt the payload straight from the caller's buffer into the frame (one pass);
        // the CTR stream runs on over code, payload and zero padding as one body.
        let (code_and_payload, padding) = body.split_at_mut(fsize);
        let (code, encrypted_payload) = code_and_payload.split_at_mut(ptype.len());
        code.copy_from_slice(ptype);
        self.enc.apply_keystream(code);
        self.enc
            .apply_keystream_b2b(payload, encrypted_payload)
            .expect("same length");
        padding.fill(0);
        self.enc.apply_keystream(padding);
        self.mac.update(body);
        let seed = self.mac.digest16();
        frame_mac.copy_from_slice(&self.mac.update_mac(&self.mac_cipher, &seed));
    }
}

/// The receiving half, plus the frame size announced by the last verified header.
struct Ingress {
    dec: Aes256Ctr,
    mac: RunningMac,
    mac_cipher: Aes256,
    pending: Option<usize>,
}

impl Ingress {
    /// Absorb the body ciphertext and compare the frame MAC; the GIL-free part of a read.
    fn check_body_mac(&mut self, ciphertext: &[u8], mac: &[u8]) -> bool {
        self.mac.update(ciphertext);
        let seed = self.mac.digest16();
        macs_equal(&self.mac.update_mac(&self.mac_cipher, &seed), mac)
    }
}

/// One RLPx connection's frame codec (see the module docs and the Python twin).
#[pyclass(module = "ethnode._rust", name = "FrameCodec")]
pub struct FrameCodec {
    egress: Egress,
    ingress: Ingress,
}

#[pymethods]
impl FrameCodec {
    #[new]
    fn new(
        aes_secret: &Bound<'_, PyAny>,
        mac_secret: &Bound<'_, PyAny>,
        egress_mac_seed: &Bound<'_, PyAny>,
        ingress_mac_seed: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let aes_key = with_bytes(aes_secret, |b| Ok(b.to_vec()))?;
        let mac_key = with_bytes(mac_secret, |b| Ok(b.to_vec()))?;
        if aes_key.len() != 32 || mac_key.len() != 32 {
            return Err(PyValueError::new_err(
                "aes_secret and mac_secret must be 32 bytes each",
            ));
        }
        let iv = [0u8; BLOCK];
        let enc = Aes256Ctr::new(
            GenericArray::from_slice(&aes_key),
            GenericArray::from_slice(&iv),
        );
        let mac_cipher = Aes256::new(GenericArray::from_slice(&mac_key));
        let egress_mac = with_bytes(egress_mac_seed, |b| Ok(RunningMac::new(b)))?;
        let ingress_mac = with_bytes(ingress_mac_seed, |b| Ok(RunningMac::new(b)))?;
        Ok(FrameCodec {
            egress: Egress {
                enc: enc.clone(),
                mac: egress_mac,
                mac_cipher: mac_cipher.clone(),
            },
            ingress: Ingress {
                dec: enc,
                mac: ingress_mac,
                mac_cipher,
                pending: None,
            },
        })
    }

    /// Encrypt and MAC one message; returns the whole frame ready for the socket.
    fn write<'py>(
        &mut self,
        py: Python<'py>,
        code: u64,
        payload: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (ptype, plen) = encode_code(code);
        let egress = &mut self.egress;
        with_bytes(payload, |data| {
            let fsize = plen + data.len();
            if fsize > MAX_FRAME_SIZE {
                return Err(FrameTooLargeError::new_err(format!(
                    "frame of {fsize} bytes exceeds the maximum of {MAX_FRAME_SIZE}"
                )));
            }
            let total = HEADER_SIZE + padded_len(fsize) + MAC_SIZE;
            let ptype = &ptype[..plen];
            bytes_filled(py, total, |out| {
                if fsize > RELEASE_GIL_ABOVE {
                    py.detach(|| egress.seal(ptype, data, out));
                } else {
                    egress.seal(ptype, data, out);
                }
                Ok(())
            })
        })
    }

    /// Verify and decrypt a 32-byte header; returns how many bytes read_body needs next.
    fn read_header(&mut self, header: &Bound<'_, PyAny>) -> PyResult<usize> {
        let ingress = &mut self.ingress;
        with_bytes(header, |header| {
            if ingress.pending.is_some() {
                return Err(FrameError::new_err(
                    "read_header called while a frame body is pending",
                ));
            }
            if header.len() != HEADER_SIZE {
                return Err(FrameError::new_err(format!(
                    "frame header must be {HEADER_SIZE} bytes, got {}",
                    header.len()
                )));
            }
            let seed: [u8; MAC_SIZE] = header[..BLOCK].try_into().expect("16 bytes");
            let expected = ingress.mac.update_mac(&ingress.mac_cipher, &seed);
            if !macs_equal(&expected, &header[BLOCK..]) {
                return Err(MACMismatchError::new_err("bad header MAC"));
            }
            let mut plain = seed;
            ingress.dec.apply_keystream(&mut plain);
            let fsize = u32::from_be_bytes([0, plain[0], plain[1], plain[2]]) as usize;
            ingress.pending = Some(fsize);
            Ok(padded_len(fsize) + MAC_SIZE)
        })
    }

    /// Verify and decrypt the body announced by read_header; returns (code, payload).
    fn read_body<'py>(
        &mut self,
        py: Python<'py>,
        body: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let ingress = &mut self.ingress;
        with_bytes(body, |body| {
            let Some(fsize) = ingress.pending.take() else {
                return Err(FrameError::new_err("read_body called before read_header"));
            };
            let padded = padded_len(fsize);
            if body.len() != padded + MAC_SIZE {
                return Err(FrameError::new_err(format!(
                    "frame body must be {} bytes, got {}",
                    padded + MAC_SIZE,
                    body.len()
                )));
            }
            let (ciphertext, mac) = body.split_at(padded);
            let ok = if padded > RELEASE_GIL_ABOVE {
                py.detach(|| ingress.check_body_mac(ciphertext, mac))
            } else {
                ingress.check_body_mac(ciphertext, mac)
            };
            if !ok {
                return Err(MACMismatchError::new_err("bad frame MAC"));
            }
            if fsize == 0 {
                return Err(FrameError::new_err("frame has no message code"));
            }
            // The code (at most 9 bytes) lies in the first block: decrypt that alone, then
            // the rest of the payload straight into the bytes object handed back.
            let mut first = [0u8; BLOCK];
            ingress
                .dec
                .apply_keystream_b2b(&ciphertext[..BLOCK], &mut first)
                .expect("same length");
            let head_len = fsize.min(BLOCK);
            let dec = &mut ingress.dec;
            let (code, n) = match decode_code(&first[..head_len]) {
                Ok(decoded) => decoded,
                Err(why) => {
                    // Leave the keystream where a full read would, as the pure twin does.
                    let pos: u64 = dec.current_pos();
                    dec.seek(pos + (padded - BLOCK) as u64);
                    return Err(FrameError::new_err(why));
                }
            };
            let payload = bytes_filled(py, fsize - n, |out| {
                out[..head_len - n].copy_from_slice(&first[n..head_len]);
                if fsize > BLOCK {
                    dec.apply_keystream_b2b(&ciphertext[BLOCK..fsize], &mut out[BLOCK - n..])
                        .expect("same length");
                    // Keep the keystream in step with the sender, who encrypted the padding.
                    let mut pad = [0u8; BLOCK];
                    let pad = &mut pad[..padded - fsize];
                    dec.apply_keystream_b2b(&ciphertext[fsize..], pad)
                        .expect("same length");
                }
                Ok(())
            })?;
            (code, payload).into_pyobject(py)
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FrameCodec>()
}
