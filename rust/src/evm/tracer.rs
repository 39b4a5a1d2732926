//! debug_trace* on revm: a block re-executed on its parent's state, its chosen txs under an
//! inspector that records what geth's `callTracer` and `prestateTracer` need.
//!
//! The block runs as `RevmBlock` runs it (same executor, system calls first), so a traced tx
//! sees exactly the state geth's `stateAtTransaction` gives it. For each traced tx this side
//! reports raw facts only: the call frames (enter order, parent index, gas, output, revm's
//! outcome and the frame's last opcode so Python can word the error as geth does, logs with
//! their block-wide index as geth's StateDB numbers them) and the accounts and slots geth's
//! prestate tracer looks up, with their values before and after the tx. Python shapes both
//! into geth's JSON (`ethnode/ethapi/tracers.py`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Header, TxEnvelope};
use alloy_eips::Decodable2718;
use alloy_evm::block::BlockExecutor;
use alloy_evm::eth::receipt_builder::AlloyReceiptBuilder;
use alloy_evm::eth::{EthBlockExecutionCtx, EthBlockExecutor, EthEvmFactory};
use alloy_evm::precompiles::PrecompilesMap;
use alloy_evm::{EthEvm, Evm, EvmFactory};
use alloy_primitives::{Address, Bytes, Log, B256, U256};
use alloy_rlp::Decodable;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use revm::context_interface::result::HaltReason;
use revm::interpreter::SuccessOrHalt;
use revm::context_interface::ContextTr;
use revm::context_interface::CreateScheme;
use revm::database::State;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::interpreter_types::{InputsTr, Jumps};
use revm::interpreter::{CallInputs, CallOutcome, CallScheme, CreateInputs, CreateOutcome, InstructionResult, Interpreter, InterpreterAction};
use revm::Inspector;

use super::block::{chain_env, ChainSpec, EvmStateError};
use super::call::halt_name;
use super::nodes::NodeDb;
use super::state::TrieState;

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

/// One call frame as geth's `OnEnter`/`OnExit` see it.
struct Frame {
    kind: &'static str,
    parent: i64,
    from: Address,
    to: Address,
    value: Option<U256>,
    gas: u64,
    gas_used: u64,
    input: Bytes,
    output: Bytes,
    outcome: String, // "" ok, "revert", else a halt name
    opcode: u8,
    stack_len: usize,
    logs: Vec<(Log, u64, usize)>, // log, block-wide index, position among the frame's calls
    children: usize,
    live_logs_at_entry: u64,
}

#[derive(Default)]
pub(super) struct TraceInspector {
    active: bool,
    deadline: Option<Instant>,
    steps: u64,
    timed_out: bool,
    frames: Vec<Frame>,
    stack: Vec<usize>,
    live_logs: u64,
    accounts: BTreeSet<Address>,
    pending: Vec<Lookup>,
    call_targets: BTreeSet<Address>,
    slots: BTreeSet<(Address, B256)>,
    created: BTreeSet<Address>,
    destructed: BTreeSet<Address>,
}

/// A lookup geth's prestate tracer makes in `OnOpcode`, which runs only once the opcode's gas is
/// paid: kept pending until the instruction did not fail (an SSTORE out of gas looks up nothing).
enum Lookup {
    Slot(Address, B256),
    Account(Address, bool),
    Destruct(Address),
}

fn word_address(word: &U256) -> Address {
    Address::from_slice(&word.to_be_bytes::<32>()[12..])
}

impl TraceInspector {
    /// An inspector tracing from the first frame, with `lookups` already looked up (geth OnTxStart).
    pub(super) fn tracing(deadline: Option<Instant>, lookups: &[Vec<u8>]) -> Self {
        let mut insp = TraceInspector { active: true, deadline, ..Default::default() };
        insp.accounts.extend(lookups.iter().filter(|a| a.len() == 20).map(|a| Address::from_slice(a)));
        insp
    }

    fn enter(&mut self, kind: &'static str, from: Address, to: Address, value: Option<U256>, gas: u64, input: Bytes) {
        let parent = self.stack.last().map_or(-1, |p| *p as i64);
        if let Some(p) = self.stack.last() {
            self.frames[*p].children += 1;
        }
        self.frames.push(Frame {
            kind, parent, from, to, value, gas, gas_used: 0, input, output: Bytes::new(), outcome: String::new(),
            opcode: 0, stack_len: 0, logs: Vec::new(), children: 0, live_logs_at_entry: self.live_logs,
        });
        self.stack.push(self.frames.len() - 1);
    }

    fn exit(&mut self, result: InstructionResult, output: &Bytes, gas_used: u64) {
        let Some(i) = self.stack.pop() else { return };
        let frame = &mut self.frames[i];
        frame.gas_used = gas_used;
        frame.output = output.clone();
        frame.outcome = if result.is_ok() {
            String::new()
        } else if result.is_revert() {
            "revert".to_string()
        } else {
            match SuccessOrHalt::<HaltReason>::from(result) {
                SuccessOrHalt::Halt(reason) => halt_name(&reason),
                _ => format!("other: {result:?}"),
            }
        };
        if !result.is_ok() {
            self.live_logs = frame.live_logs_at_entry; // geth's StateDB drops the frame's logs
        }
    }
}

impl<CTX: ContextTr> Inspector<CTX, EthInterpreter> for TraceInspector {
    fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, _context: &mut CTX) {
        if !self.active {
            return;
        }
        let op = interp.bytecode.opcode();
        let data = interp.stack.data();
        let n = data.len();
        if let Some(top) = self.stack.last() {
            let f = &mut self.frames[*top];
            f.opcode = op;
            f.stack_len = n;
        }
        self.pending.clear();
        match op {
            SLOAD | SSTORE if n >= 1 => {
                let slot = B256::from(data[n - 1].to_be_bytes::<32>());
                self.pending.push(Lookup::Slot(interp.input.target_address(), slot));
            }
            BALANCE | EXTCODESIZE | EXTCODECOPY | EXTCODEHASH | SELFDESTRUCT if n >= 1 => {
                self.pending.push(Lookup::Account(word_address(&data[n - 1]), false));
                if op == SELFDESTRUCT {
                    self.pending.push(Lookup::Destruct(interp.input.target_address()));
                }
            }
            CALL | CALLCODE | DELEGATECALL | STATICCALL if n >= 5 => {
                self.pending.push(Lookup::Account(word_address(&data[n - 2]), true));
            }
            _ => {}
        }
        self.steps += 1;
        if self.timed_out || (self.steps & 0x3ff == 0 && self.deadline.is_some_and(|d| Instant::now() > d)) {
            self.timed_out = true;
            interp.halt_oog();
        }
    }

    fn step_end(&mut self, interp: &mut Interpreter<EthInterpreter>, _context: &mut CTX) {
        if self.pending.is_empty() {
            return;
        }
        let failed = matches!(&interp.bytecode.action, Some(InterpreterAction::Return(r)) if !r.result.is_ok() && !r.result.is_revert());
        for lookup in std::mem::take(&mut self.pending) {
            if failed {
                continue;
            }
            match lookup {
                Lookup::Slot(a, s) => {
                    self.slots.insert((a, s));
                }
                Lookup::Account(a, call) => {
                    self.accounts.insert(a);
                    if call {
                        self.call_targets.insert(a);
                    }
                }
                Lookup::Destruct(a) => {
                    self.destructed.insert(a);
                }
            }
        }
    }

    fn selfdestruct(&mut self, contract: Address, target: Address, value: U256) {
        if self.active {
            // geth's opSelfdestruct enters and leaves a frame of its own.
            self.enter("SELFDESTRUCT", contract, target, Some(value), 0, Bytes::new());
            self.exit(InstructionResult::Stop, &Bytes::new(), 0);
        }
    }

    fn log(&mut self, _context: &mut CTX, log: Log) {
        if !self.active {
            return;
        }
        let index = self.live_logs;
        self.live_logs += 1;
        if let Some(top) = self.stack.last() {
            let f = &mut self.frames[*top];
            let position = f.children;
            f.logs.push((log, index, position));
        }
    }

    fn call(&mut self, context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        if self.active {
            let kind = match inputs.scheme {
                CallScheme::Call => "CALL",
                CallScheme::CallCode => "CALLCODE",
                CallScheme::DelegateCall => "DELEGATECALL",
                CallScheme::StaticCall => "STATICCALL",
            };
            let value = if matches!(inputs.scheme, CallScheme::StaticCall) { None } else { Some(inputs.value.get()) };
            let input = inputs.input.bytes(context);
            // geth's from/to: the running contract and the address called (for DELEGATECALL revm
            // keeps the original caller in `caller`; the running contract is the target).
            let (from, to) = match inputs.scheme {
                CallScheme::DelegateCall => (inputs.target_address, inputs.bytecode_address),
                CallScheme::CallCode => (inputs.caller, inputs.bytecode_address),
                _ => (inputs.caller, inputs.target_address),
            };
            self.enter(kind, from, to, value, inputs.gas_limit, input);
        }
        None
    }

    fn call_end(&mut self, _context: &mut CTX, _inputs: &CallInputs, outcome: &mut CallOutcome) {
        if self.active {
            let r = &outcome.result;
            self.exit(r.result, &r.output, r.gas.total_gas_spent());
        }
    }

    fn create(&mut self, _context: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        if self.active {
            let kind = match inputs.scheme() {
                CreateScheme::Create2 { .. } => "CREATE2",
                _ => "CREATE",
            };
            self.enter(kind, inputs.caller(), Address::ZERO, Some(inputs.value()), inputs.gas_limit(), inputs.init_code().clone());
        }
        None
    }

    fn create_end(&mut self, _context: &mut CTX, _inputs: &CreateInputs, outcome: &mut CreateOutcome) {
        if self.active {
            if let (Some(addr), Some(top)) = (outcome.address, self.stack.last()) {
                self.frames[*top].to = addr;
                self.accounts.insert(addr);
                self.created.insert(addr);
            }
            let r = &outcome.result;
            self.exit(r.result, &r.output, r.gas.total_gas_spent());
        }
    }
}

type TraceEvm = EthEvm<State<TrieState>, TraceInspector, PrecompilesMap>;
type TraceExecutor = EthBlockExecutor<'static, TraceEvm, Arc<ChainSpec>, AlloyReceiptBuilder>;

/// A block re-executed for tracing (see the module docs). Not shareable across threads.
#[pyclass(unsendable, module = "ethnode._rust")]
pub struct RevmTraceBlock {
    // Field order matters: `executor` borrows `_ommers` and must be dropped first.
    executor: Option<TraceExecutor>,
    _ommers: Box<[Header]>,
    applied: usize,
    block_logs: u64,
    timeout: Option<f64>,
}

fn account_tuple<'py>(py: Python<'py>, db: &mut State<TrieState>, addr: &Address) -> PyResult<(Bound<'py, PyBytes>, u64, Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let info = revm::Database::basic(db, *addr).map_err(|e| EvmStateError::new_err(e.to_string()))?;
    let info = info.unwrap_or_default();
    let code = match &info.code {
        Some(c) => c.original_bytes(),
        None => revm::Database::code_by_hash(db, info.code_hash).map_err(|e| EvmStateError::new_err(e.to_string()))?.original_bytes(),
    };
    Ok((PyBytes::new(py, &info.balance.to_be_bytes::<32>()), info.nonce, PyBytes::new(py, &code), PyBytes::new(py, info.code_hash.as_slice())))
}

#[pymethods]
impl RevmTraceBlock {
    /// Open the block on `parent_root`, as `RevmBlock(...)` takes it.
    #[new]
    #[pyo3(signature = (getter, parent_root, forks, chain_id, deposit_contract, env, blob, block_hash, ommers, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        getter: Py<PyAny>,
        parent_root: &[u8],
        forks: Vec<(String, String, u64)>,
        chain_id: u64,
        deposit_contract: Option<Vec<u8>>,
        env: &Bound<'_, PyTuple>,
        blob: Option<(u64, u64, u64, u64, u64)>,
        block_hash: Py<PyAny>,
        ommers: Vec<Vec<u8>>,
        timeout: Option<f64>,
    ) -> PyResult<Self> {
        if parent_root.len() != 32 {
            return Err(PyValueError::new_err("parent root must be 32 bytes"));
        }
        let (spec, header, evm_env) = chain_env(forks, chain_id, deposit_contract, env, blob)?;
        let node_db = Arc::new(NodeDb::new(getter));
        let trie_state = TrieState::new(node_db, B256::from_slice(parent_root), block_hash).map_err(|e| EvmStateError::new_err(e.to_string()))?;
        let db = State::builder().with_database(trie_state).build();
        let inspector = TraceInspector::default();
        let evm = EthEvmFactory::default().create_evm_with_inspector(db, evm_env, inspector);
        let mut decoded = Vec::with_capacity(ommers.len());
        for raw in ommers {
            decoded.push(Header::decode(&mut raw.as_slice()).map_err(|e| PyValueError::new_err(format!("bad uncle header: {e}")))?);
        }
        let ommers: Box<[Header]> = decoded.into_boxed_slice();
        // SAFETY: as in RevmBlock: the slice lives in `_ommers`, never moves, and outlives `executor`.
        let ommers_ref: &'static [Header] = unsafe { std::mem::transmute::<&[Header], &'static [Header]>(&ommers) };
        let ctx = EthBlockExecutionCtx {
            parent_hash: header.parent_hash,
            parent_beacon_block_root: header.parent_beacon_block_root,
            ommers: ommers_ref,
            withdrawals: None,
            extra_data: Bytes::new(),
            tx_count_hint: None,
            slot_number: None,
        };
        let mut executor = EthBlockExecutor::new(evm, ctx, spec, AlloyReceiptBuilder::default());
        executor.apply_pre_execution_changes().map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self { executor: Some(executor), _ommers: ommers, applied: 0, block_logs: 0, timeout })
    }

    /// Run `txs` (EIP-2718 encodings, sent by `senders`) in order; trace those whose `traced`
    /// flag is set, looking up `lookups[i]` (sender, recipient, coinbase, authorities) first.
    ///
    /// Returns, per traced tx, `(status, gas_used, output, frames, accounts, slots, created,
    /// destructed, timed_out)` or a string when the tx could not be applied. A frame is
    /// `(kind, parent, from, to, value|None, gas, gas_used, input, output, outcome, opcode,
    /// stack_len, logs)`; an account `(address, pre, post)` with each side `(balance32, nonce,
    /// code, code_hash)`; a slot `(address, slot, pre, post)`.
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        txs: Vec<Vec<u8>>,
        senders: Vec<Vec<u8>>,
        traced: Vec<bool>,
        lookups: Vec<Vec<Vec<u8>>>,
    ) -> PyResult<Bound<'py, PyList>> {
        if txs.len() != senders.len() || txs.len() != traced.len() || txs.len() != lookups.len() {
            return Err(PyValueError::new_err("txs, senders, traced and lookups differ in length"));
        }
        let executor = self.executor.as_mut().ok_or_else(|| PyRuntimeError::new_err("block already traced"))?;
        let out = PyList::empty(py);
        for i in 0..txs.len() {
            let tx = TxEnvelope::decode_2718(&mut txs[i].as_slice()).map_err(|e| PyValueError::new_err(format!("tx decoding failed: {e}")))?;
            if senders[i].len() != 20 {
                return Err(PyValueError::new_err("sender must be 20 bytes"));
            }
            let recovered = Recovered::new_unchecked(tx, Address::from_slice(&senders[i]));
            {
                let insp = executor.evm_mut().inspector_mut();
                // geth's timeout bounds each traced tx, not the replay before it.
                let deadline = self.timeout.filter(|_| traced[i]).map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
                *insp = TraceInspector { active: traced[i], deadline, live_logs: self.block_logs, ..Default::default() };
                for a in &lookups[i] {
                    if a.len() == 20 {
                        insp.accounts.insert(Address::from_slice(a));
                    }
                }
            }
            let result = match executor.execute_transaction_without_commit(recovered.as_recovered_ref()) {
                Ok(r) => r,
                Err(e) => {
                    let msg = e.to_string();
                    if msg.contains("missing trie node") || msg.contains("missing code") || msg.contains("state read failed") {
                        return Err(EvmStateError::new_err(msg));
                    }
                    out.append(msg)?;
                    return Ok(out);
                }
            };
            let logs_now = result.result.result.logs().len() as u64;
            if traced[i] {
                let insp = std::mem::take(executor.evm_mut().inspector_mut());
                let to = lookups[i].get(1).filter(|a| a.len() == 20).map(|a| Address::from_slice(a));
                let db = executor.evm_mut().db_mut();
                out.append(report(py, insp, &result.result.state, db, &result.result.result, to)?)?;
            }
            executor.commit_transaction(result);
            self.applied += 1;
            self.block_logs += logs_now;
        }
        Ok(out)
    }
}


/// One traced tx as Python takes it (see `RevmTraceBlock.run`): `state` is the tx's changes, not
/// yet committed to `db`, so `db` still reads the values from before the tx.
pub(super) fn report<'py>(
    py: Python<'py>,
    insp: TraceInspector,
    state: &revm::state::EvmState,
    db: &mut State<TrieState>,
    result: &revm::context_interface::result::ExecutionResult<HaltReason>,
    to: Option<Address>,
) -> PyResult<Bound<'py, PyTuple>> {
    // Delegation targets (EIP-7702) of the recipients are looked up too, as geth does.
    let mut accounts = insp.accounts.clone();
    let mut targets: Vec<Address> = insp.call_targets.iter().copied().collect();
    if let Some(to) = to {
        targets.push(to);
    }
    for a in targets {
        let code = match state.get(&a).and_then(|acc| acc.info.code.clone()) {
            Some(c) => c.original_bytes(),
            None => {
                let info = revm::Database::basic(db, a).map_err(|e| EvmStateError::new_err(e.to_string()))?.unwrap_or_default();
                match info.code {
                    Some(c) => c.original_bytes(),
                    None => revm::Database::code_by_hash(db, info.code_hash).map_err(|e| EvmStateError::new_err(e.to_string()))?.original_bytes(),
                }
            }
        };
        if code.len() == 23 && code.starts_with(&[0xef, 0x01, 0x00]) {
            accounts.insert(Address::from_slice(&code[3..]));
        }
    }
    let acc_list = PyList::empty(py);
    for a in &accounts {
        let pre = account_tuple(py, db, a)?;
        let post = match state.get(a) {
            Some(acc) => {
                let code = match &acc.info.code {
                    Some(c) => c.original_bytes(),
                    None => revm::Database::code_by_hash(db, acc.info.code_hash).map_err(|e| EvmStateError::new_err(e.to_string()))?.original_bytes(),
                };
                let gone = acc.is_selfdestructed();
                let (bal, nonce, code, hash) = if gone {
                    (U256::ZERO, 0, Bytes::new(), revm::primitives::KECCAK_EMPTY)
                } else {
                    (acc.info.balance, acc.info.nonce, code, acc.info.code_hash)
                };
                (PyBytes::new(py, &bal.to_be_bytes::<32>()), nonce, PyBytes::new(py, &code), PyBytes::new(py, hash.as_slice()))
            }
            None => account_tuple(py, db, a)?,
        };
        acc_list.append((PyBytes::new(py, a.as_slice()), pre, post))?;
    }
    let slot_list = PyList::empty(py);
    for (a, s) in &insp.slots {
        let key = U256::from_be_bytes(s.0);
        let pre = revm::Database::storage(db, *a, key).map_err(|e| EvmStateError::new_err(e.to_string()))?;
        let post = state.get(a).and_then(|acc| {
            if acc.is_selfdestructed() { Some(U256::ZERO) } else { acc.storage.get(&key).map(|v| v.present_value) }
        }).unwrap_or(pre);
        slot_list.append((
            PyBytes::new(py, a.as_slice()), PyBytes::new(py, s.as_slice()),
            PyBytes::new(py, &pre.to_be_bytes::<32>()), PyBytes::new(py, &post.to_be_bytes::<32>()),
        ))?;
    }
    let frames = PyList::empty(py);
    for f in &insp.frames {
        let logs = PyList::empty(py);
        for (log, index, position) in &f.logs {
            let topics: Vec<Bound<'py, PyBytes>> = log.topics().iter().map(|t| PyBytes::new(py, t.as_slice())).collect();
            logs.append((PyBytes::new(py, log.address.as_slice()), topics, PyBytes::new(py, &log.data.data), *index, *position))?;
        }
        let value = f.value.map(|v| PyBytes::new(py, &v.to_be_bytes::<32>()));
        frames.append(PyTuple::new(py, [
            f.kind.into_pyobject(py)?.into_any(),
            f.parent.into_pyobject(py)?.into_any(),
            PyBytes::new(py, f.from.as_slice()).into_any(),
            PyBytes::new(py, f.to.as_slice()).into_any(),
            value.into_pyobject(py)?.into_any(),
            f.gas.into_pyobject(py)?.into_any(),
            f.gas_used.into_pyobject(py)?.into_any(),
            PyBytes::new(py, &f.input).into_any(),
            PyBytes::new(py, &f.output).into_any(),
            f.outcome.as_str().into_pyobject(py)?.into_any(),
            f.opcode.into_pyobject(py)?.into_any(),
            f.stack_len.into_pyobject(py)?.into_any(),
            logs.into_any(),
        ])?)?;
    }
    let r = result;
    let status = if r.is_success() { "ok" } else if matches!(r, revm::context_interface::result::ExecutionResult::Revert { .. }) { "revert" } else { "halt" };
    let created: Vec<Bound<'py, PyBytes>> = insp.created.iter().map(|a| PyBytes::new(py, a.as_slice())).collect();
    let destructed: Vec<Bound<'py, PyBytes>> = insp.destructed.iter().map(|a| PyBytes::new(py, a.as_slice())).collect();
    PyTuple::new(py, [
        status.into_pyobject(py)?.into_any(),
        r.gas().tx_gas_used().into_pyobject(py)?.into_any(),
        PyBytes::new(py, r.output().map(|o| o.as_ref()).unwrap_or(&[])).into_any(),
        frames.into_any(),
        acc_list.into_any(),
        slot_list.into_any(),
        created.into_pyobject(py)?.into_any(),
        destructed.into_pyobject(py)?.into_any(),
        pyo3::types::PyBool::new(py, insp.timed_out).to_owned().into_any(),
        match r {
            revm::context_interface::result::ExecutionResult::Halt { reason, .. } => halt_name(reason),
            _ => String::new(),
        }
        .into_pyobject(py)?
        .into_any(),
    ])
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RevmTraceBlock>()
}
