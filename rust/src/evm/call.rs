//! eth_call on revm: one message on the state after a block, in that block's context; nothing kept.
//!
//! The checks geth makes before a call runs (fees, funds, intrinsic gas) are Python's, shared
//! with the py-evm twin so both refuse with geth's texts; `balance` serves them. Here the
//! message runs with the checks a call skips turned off (nonce, sender-is-EOA, block gas
//! limit, the EIP-7825 cap), under an inspector that enforces the deadline and remembers the
//! last opcode, so a failure can be worded as geth words it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_evm::{Evm, EvmEnv, EvmFactory};
use alloy_evm::eth::EthEvmFactory;
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use revm::context::TxEnv;
use revm::context_interface::result::{ExecutionResult, HaltReason, OutOfGasError};
use revm::database::State;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::interpreter_types::Jumps;
use revm::interpreter::Interpreter;
use revm::Inspector;

use super::block::{chain_env, EvmStateError};
use super::nodes::NodeDb;
use super::overlay::{relocate_precompiles, OverlayState};
use super::state::TrieState;

/// Deadline and post-mortem for a call (the step hook runs before every instruction).
struct CallInspector {
    deadline: Option<Instant>,
    steps: u64,
    timed_out: bool,
    opcode: u8,
    stack_len: usize,
}

impl<CTX> Inspector<CTX, EthInterpreter> for CallInspector {
    fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, _context: &mut CTX) {
        self.opcode = interp.bytecode.opcode();
        self.stack_len = interp.stack.len();
        self.steps += 1;
        if self.timed_out || (self.steps & 0x3ff == 0 && self.deadline.is_some_and(|d| Instant::now() > d)) {
            // Every frame still running is stopped at its next instruction.
            self.timed_out = true;
            interp.halt_oog(); // a plain halt: the result is discarded as a timeout
        }
    }
}

/// What `RevmCall` and `RevmAccessList` share: the overridable post-state and the chain's
/// rules, each run once.
pub(super) struct CallState {
    state: Option<OverlayState>,
    forks: Vec<(String, String, u64)>,
    chain_id: u64,
    precompile_moves: Vec<(Address, Option<Address>, bool)>,
}

impl CallState {
    pub(super) fn open(getter: Py<PyAny>, state_root: &[u8], forks: Vec<(String, String, u64)>, chain_id: u64, block_hash: Py<PyAny>) -> PyResult<Self> {
        let state = OverlayState::new(open_state(getter, state_root, block_hash)?);
        Ok(Self { state: Some(state), forks, chain_id, precompile_moves: Vec::new() })
    }

    fn live(&mut self) -> PyResult<&mut OverlayState> {
        self.state.as_mut().ok_or_else(|| PyRuntimeError::new_err("call already run"))
    }

    pub(super) fn override_account(
        &mut self,
        address: &[u8],
        nonce: Option<u64>,
        balance: Option<Vec<u8>>,
        code: Option<Vec<u8>>,
        storage: Vec<(Vec<u8>, Vec<u8>)>,
        replace_storage: bool,
    ) -> PyResult<()> {
        self.live()?.set(address, nonce, balance.as_deref(), code, storage, replace_storage)
    }

    pub(super) fn override_precompile(&mut self, address: &[u8], move_to: Option<Vec<u8>>, gets_code: bool) -> PyResult<()> {
        if address.len() != 20 || move_to.as_ref().is_some_and(|m| m.len() != 20) {
            return Err(PyValueError::new_err("address must be 20 bytes"));
        }
        self.precompile_moves.push((Address::from_slice(address), move_to.map(|m| Address::from_slice(&m)), gets_code));
        Ok(())
    }

    pub(super) fn balance<'py>(&mut self, py: Python<'py>, address: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        balance_of(py, self.live()?, address)
    }

    /// The state (once), the call's block environment and its tx, for `run`.
    pub(super) fn prepare(
        &mut self,
        env: &Bound<'_, PyTuple>,
        blob: Option<(u64, u64, u64, u64, u64)>,
        message: &Bound<'_, PyTuple>,
        zero_blob_fee: bool,
        blob_price: Option<u128>,
    ) -> PyResult<(State<OverlayState>, EvmEnv, TxEnv)> {
        let state = self.state.take().ok_or_else(|| PyRuntimeError::new_err("call already run"))?;
        let evm_env = call_env(self.forks.clone(), self.chain_id, env, blob, zero_blob_fee, blob_price)?;
        let (tx, _) = call_tx(message, self.chain_id)?;
        Ok((State::builder().with_database(state).build(), evm_env, tx))
    }

    pub(super) fn precompile_moves(&self) -> &[(Address, Option<Address>, bool)] {
        &self.precompile_moves
    }
}

/// The stored state under `state_root`, read through ethnode's node getter.
pub(super) fn open_state(getter: Py<PyAny>, state_root: &[u8], block_hash: Py<PyAny>) -> PyResult<TrieState> {
    if state_root.len() != 32 {
        return Err(PyValueError::new_err("state root must be 32 bytes"));
    }
    let db = Arc::new(NodeDb::new(getter));
    TrieState::new(db, B256::from_slice(state_root), block_hash).map_err(|e| EvmStateError::new_err(e.0))
}

/// The balance of `address` (32 bytes, big-endian), for the pre-call checks.
pub(super) fn balance_of<'py, D>(py: Python<'py>, state: &mut D, address: &[u8]) -> PyResult<Bound<'py, PyBytes>>
where
    D: revm::Database<Error = super::nodes::StateError>,
{
    if address.len() != 20 {
        return Err(PyValueError::new_err("address must be 20 bytes"));
    }
    let info = state.basic(Address::from_slice(address)).map_err(|e| EvmStateError::new_err(e.0))?;
    let balance = info.map_or(U256::ZERO, |i| i.balance);
    Ok(PyBytes::new(py, &balance.to_be_bytes::<32>()))
}

/// The block `env` (as `RevmBlock` takes it) with the checks a call skips turned off (nonce,
/// sender-is-EOA, block gas limit, the EIP-7825 cap), and the blob gas price it pays.
pub(super) fn call_env(
    forks: Vec<(String, String, u64)>,
    chain_id: u64,
    env: &Bound<'_, PyTuple>,
    blob: Option<(u64, u64, u64, u64, u64)>,
    zero_blob_fee: bool,
    blob_price: Option<u128>,
) -> PyResult<EvmEnv> {
    let (_spec, _header, mut evm_env): (_, _, EvmEnv) = chain_env(forks, chain_id, None, env, blob)?;
    let cfg = &mut evm_env.cfg_env;
    cfg.disable_nonce_check = true;
    cfg.disable_eip3607 = true;
    cfg.disable_block_gas_limit = true;
    cfg.tx_gas_limit_cap = Some(u64::MAX);
    if zero_blob_fee || blob_price.is_some() {
        if let Some(b) = evm_env.block_env.blob_excess_gas_and_price.as_mut() {
            b.blob_gasprice = if zero_blob_fee { 0 } else { blob_price.unwrap_or(0) };
        }
    }
    Ok(evm_env)
}

/// The message `(sender, to|None, value32, data, gas, gas_price, access_list, blob_hashes|None,
/// blob_fee_cap)` as a tx, and its recipient.
pub(super) fn call_tx(message: &Bound<'_, PyTuple>, chain_id: u64) -> PyResult<(TxEnv, Option<Address>)> {
    let (sender, to, value, data, gas, gas_price, access_list, blob_hashes, blob_fee_cap): (
        Vec<u8>, Option<Vec<u8>>, Vec<u8>, Vec<u8>, u64, u128, Option<Vec<(Vec<u8>, Vec<Vec<u8>>)>>, Option<Vec<Vec<u8>>>, u128,
    ) = message.extract()?;
    if sender.len() != 20 || to.as_ref().is_some_and(|t| t.len() != 20) || value.len() != 32 {
        return Err(PyValueError::new_err("bad call message"));
    }
    let to = to.map(|t| Address::from_slice(&t));
    let mut tx = TxEnv {
        tx_type: 0,
        caller: Address::from_slice(&sender),
        gas_limit: gas,
        gas_price,
        kind: match to {
            Some(t) => TxKind::Call(t),
            None => TxKind::Create,
        },
        value: U256::from_be_slice(&value),
        data: Bytes::from(data),
        nonce: 0,
        chain_id: Some(chain_id),
        ..Default::default()
    };
    if let Some(list) = access_list {
        tx.tx_type = 1;
        tx.access_list = AccessList(
            list.into_iter()
                .map(|(a, keys)| AccessListItem {
                    address: Address::from_slice(&a),
                    storage_keys: keys.iter().map(|k| B256::from_slice(k)).collect(),
                })
                .collect(),
        );
    }
    if let Some(hashes) = blob_hashes {
        tx.tx_type = 3;
        tx.gas_priority_fee = Some(gas_price);
        tx.blob_hashes = hashes.iter().map(|h| B256::from_slice(h)).collect();
        tx.max_fee_per_blob_gas = blob_fee_cap;
    }
    Ok((tx, to))
}

/// When a call of `timeout` seconds from now must stop.
pub(super) fn deadline_after(timeout: Option<f64>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)))
}

/// A refused transact: missing state is its own error (Python says which block lacks it).
pub(super) fn transact_error(e: impl std::fmt::Display) -> PyErr {
    let msg = e.to_string();
    if msg.contains("missing trie node") || msg.contains("missing code") || msg.contains("state read failed") {
        EvmStateError::new_err(msg)
    } else {
        PyValueError::new_err(msg)
    }
}

/// `(status, output, gas_used, peak_gas, error, opcode, stack_len, *extra)`: status is "ok",
/// "revert", "halt" (error names revm's halt reason) or "timeout".
pub(super) fn outcome_tuple<'py>(
    py: Python<'py>,
    result: ExecutionResult<HaltReason>,
    timed_out: bool,
    opcode: u8,
    stack_len: usize,
    extra: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (status, output, gas_info, error): (&str, Bytes, _, String) = match result {
        ExecutionResult::Success { gas, output, .. } => ("ok", output.into_data(), gas, String::new()),
        ExecutionResult::Revert { gas, output, .. } => ("revert", output, gas, String::new()),
        ExecutionResult::Halt { reason, gas, .. } => ("halt", Bytes::new(), gas, halt_name(&reason)),
    };
    let status = if timed_out { "timeout" } else { status };
    let used = gas_info.tx_gas_used();
    let peak = gas_info.total_gas_spent().max(gas_info.floor_gas());
    let mut items = vec![
        status.into_pyobject(py)?.into_any(),
        PyBytes::new(py, &output).into_any(),
        used.into_pyobject(py)?.into_any(),
        peak.into_pyobject(py)?.into_any(),
        error.into_pyobject(py)?.into_any(),
        opcode.into_pyobject(py)?.into_any(),
        stack_len.into_pyobject(py)?.into_any(),
    ];
    items.extend(extra);
    PyTuple::new(py, items)
}

/// A call's view of one block's post-state.
#[pyclass(unsendable, module = "ethnode._rust")]
pub struct RevmCall {
    call: CallState,
}

#[pymethods]
impl RevmCall {
    #[new]
    fn new(getter: Py<PyAny>, state_root: &[u8], forks: Vec<(String, String, u64)>, chain_id: u64, block_hash: Py<PyAny>) -> PyResult<Self> {
        Ok(Self { call: CallState::open(getter, state_root, forks, chain_id, block_hash)? })
    }

    /// geth `StateOverride` for one account (see `overlay.rs`); before `run`.
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

    /// An overridden address: no longer a precompile; the one it held moves to `move_to`, if
    /// given (geth `movePrecompileToAddress`); `gets_code`: the override gives it code.
    /// Call in ascending address order, before `run` (see `overlay::relocate_precompiles`).
    #[pyo3(signature = (address, move_to=None, gets_code=false))]
    fn override_precompile(&mut self, address: &[u8], move_to: Option<Vec<u8>>, gets_code: bool) -> PyResult<()> {
        self.call.override_precompile(address, move_to, gets_code)
    }

    /// The balance of `address` (32 bytes, big-endian), for the pre-call checks.
    fn balance<'py>(&mut self, py: Python<'py>, address: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        self.call.balance(py, address)
    }

    /// Run the message `(sender, to|None, value32, data, gas, gas_price, access_list,
    /// blob_hashes|None, blob_fee_cap)` in the block `env` (as `RevmBlock` takes it).
    ///
    /// Returns `(status, output, gas_used, peak_gas, error, opcode, stack_len)` (`outcome_tuple`).
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
        let inspector = CallInspector { deadline: deadline_after(timeout), steps: 0, timed_out: false, opcode: 0, stack_len: 0 };
        let mut evm = EthEvmFactory::default().create_evm_with_inspector(db, evm_env, inspector);
        relocate_precompiles(evm.precompiles_mut(), self.call.precompile_moves());
        let outcome = evm.transact(tx);
        let insp = evm.inspector();
        let result = outcome.map_err(transact_error)?.result;
        outcome_tuple(py, result, insp.timed_out, insp.opcode, insp.stack_len, None)
    }
}

/// revm's halt reason as a stable name (Python words it as geth does).
pub(super) fn halt_name(reason: &HaltReason) -> String {
    match reason {
        HaltReason::OutOfGas(OutOfGasError::Basic) => "out_of_gas",
        HaltReason::OutOfGas(_) => "out_of_gas",
        HaltReason::OpcodeNotFound => "opcode_not_found",
        HaltReason::InvalidFEOpcode => "invalid_fe",
        HaltReason::InvalidJump => "invalid_jump",
        HaltReason::NotActivated => "not_activated",
        HaltReason::StackUnderflow => "stack_underflow",
        HaltReason::StackOverflow => "stack_overflow",
        HaltReason::OutOfOffset => "out_of_offset",
        HaltReason::CreateCollision => "create_collision",
        HaltReason::CreateContractSizeLimit => "code_size_limit",
        HaltReason::CreateContractStartingWithEF => "starts_with_ef",
        HaltReason::CreateInitCodeSizeLimit => "initcode_size_limit",
        HaltReason::StateChangeDuringStaticCall | HaltReason::CallNotAllowedInsideStatic => "write_protection",
        HaltReason::OutOfFunds => "out_of_funds",
        HaltReason::CallTooDeep => "call_too_deep",
        HaltReason::NonceOverflow => "nonce_overflow",
        other => return format!("other: {other}"),
    }
    .to_string()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RevmCall>()
}
