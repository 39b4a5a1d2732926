//! One block in execution: revm + alloy-evm's Ethereum block executor on ethnode's state.
//!
//! The seam is batch-shaped: Python opens a block (`RevmBlock(...)`), applies a batch of txs
//! (`apply`, one call for a whole imported block), then `finish`es it and receives the
//! receipts' parts, requests, the state root and the new trie nodes and code to write in the
//! block's own batch. Nothing is stored here.

use std::borrow::Cow;
use std::sync::Arc;

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Header, TxEnvelope};
use alloy_eips::eip4895::Withdrawal;
use alloy_eips::eip7840::BlobParams;
use alloy_eips::Decodable2718;
use alloy_evm::block::BlockExecutor;
use alloy_evm::eth::receipt_builder::AlloyReceiptBuilder;
use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_evm::eth::{EthBlockExecutionCtx, EthBlockExecutor, EthEvmFactory};
use alloy_evm::precompiles::PrecompilesMap;
use alloy_evm::{EthEvm, Evm, EvmEnv, EvmFactory};
use alloy_hardforks::{EthereumChainHardforks, EthereumHardfork, EthereumHardforks, ForkCondition};
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_rlp::Decodable;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use revm::database::states::bundle_state::BundleRetention;
use revm::database::State;
use revm::inspector::NoOpInspector;

use super::nodes::NodeDb;
use super::state::TrieState;

pyo3::create_exception!(_rust, EvmStateError, PyRuntimeError, "State the block needs is missing from the database.");
pyo3::create_exception!(_rust, EvmTxError, PyValueError, "A tx that cannot be applied here (state unchanged).");
pyo3::create_exception!(_rust, EvmBlockError, PyValueError, "The block is invalid (a system call failed, ...).");

/// A chain's fork schedule and deposit contract, as alloy-evm asks for them.
#[derive(Debug, Clone)]
pub struct ChainSpec {
    forks: EthereumChainHardforks,
    deposit_contract: Option<Address>,
}

impl EthereumHardforks for ChainSpec {
    fn ethereum_fork_activation(&self, fork: EthereumHardfork) -> ForkCondition {
        self.forks.ethereum_fork_activation(fork)
    }
}

impl EthExecutorSpec for ChainSpec {
    fn deposit_contract_address(&self) -> Option<Address> {
        self.deposit_contract
    }
}

fn fork_named(name: &str) -> PyResult<EthereumHardfork> {
    use EthereumHardfork::*;
    Ok(match name {
        "frontier" => Frontier,
        "homestead" => Homestead,
        "dao" => Dao,
        "tangerine" => Tangerine,
        "spurious_dragon" => SpuriousDragon,
        "byzantium" => Byzantium,
        "constantinople" => Constantinople,
        "petersburg" => Petersburg,
        "istanbul" => Istanbul,
        "muir_glacier" => MuirGlacier,
        "berlin" => Berlin,
        "london" => London,
        "arrow_glacier" => ArrowGlacier,
        "gray_glacier" => GrayGlacier,
        "paris" => Paris,
        "shanghai" => Shanghai,
        "cancun" => Cancun,
        "prague" => Prague,
        "osaka" => Osaka,
        "bpo1" => Bpo1,
        "bpo2" => Bpo2,
        "bpo3" => Bpo3,
        "bpo4" => Bpo4,
        "bpo5" => Bpo5,
        "amsterdam" => Amsterdam,
        other => return Err(PyValueError::new_err(format!("unknown fork {other:?}"))),
    })
}

fn b256(b: &[u8], what: &str) -> PyResult<B256> {
    if b.len() != 32 {
        return Err(PyValueError::new_err(format!("{what} must be 32 bytes")));
    }
    Ok(B256::from_slice(b))
}

fn address(b: &[u8], what: &str) -> PyResult<Address> {
    if b.len() != 20 {
        return Err(PyValueError::new_err(format!("{what} must be 20 bytes")));
    }
    Ok(Address::from_slice(b))
}


/// The fork schedule, the provisional header and revm's environment of one block.
pub fn chain_env(
    forks: Vec<(String, String, u64)>,
    chain_id: u64,
    deposit_contract: Option<Vec<u8>>,
    env: &Bound<'_, PyTuple>,
    blob: Option<(u64, u64, u64, u64, u64)>,
) -> PyResult<(Arc<ChainSpec>, Header, EvmEnv)> {
        let (number, timestamp, gas_limit, fee_recipient, difficulty): (u64, u64, u64, Vec<u8>, u128) =
            env.get_slice(0, 5).extract()?;
        let (mix_digest, base_fee, excess_blob_gas, beacon_root, parent_hash, merged): (
            Vec<u8>, Option<u64>, Option<u64>, Option<Vec<u8>>, Vec<u8>, bool,
        ) = env.get_slice(5, 11).extract()?;
        let difficulty = U256::from(difficulty);
        let mut schedule = Vec::with_capacity(forks.len() + 1);
        for (name, kind, at) in &forks {
            let fork = fork_named(name)?;
            let cond = match kind.as_str() {
                "block" => ForkCondition::Block(*at),
                "time" => ForkCondition::Timestamp(*at),
                _ => return Err(PyValueError::new_err(format!("fork kind must be block or time, not {kind:?}"))),
            };
            schedule.push((fork, cond));
        }
        // Whether this block is past the merge is known from its difficulty (as geth's
        // IsMerge after the fact); alloy-evm asks by block number, so place Paris here.
        schedule.push((EthereumHardfork::Paris, if merged { ForkCondition::Block(0) } else { ForkCondition::Never }));
        let spec = Arc::new(ChainSpec {
            forks: EthereumChainHardforks::new(schedule),
            deposit_contract: deposit_contract.map(|a| address(&a, "deposit contract")).transpose()?,
        });

        let fee_recipient = address(&fee_recipient, "fee recipient")?;
        let header = Header {
            number,
            timestamp,
            gas_limit,
            beneficiary: fee_recipient,
            difficulty,
            mix_hash: b256(&mix_digest, "mix digest")?,
            base_fee_per_gas: base_fee,
            excess_blob_gas,
            parent_beacon_block_root: beacon_root.as_deref().map(|b| b256(b, "beacon root")).transpose()?,
            parent_hash: b256(&parent_hash, "parent hash")?,
            ..Default::default()
        };
        let blob_params = blob.map(|(target, max, fraction, per_tx, base_cost)| BlobParams {
            target_blob_count: target,
            max_blob_count: max,
            update_fraction: fraction as u128,
            min_blob_fee: 1,
            max_blobs_per_tx: per_tx,
            blob_base_cost: base_cost,
        });
        let mut evm_env = EvmEnv::for_eth_block(&header, spec.as_ref(), chain_id, blob_params);
        if let Some(p) = &blob_params {
            evm_env.cfg_env.blob_base_fee_update_fraction = Some(p.update_fraction as u64);
        }

        Ok((spec, header, evm_env))
}

type BlockEvm = EthEvm<State<TrieState>, NoOpInspector, PrecompilesMap>;
type Executor = EthBlockExecutor<'static, BlockEvm, Arc<ChainSpec>, AlloyReceiptBuilder>;

/// A block being executed (see the module docs). Not shareable across threads.
#[pyclass(unsendable, module = "ethnode._rust")]
pub struct RevmBlock {
    // Field order matters: `executor` borrows `_ommers` and must be dropped first.
    executor: Option<Executor>,
    _ommers: Box<[Header]>,
    applied: usize,
    node_db: Arc<NodeDb>,
}

#[pymethods]
impl RevmBlock {
    /// Open a block on `parent_root`.
    ///
    /// `forks`: (fork name, "block"|"time", activation); `env`: (number, timestamp, gas_limit,
    /// fee_recipient, difficulty, mix_digest, base_fee|None, excess_blob_gas|None,
    /// parent_beacon_root|None, parent_hash, merged); `blob`: (target, max, update_fraction,
    /// max_per_tx, base_cost) of the block's fork, or None before Cancun.
    #[new]
    #[pyo3(signature = (getter, parent_root, forks, chain_id, deposit_contract, env, blob, block_hash, ommers))]
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
    ) -> PyResult<Self> {
        let (spec, header, evm_env) = chain_env(forks, chain_id, deposit_contract, env, blob)?;
        let node_db = Arc::new(NodeDb::new(getter));
        let trie_state = TrieState::new(node_db.clone(), b256(parent_root, "parent root")?, block_hash)
            .map_err(|e| EvmStateError::new_err(e.0))?;
        // EIP-7928: from Amsterdam the block's access list is recorded while it executes.
        let amsterdam = evm_env.cfg_env.spec >= revm::primitives::hardfork::SpecId::AMSTERDAM;
        let db = State::builder().with_database(trie_state).with_bundle_update().with_bal_builder_if(amsterdam).build();
        let evm = EthEvmFactory::default().create_evm(db, evm_env);

        let mut decoded = Vec::with_capacity(ommers.len());
        for raw in ommers {
            decoded.push(Header::decode(&mut raw.as_slice()).map_err(|e| PyValueError::new_err(format!("bad uncle header: {e}")))?);
        }
        let ommers: Box<[Header]> = decoded.into_boxed_slice();
        // SAFETY: the slice lives in `_ommers`, a heap allocation that never moves or changes,
        // and `executor` (declared first) is dropped before it.
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
        executor.apply_pre_execution_changes().map_err(|e| block_error(&e.to_string()))?;
        Ok(Self { executor: Some(executor), _ommers: ommers, applied: 0, node_db })
    }

    /// Apply `txs` (EIP-2718 encodings) sent by `senders`, in order.
    ///
    /// Returns one entry per tx tried: `(status, cumulative_gas, logs)` for an applied tx, or
    /// the reason string for one that could not be applied (state unchanged). Without
    /// `skip_invalid` the first such tx stops the batch (its reason is the last entry).
    #[pyo3(signature = (txs, senders, skip_invalid=false))]
    fn apply<'py>(&mut self, py: Python<'py>, txs: Vec<Vec<u8>>, senders: Vec<Vec<u8>>, skip_invalid: bool) -> PyResult<Bound<'py, PyList>> {
        if txs.len() != senders.len() {
            return Err(PyValueError::new_err("txs and senders differ in length"));
        }
        let executor = self.executor.as_mut().ok_or_else(|| PyRuntimeError::new_err("block already finished"))?;
        let out = PyList::empty(py);
        for (raw, sender) in txs.iter().zip(senders.iter()) {
            let tx = match TxEnvelope::decode_2718(&mut raw.as_slice()) {
                Ok(tx) => tx,
                Err(e) => {
                    out.append(format!("tx decoding failed: {e}"))?;
                    if skip_invalid { continue } else { break }
                }
            };
            let recovered = Recovered::new_unchecked(tx, address(sender, "sender")?);
            match executor.execute_transaction_with_index(recovered.as_recovered_ref(), self.applied) {
                Ok(_) => {
                    self.applied += 1;
                    let receipt = executor.receipts().last().expect("a receipt per applied tx");
                    out.append(receipt_tuple(py, receipt)?)?;
                }
                Err(e) => {
                    let msg = e.to_string();
                    if let Some(state_err) = state_error_text(&msg) {
                        return Err(EvmStateError::new_err(state_err));
                    }
                    out.append(msg)?;
                    if !skip_invalid {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Finish the block: requests, withdrawals (`(index, validator, address, gwei)`), rewards,
    /// then the roots. Returns `(gas_used, blob_gas_used, requests, state_root, entries, bal)` where
    /// `requests` are the non-empty EIP-7685 requests (type byte + data) and `entries` the
    /// new trie nodes and code as `(hash, bytes)`, `bal` the RLP block access list (Amsterdam on).
    #[pyo3(signature = (withdrawals=None))]
    fn finish<'py>(&mut self, py: Python<'py>, withdrawals: Option<Vec<(u64, u64, Vec<u8>, u64)>>) -> PyResult<Bound<'py, PyTuple>> {
        let mut executor = self.executor.take().ok_or_else(|| PyRuntimeError::new_err("block already finished"))?;
        if let Some(ws) = withdrawals {
            let mut list = Vec::with_capacity(ws.len());
            for (index, validator_index, addr, amount) in ws {
                list.push(Withdrawal { index, validator_index, address: address(&addr, "withdrawal address")?, amount });
            }
            executor.ctx.withdrawals = Some(Cow::Owned(list));
        }
        let bal_index = self.applied as u64 + 1;
        executor.evm_mut().db_mut().bal_state.bal_index = revm::state::bal::BlockAccessIndex::new(bal_index);
        let (evm, result) = executor.finish().map_err(|e| {
            let msg = e.to_string();
            match state_error_text(&msg) {
                Some(s) => EvmStateError::new_err(s),
                None => block_error(&msg),
            }
        })?;
        let mut db = evm.into_db();
        let bal = db.take_built_alloy_bal().map(|bal| {
            let mut out = Vec::new();
            alloy_rlp::encode_list(&bal, &mut out);
            out
        });
        db.merge_transitions(BundleRetention::PlainState);
        let bundle = db.take_bundle();
        let state_root = db.database.commit(&bundle).map_err(|e| EvmStateError::new_err(e.0))?;
        let requests = PyList::empty(py);
        for r in result.requests.iter() {
            if r.len() > 1 {
                requests.append(PyBytes::new(py, r))?;
            }
        }
        let entries = PyList::empty(py);
        for (k, v) in self.node_db.take_written() {
            entries.append((PyBytes::new(py, k.as_slice()), PyBytes::new(py, &v)))?;
        }
        PyTuple::new(
            py,
            [
                result.gas_used.into_pyobject(py)?.into_any(),
                result.blob_gas_used.into_pyobject(py)?.into_any(),
                requests.into_any(),
                PyBytes::new(py, state_root.as_slice()).into_any(),
                entries.into_any(),
                match bal {
                    Some(b) => PyBytes::new(py, &b).into_any(),
                    None => py.None().into_bound(py),
                },
            ],
        )
    }
}

fn receipt_tuple<'py>(py: Python<'py>, receipt: &alloy_consensus::ReceiptEnvelope) -> PyResult<Bound<'py, PyTuple>> {
    let logs = PyList::empty(py);
    for log in receipt.logs() {
        let topics: Vec<Bound<'py, PyBytes>> = log.topics().iter().map(|t| PyBytes::new(py, t.as_slice())).collect();
        logs.append((PyBytes::new(py, log.address.as_slice()), topics, PyBytes::new(py, &log.data.data)))?;
    }
    PyTuple::new(
        py,
        [
            (receipt.status() as u8).into_pyobject(py)?.into_any(),
            receipt.cumulative_gas_used().into_pyobject(py)?.into_any(),
            logs.into_any(),
        ],
    )
}

/// A database failure inside an error message (missing nodes are our fault, not the block's).
fn state_error_text(msg: &str) -> Option<String> {
    ["missing trie node", "missing code", "state read failed", "bad account leaf", "bad storage value", "trie error"]
        .iter()
        .find(|m| msg.contains(*m))
        .map(|_| msg.to_string())
}

fn block_error(msg: &str) -> PyErr {
    EvmBlockError::new_err(msg.to_string())
}

/// revm's crate version, for `ethnode-fast version` and the import log line.
#[pyfunction]
pub fn revm_version() -> String {
    format!("revm {}, alloy-evm {}", env!("ETHNODE_REVM_VERSION"), env!("ETHNODE_ALLOY_EVM_VERSION"))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RevmBlock>()?;
    m.add_function(wrap_pyfunction!(revm_version, m)?)?;
    m.add("EvmStateError", m.py().get_type::<EvmStateError>())?;
    m.add("EvmTxError", m.py().get_type::<EvmTxError>())?;
    m.add("EvmBlockError", m.py().get_type::<EvmBlockError>())?;
    Ok(())
}
