//! eth_createAccessList on revm: a call (as `call.rs` runs one) under an inspector that records
//! what geth's `AccessListTracer` records before each opcode, in every frame (reverted ones too):
//! SLOAD/SSTORE -> (the frame's storage address, slot); BALANCE, EXTCODESIZE/COPY/HASH,
//! SELFDESTRUCT -> the address on top of the stack; CALL, CALLCODE, DELEGATECALL, STATICCALL ->
//! the address second from the top. Python applies geth's exclusions and iterates to a fixed
//! point; this side only reports the events, in order.
//!
//! Its own class beside `RevmCall` (same constructor and message) so the plain call path keeps
//! its lean inspector.

use std::time::Instant;

use alloy_evm::{Evm, EvmFactory};
use alloy_evm::eth::EthEvmFactory;
use alloy_primitives::{Address, B256, U256};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::interpreter_types::{InputsTr, Jumps};
use revm::interpreter::Interpreter;
use revm::Inspector;

use super::call::{deadline_after, outcome_tuple, transact_error, CallState};
use super::overlay::relocate_precompiles;

const SLOAD: u8 = 0x54;
const SSTORE: u8 = 0x55;
const BALANCE: u8 = 0x31;
const EXTCODESIZE: u8 = 0x3b;
const EXTCODECOPY: u8 = 0x3c;
const EXTCODEHASH: u8 = 0x3f;
const SELFDESTRUCT: u8 = 0xff;
const CALL: u8 = 0xf1;
const CALLCODE: u8 = 0xf2;
const DELEGATECALL: u8 = 0xf4;
const STATICCALL: u8 = 0xfa;

/// One access: an address, and the slot when it was a storage access.
type Access = (Address, Option<B256>);

struct AccessInspector {
    deadline: Option<Instant>,
    steps: u64,
    timed_out: bool,
    opcode: u8,
    stack_len: usize,
    events: Vec<Access>,
}

fn word_address(word: &U256) -> Address {
    Address::from_slice(&word.to_be_bytes::<32>()[12..])
}

impl<CTX> Inspector<CTX, EthInterpreter> for AccessInspector {
    fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, _context: &mut CTX) {
        let op = interp.bytecode.opcode();
        self.opcode = op;
        self.stack_len = interp.stack.len();
        self.steps += 1;
        let data = interp.stack.data();
        let n = data.len();
        match op {
            SLOAD | SSTORE if n >= 1 => {
                let slot = B256::from(data[n - 1].to_be_bytes::<32>());
                self.events.push((interp.input.target_address(), Some(slot)));
            }
            BALANCE | EXTCODESIZE | EXTCODECOPY | EXTCODEHASH | SELFDESTRUCT if n >= 1 => {
                self.events.push((word_address(&data[n - 1]), None));
            }
            CALL | CALLCODE | DELEGATECALL | STATICCALL if n >= 5 => {
                self.events.push((word_address(&data[n - 2]), None));
            }
            _ => {}
        }
        if self.timed_out || (self.steps & 0x3ff == 0 && self.deadline.is_some_and(|d| Instant::now() > d)) {
            self.timed_out = true;
            interp.halt_oog();
        }
    }
}

/// A call's view of one block's post-state, traced for its accesses.
#[pyclass(unsendable, module = "ethnode._rust")]
pub struct RevmAccessList {
    call: CallState,
}

#[pymethods]
impl RevmAccessList {
    #[new]
    fn new(getter: Py<PyAny>, state_root: &[u8], forks: Vec<(String, String, u64)>, chain_id: u64, block_hash: Py<PyAny>) -> PyResult<Self> {
        Ok(Self { call: CallState::open(getter, state_root, forks, chain_id, block_hash)? })
    }

    /// As `RevmCall.override_account`.
    #[pyo3(signature = (address, nonce, balance, code, storage, replace_storage))]
    fn override_account(
        &mut self,
        address: &[u8],
        nonce: Option<u64>,
        balance: Option<Vec<u8>>,
        code: Option<Vec<u8>>,
        storage: Vec<(Vec<u8>, Vec<u8>)>,
        replace_storage: bool,
    ) -> PyResult<()> {
        self.call.override_account(address, nonce, balance, code, storage, replace_storage)
    }

    /// As `RevmCall.override_precompile`.
    #[pyo3(signature = (address, move_to=None, gets_code=false))]
    fn override_precompile(&mut self, address: &[u8], move_to: Option<Vec<u8>>, gets_code: bool) -> PyResult<()> {
        self.call.override_precompile(address, move_to, gets_code)
    }

    /// The balance of `address` (32 bytes, big-endian), for the pre-call checks.
    fn balance<'py>(&mut self, py: Python<'py>, address: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        self.call.balance(py, address)
    }

    /// As `RevmCall.run`, with an eighth element: the accesses, `[(address, slot|None), ...]`.
    #[pyo3(signature = (env, blob, message, zero_blob_fee, timeout=None, blob_price=None))]
    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        env: &Bound<'py, PyTuple>,
        blob: Option<(u64, u64, u64, u64, u64)>,
        message: &Bound<'py, PyTuple>,
        zero_blob_fee: bool,
        timeout: Option<f64>,
        blob_price: Option<u128>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (db, evm_env, tx) = self.call.prepare(env, blob, message, zero_blob_fee, blob_price)?;
        let deadline = deadline_after(timeout);
        let inspector = AccessInspector { deadline, steps: 0, timed_out: false, opcode: 0, stack_len: 0, events: Vec::new() };
        let mut evm = EthEvmFactory::default().create_evm_with_inspector(db, evm_env, inspector);
        relocate_precompiles(evm.precompiles_mut(), self.call.precompile_moves());
        let outcome = evm.transact(tx);
        let insp = evm.inspector();
        let events = PyList::empty(py);
        for (address, slot) in insp.events.iter() {
            let addr = PyBytes::new(py, address.as_slice()).into_any();
            let slot = match slot {
                Some(s) => PyBytes::new(py, s.as_slice()).into_any(),
                None => py.None().into_bound(py),
            };
            events.append(PyTuple::new(py, [addr, slot])?)?;
        }
        let result = outcome.map_err(transact_error)?.result;
        outcome_tuple(py, result, insp.timed_out, insp.opcode, insp.stack_len, Some(events.into_any()))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RevmAccessList>()
}
