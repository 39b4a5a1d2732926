//! Keccak-f[1600] for the RLPx MACs: the `keccak` crate's portable permutation, or an
//! AVX-512 one picked at run time, and a small sponge (legacy Keccak-256 padding) on top.
//!
//! The frame codec is keccak-bound (see `frame.rs`), so the permutation is its hot loop.
//! The portable permutation takes ~300 ns here (2-core Xeon, ~3.5 GHz); the AVX-512 one
//! ~250 ns. It keeps the 5x5 state as five 512-bit rows: theta and chi become a handful
//! of three-input logic ops (`vpternlogq`), rho one variable rotate per row (`vprolvq`),
//! and pi a per-row lane permutation plus a 5x5 transpose back to rows (19 shuffles a
//! round, all on one port: that, not arithmetic, is its limit). Over whole blocks the
//! state stays in registers. Both give the same bits; the choice is made once per
//! process (`best()`, `ETHNODE_KECCAK=portable` to force the other), and
//! `keccak_f1600_permute` lets the tests run each one against the other.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::with_bytes;

/// One Keccak-f[1600] permutation of a 25-lane state (lane x + 5y).
pub(crate) type Permutation = fn(&mut [u64; 25]);

/// Keccak-256's rate: 1088 bits.
pub(crate) const RATE: usize = 136;

fn portable(state: &mut [u64; 25]) {
    keccak::f1600(state);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    const RC: [u64; 24] = [
        0x0000000000000001,
        0x0000000000008082,
        0x800000000000808A,
        0x8000000080008000,
        0x000000000000808B,
        0x0000000080000001,
        0x8000000080008081,
        0x8000000000008009,
        0x000000000000008A,
        0x0000000000000088,
        0x0000000080008009,
        0x000000008000000A,
        0x000000008000808B,
        0x800000000000008B,
        0x8000000000008089,
        0x8000000000008003,
        0x8000000000008002,
        0x8000000000000080,
        0x000000000000800A,
        0x800000008000000A,
        0x8000000080008081,
        0x8000000000008080,
        0x0000000080000001,
        0x8000000080008008,
    ];

    /// The round constants as vectors (lane 0 only), so that iota is one full-width xor.
    const IOTA: [[i64; 8]; 24] = {
        let mut v = [[0i64; 8]; 24];
        let mut i = 0;
        while i < 24 {
            v[i][0] = RC[i] as i64;
            i += 1;
        }
        v
    };

    /// Rho rotation of lane (x, y), as row y's vector: offset (t+1)(t+2)/2 along the pi walk.
    const RHO: [[i64; 8]; 5] = {
        let mut r = [[0i64; 8]; 5];
        let (mut x, mut y, mut t) = (1usize, 0usize, 0usize);
        while t < 24 {
            r[y][x] = (((t + 1) * (t + 2) / 2) % 64) as i64;
            let next_y = (2 * x + 3 * y) % 5;
            x = y;
            y = next_y;
            t += 1;
        }
        r
    };

    /// Pi sends lane (x, y) to (y, 2x + 3y). Row y's lanes all land in column y: lane x at
    /// position (2x + 3y) mod 5, so register y becomes column y after one in-register permute.
    const PI: [[i64; 8]; 5] = {
        let mut p = [[5, 6, 7, 5, 6, 7, 5, 6]; 5];
        let mut y = 0;
        while y < 5 {
            let mut x = 0;
            while x < 5 {
                p[y][(2 * x + 3 * y) % 5] = x as i64;
                x += 1;
            }
            y += 1;
        }
        p
    };

    const THETA_PREV: [i64; 8] = [4, 0, 1, 2, 3, 5, 6, 7]; // lane x <- C[x - 1]
    const THETA_NEXT: [i64; 8] = [1, 2, 3, 4, 0, 5, 6, 7]; // lane x <- C[x + 1]
                                                           // Columns back to rows (a 5x5 transpose); indexes >= 8 pick from the second operand.
    const PAIRS: [i64; 8] = [0, 1, 8, 9, 2, 3, 10, 11];
    const PAIRS_HIGH: [i64; 8] = [4, 5, 12, 13, 0, 0, 0, 0];
    const ROW0: [i64; 8] = [0, 1, 2, 3, 8, 0, 0, 0];
    const ROW1: [i64; 8] = [0, 1, 2, 3, 9, 0, 0, 0];
    const ROW2: [i64; 8] = [4, 5, 6, 7, 10, 0, 0, 0];
    const ROW3: [i64; 8] = [4, 5, 6, 7, 11, 0, 0, 0];
    const ROW4: [i64; 8] = [0, 1, 2, 3, 12, 0, 0, 0];

    #[inline(always)]
    unsafe fn v(a: &[i64; 8]) -> __m512i {
        _mm512_loadu_epi64(a.as_ptr())
    }

    /// The permutation's constant vectors, loaded once per call (they stay in registers).
    struct Consts {
        prev: __m512i,
        next: __m512i,
        rho: [__m512i; 5],
        pi: [__m512i; 5],
        pairs: __m512i,
        pairs_high: __m512i,
        rows: [__m512i; 5],
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn consts() -> Consts {
        Consts {
            prev: v(&THETA_PREV),
            next: v(&THETA_NEXT),
            rho: [v(&RHO[0]), v(&RHO[1]), v(&RHO[2]), v(&RHO[3]), v(&RHO[4])],
            pi: [v(&PI[0]), v(&PI[1]), v(&PI[2]), v(&PI[3]), v(&PI[4])],
            pairs: v(&PAIRS),
            pairs_high: v(&PAIRS_HIGH),
            rows: [v(&ROW0), v(&ROW1), v(&ROW2), v(&ROW3), v(&ROW4)],
        }
    }

    /// The 24 rounds on a state held as five row registers (lanes 5..7 are don't-care).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn rounds(r: &mut [__m512i; 5], k: &Consts) {
        let [mut r0, mut r1, mut r2, mut r3, mut r4] = *r;
        for iota in &IOTA {
            // Theta: C[x] = xor of column x; every lane ^= C[x-1] ^ rot(C[x+1], 1).
            let c = _mm512_ternarylogic_epi64::<0x96>(
                _mm512_ternarylogic_epi64::<0x96>(r0, r1, r2),
                r3,
                r4,
            );
            let d_prev = _mm512_permutexvar_epi64(k.prev, c);
            let d_next = _mm512_rol_epi64::<1>(_mm512_permutexvar_epi64(k.next, c));
            // Rho, then pi as an in-register permute: register y now holds column y.
            let theta = |row| _mm512_ternarylogic_epi64::<0x96>(row, d_prev, d_next);
            let b0 = _mm512_permutexvar_epi64(k.pi[0], _mm512_rolv_epi64(theta(r0), k.rho[0]));
            let b1 = _mm512_permutexvar_epi64(k.pi[1], _mm512_rolv_epi64(theta(r1), k.rho[1]));
            let b2 = _mm512_permutexvar_epi64(k.pi[2], _mm512_rolv_epi64(theta(r2), k.rho[2]));
            let b3 = _mm512_permutexvar_epi64(k.pi[3], _mm512_rolv_epi64(theta(r3), k.rho[3]));
            let b4 = _mm512_permutexvar_epi64(k.pi[4], _mm512_rolv_epi64(theta(r4), k.rho[4]));
            // Chi across columns: a ^ (~b & c) is ternary-logic 0xD2. Iota on lane (0, 0),
            // applied to chi's first input for column 0 only (same result, off the critical path).
            let c0 = _mm512_ternarylogic_epi64::<0xD2>(_mm512_xor_si512(b0, v(iota)), b1, b2);
            let c1 = _mm512_ternarylogic_epi64::<0xD2>(b1, b2, b3);
            let c2 = _mm512_ternarylogic_epi64::<0xD2>(b2, b3, b4);
            let c3 = _mm512_ternarylogic_epi64::<0xD2>(b3, b4, b0);
            let c4 = _mm512_ternarylogic_epi64::<0xD2>(b4, b0, b1);
            // Transpose columns back to rows.
            let lo01 = _mm512_unpacklo_epi64(c0, c1); // c0[0] c1[0] c0[2] c1[2] c0[4] c1[4] ..
            let hi01 = _mm512_unpackhi_epi64(c0, c1); // c0[1] c1[1] c0[3] c1[3] ..
            let lo23 = _mm512_unpacklo_epi64(c2, c3);
            let hi23 = _mm512_unpackhi_epi64(c2, c3);
            let even = _mm512_permutex2var_epi64(lo01, k.pairs, lo23); // rows 0 and 2 without c4
            let odd = _mm512_permutex2var_epi64(hi01, k.pairs, hi23); // rows 1 and 3 without c4
            let four = _mm512_permutex2var_epi64(lo01, k.pairs_high, lo23); // row 4 without c4
            r0 = _mm512_permutex2var_epi64(even, k.rows[0], c4);
            r1 = _mm512_permutex2var_epi64(odd, k.rows[1], c4);
            r2 = _mm512_permutex2var_epi64(even, k.rows[2], c4);
            r3 = _mm512_permutex2var_epi64(odd, k.rows[3], c4);
            r4 = _mm512_permutex2var_epi64(four, k.rows[4], c4);
        }
        *r = [r0, r1, r2, r3, r4];
    }

    const ROW: __mmask8 = 0x1F;

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(state: &[u64; 25]) -> [__m512i; 5] {
        let s = state.as_ptr() as *const i64;
        [0, 5, 10, 15, 20].map(|at| _mm512_maskz_loadu_epi64(ROW, s.add(at)))
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store(state: &mut [u64; 25], r: &[__m512i; 5]) {
        let s = state.as_mut_ptr() as *mut i64;
        for (i, row) in r.iter().enumerate() {
            _mm512_mask_storeu_epi64(s.add(5 * i), ROW, *row);
        }
    }

    /// Keccak-f[1600] on AVX-512F. Only called when the CPU has it (see `super::best`).
    #[target_feature(enable = "avx512f")]
    unsafe fn f1600(state: &mut [u64; 25]) {
        let mut r = load(state);
        rounds(&mut r, &consts());
        store(state, &r);
    }

    /// XOR each 136-byte block into the state and permute, the state staying in registers
    /// from the first block to the last. (Lanes stored one by one and then read back as a
    /// 512-bit row would stall on store forwarding, ~30 ns a permutation.)
    #[target_feature(enable = "avx512f")]
    unsafe fn absorb(state: &mut [u64; 25], blocks: &[u8]) {
        debug_assert_eq!(blocks.len() % super::RATE, 0);
        let k = consts();
        let mut r = load(state);
        for block in blocks.chunks_exact(super::RATE) {
            let b = block.as_ptr() as *const i64; // 17 little-endian lanes: rows 0-2 and 2 lanes of row 3
            r[0] = _mm512_xor_si512(r[0], _mm512_maskz_loadu_epi64(ROW, b));
            r[1] = _mm512_xor_si512(r[1], _mm512_maskz_loadu_epi64(ROW, b.add(5)));
            r[2] = _mm512_xor_si512(r[2], _mm512_maskz_loadu_epi64(ROW, b.add(10)));
            r[3] = _mm512_xor_si512(r[3], _mm512_maskz_loadu_epi64(0x03, b.add(15)));
            rounds(&mut r, &k);
        }
        store(state, &r);
    }

    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }

    // SAFETY (both): only handed out by `super::by_name` after `available()`.
    pub(super) fn permute(state: &mut [u64; 25]) {
        unsafe { f1600(state) }
    }

    pub(super) fn absorb_blocks(state: &mut [u64; 25], blocks: &[u8]) {
        unsafe { absorb(state, blocks) }
    }
}

/// A Keccak-f[1600] implementation: one permutation, and "XOR in and permute" over whole
/// 136-byte blocks (where a SIMD one keeps the state in registers).
#[derive(Clone, Copy)]
pub(crate) struct Keccak {
    pub(crate) permute: Permutation,
    pub(crate) absorb: fn(&mut [u64; 25], &[u8]),
    pub(crate) name: &'static str,
}

fn portable_absorb(state: &mut [u64; 25], blocks: &[u8]) {
    for block in blocks.chunks_exact(RATE) {
        for (lane, word) in state.iter_mut().zip(block.chunks_exact(8)) {
            *lane ^= u64::from_le_bytes(word.try_into().expect("8 bytes"));
        }
        keccak::f1600(state);
    }
}

/// The implementation called `name` ("portable" or "avx512") if this CPU can run it.
fn by_name(name: &str) -> Option<Keccak> {
    match name {
        "portable" => Some(Keccak {
            permute: portable,
            absorb: portable_absorb,
            name: "portable",
        }),
        #[cfg(target_arch = "x86_64")]
        "avx512" if avx512::available() => Some(Keccak {
            permute: avx512::permute,
            absorb: avx512::absorb_blocks,
            name: "avx512",
        }),
        _ => None,
    }
}

/// The fastest implementation this CPU runs; `ETHNODE_KECCAK=portable` forces the portable
/// one (to compare them, or to rule the SIMD one out).
pub(crate) fn best() -> Keccak {
    use std::sync::OnceLock;
    static BEST: OnceLock<Keccak> = OnceLock::new();
    *BEST.get_or_init(|| {
        let forced = std::env::var("ETHNODE_KECCAK").unwrap_or_default();
        ["avx512", "portable"]
            .into_iter()
            .filter(|name| forced.is_empty() || forced == *name)
            .find_map(by_name)
            .unwrap_or_else(|| by_name("portable").expect("always available"))
    })
}

/// A Keccak-256 sponge that can report its digest and keep absorbing (for the RLPx MACs).
#[derive(Clone)]
pub(crate) struct Sponge {
    state: [u64; 25],
    /// Bytes absorbed into the current block (0..RATE).
    pos: usize,
    imp: Keccak,
}

impl Sponge {
    pub(crate) fn new(imp: Keccak) -> Self {
        Sponge {
            state: [0; 25],
            pos: 0,
            imp,
        }
    }

    /// XOR `data` into the state at byte offset `at` (lanes are little-endian).
    #[inline]
    fn xor_in(&mut self, at: usize, data: &[u8]) {
        let mut i = 0;
        let mut at = at;
        if at.is_multiple_of(8) {
            while i + 8 <= data.len() {
                let word = u64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
                self.state[at / 8] ^= word;
                i += 8;
                at += 8;
            }
        }
        while i < data.len() {
            self.state[at / 8] ^= (data[i] as u64) << (8 * (at % 8));
            i += 1;
            at += 1;
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        if self.pos > 0 {
            let take = (RATE - self.pos).min(data.len());
            self.xor_in(self.pos, &data[..take]);
            self.pos += take;
            data = &data[take..];
            if self.pos < RATE {
                return;
            }
            (self.imp.permute)(&mut self.state);
            self.pos = 0;
        }
        let whole = data.len() - data.len() % RATE;
        if whole > 0 {
            (self.imp.absorb)(&mut self.state, &data[..whole]);
        }
        self.xor_in(0, &data[whole..]);
        self.pos = data.len() - whole;
    }

    /// The first 16 bytes of Keccak-256 of everything absorbed so far; the sponge keeps going.
    pub(crate) fn digest16(&self) -> [u8; 16] {
        let mut state = self.state;
        // Legacy Keccak padding (0x01 ... 0x80), not SHA-3's 0x06.
        state[self.pos / 8] ^= 0x01u64 << (8 * (self.pos % 8));
        state[(RATE - 1) / 8] ^= 0x80u64 << (8 * ((RATE - 1) % 8));
        (self.imp.permute)(&mut state);
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&state[0].to_le_bytes());
        out[8..].copy_from_slice(&state[1].to_le_bytes());
        out
    }
}

/// Run `count` permutations of one state natively and return its first lane: with the
/// time this takes, ns per permutation for the benchmarks' native limit, free of any
/// per-call Python overhead. `implementation` defaults to the one the frame codec uses.
#[pyfunction]
#[pyo3(signature = (count, implementation = None))]
fn keccak_f1600_run(py: Python<'_>, count: u64, implementation: Option<&str>) -> PyResult<u64> {
    let permute = match implementation {
        None => best().permute,
        Some(name) => {
            by_name(name)
                .ok_or_else(|| PyValueError::new_err(format!("keccak {name:?} unavailable")))?
                .permute
        }
    };
    Ok(py.detach(|| {
        let mut state = [0u64; 25];
        for _ in 0..count {
            permute(std::hint::black_box(&mut state));
        }
        state[0]
    }))
}

/// The permutation the frame codec uses here: "avx512" or "portable".
#[pyfunction]
fn keccak_f1600_implementation() -> &'static str {
    best().name
}

/// One permutation of a 200-byte state (25 little-endian lanes) with the named implementation, for tests.
#[pyfunction]
fn keccak_f1600_permute<'py>(
    py: Python<'py>,
    state: &Bound<'py, PyAny>,
    implementation: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let permute = by_name(implementation)
        .ok_or_else(|| PyValueError::new_err(format!("keccak {implementation:?} unavailable")))?
        .permute;
    let mut lanes = with_bytes(state, |b| {
        if b.len() != 200 {
            return Err(PyValueError::new_err("a Keccak-f[1600] state is 200 bytes"));
        }
        let mut lanes = [0u64; 25];
        for (lane, chunk) in lanes.iter_mut().zip(b.chunks_exact(8)) {
            *lane = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        }
        Ok(lanes)
    })?;
    permute(&mut lanes);
    PyBytes::new_with(py, 200, |out| {
        for (chunk, lane) in out.chunks_exact_mut(8).zip(lanes) {
            chunk.copy_from_slice(&lane.to_le_bytes());
        }
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(keccak_f1600_run, m)?)?;
    m.add_function(wrap_pyfunction!(keccak_f1600_implementation, m)?)?;
    m.add_function(wrap_pyfunction!(keccak_f1600_permute, m)?)?;
    Ok(())
}
