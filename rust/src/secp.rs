//! The few libsecp256k1 operations the RLPx handshake needs, over `secp256k1-sys`.
//!
//! `secp256k1-sys` builds libsecp256k1 (the C library coincurve also bundles; v0.6 here)
//! with the cc crate. Its raw functions are used with one context of our own, randomized
//! once at import from os.urandom (as coincurve's global context is): the `secp256k1`
//! wrapper crate re-randomizes its global context after every secret-key operation,
//! which costs one more base-point multiplication each time. The operations are exactly
//! the ones `ethnode.crypto.keys` calls through coincurve (`ec_pubkey_tweak_mul` for
//! ECDH, RFC 6979 `ecdsa_sign_recoverable`, `ecdsa_recover`), so the bytes are the same.

use std::ptr::NonNull;
use std::sync::OnceLock;

use secp256k1_sys as ffi;
use secp256k1_sys::recovery as rec;

pub(crate) const SECRET_LEN: usize = 32;
pub(crate) const UNCOMPRESSED_LEN: usize = 65;
pub(crate) const COMPRESSED_LEN: usize = 33;

struct Context(NonNull<ffi::Context>);

// SAFETY: a libsecp256k1 context is only read by every function used here (all take a
// `const secp256k1_context *`); the one mutation, randomization, happens before it is shared.
unsafe impl Send for Context {}
unsafe impl Sync for Context {}

static CONTEXT: OnceLock<Context> = OnceLock::new();

/// Create and randomize the shared context (idempotent; the first seed wins).
pub(crate) fn init(seed: &[u8; 32]) {
    CONTEXT.get_or_init(|| unsafe {
        let ctx =
            ffi::secp256k1_context_create(ffi::SECP256K1_START_SIGN | ffi::SECP256K1_START_VERIFY);
        let ok = ffi::secp256k1_context_randomize(ctx, seed.as_ptr());
        assert_eq!(ok, 1, "secp256k1_context_randomize");
        Context(ctx)
    });
}

fn ctx() -> *const ffi::Context {
    CONTEXT
        .get()
        .expect("secp::init runs at module import")
        .0
        .as_ptr()
}

/// A secret scalar checked to be in [1, n-1].
#[derive(Clone, Copy)]
pub(crate) struct Secret([u8; SECRET_LEN]);

/// A public key that libsecp256k1 parsed or computed (so a valid point).
#[derive(Clone, Copy)]
pub(crate) struct Point(ffi::PublicKey);

impl Secret {
    /// None unless 32 bytes encoding a scalar in [1, n-1].
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Secret> {
        let bytes: [u8; SECRET_LEN] = bytes.try_into().ok()?;
        (unsafe { ffi::secp256k1_ec_seckey_verify(ctx(), bytes.as_ptr()) } == 1)
            .then_some(Secret(bytes))
    }

    /// secret * G.
    pub(crate) fn public(&self) -> Point {
        unsafe {
            let mut point = ffi::PublicKey::new();
            let ok = ffi::secp256k1_ec_pubkey_create(ctx(), &mut point, self.0.as_ptr());
            assert_eq!(ok, 1, "a checked secret has a public key");
            Point(point)
        }
    }

    /// The x coordinate of secret * point: the raw ECDH secret devp2p uses.
    pub(crate) fn ecdh_x(&self, point: &Point) -> [u8; 32] {
        let mut product = *point;
        unsafe {
            let ok = ffi::secp256k1_ec_pubkey_tweak_mul(ctx(), &mut product.0, self.0.as_ptr());
            assert_eq!(
                ok, 1,
                "a checked secret times a valid point is a valid point"
            );
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(&product.serialize_uncompressed()[1..33]);
        out
    }

    /// geth's crypto.Sign: r || s || v over a 32-byte hash, low-s, RFC 6979 nonce.
    pub(crate) fn sign_recoverable(&self, hash: &[u8; 32]) -> [u8; 65] {
        let mut out = [0u8; 65];
        unsafe {
            let mut sig = rec::RecoverableSignature::new();
            let ok = rec::secp256k1_ecdsa_sign_recoverable(
                ctx(),
                &mut sig,
                hash.as_ptr(),
                self.0.as_ptr(),
                ffi::secp256k1_nonce_function_rfc6979,
                std::ptr::null(),
            );
            assert_eq!(ok, 1, "signing with a checked secret");
            let mut recid = 0;
            rec::secp256k1_ecdsa_recoverable_signature_serialize_compact(
                ctx(),
                out.as_mut_ptr(),
                &mut recid,
                &sig,
            );
            out[64] = recid as u8;
        }
        out
    }
}

impl Point {
    /// None unless a valid SEC1 encoding (33 or 65 bytes) of a point on the curve.
    pub(crate) fn parse(encoded: &[u8]) -> Option<Point> {
        unsafe {
            let mut point = ffi::PublicKey::new();
            let ok =
                ffi::secp256k1_ec_pubkey_parse(ctx(), &mut point, encoded.as_ptr(), encoded.len());
            (ok == 1).then_some(Point(point))
        }
    }

    /// The public key whose signature (r || s, recovery id) this is over `hash`, if any.
    pub(crate) fn recover(hash: &[u8; 32], compact: &[u8; 64], recid: u8) -> Option<Point> {
        unsafe {
            let mut sig = rec::RecoverableSignature::new();
            if rec::secp256k1_ecdsa_recoverable_signature_parse_compact(
                ctx(),
                &mut sig,
                compact.as_ptr(),
                recid.into(),
            ) != 1
            {
                return None;
            }
            let mut point = ffi::PublicKey::new();
            (rec::secp256k1_ecdsa_recover(ctx(), &mut point, &sig, hash.as_ptr()) == 1)
                .then_some(Point(point))
        }
    }

    /// secret * self as a point (ECDH that keeps the y parity, as discv5 needs). A checked
    /// secret times a valid point is never the point at infinity (the group order is prime).
    pub(crate) fn mul(&self, secret: &Secret) -> Point {
        let mut product = *self;
        unsafe {
            let ok = ffi::secp256k1_ec_pubkey_tweak_mul(ctx(), &mut product.0, secret.0.as_ptr());
            assert_eq!(ok, 1, "a checked secret times a valid point is a valid point");
        }
        product
    }

    pub(crate) fn serialize_compressed(&self) -> [u8; COMPRESSED_LEN] {
        let mut out = [0u8; COMPRESSED_LEN];
        let mut len = COMPRESSED_LEN;
        unsafe {
            ffi::secp256k1_ec_pubkey_serialize(
                ctx(),
                out.as_mut_ptr(),
                &mut len,
                &self.0,
                ffi::SECP256K1_SER_COMPRESSED,
            );
        }
        out
    }

    pub(crate) fn serialize_uncompressed(&self) -> [u8; UNCOMPRESSED_LEN] {
        let mut out = [0u8; UNCOMPRESSED_LEN];
        let mut len = UNCOMPRESSED_LEN;
        unsafe {
            ffi::secp256k1_ec_pubkey_serialize(
                ctx(),
                out.as_mut_ptr(),
                &mut len,
                &self.0,
                ffi::SECP256K1_SER_UNCOMPRESSED,
            );
        }
        out
    }
}
