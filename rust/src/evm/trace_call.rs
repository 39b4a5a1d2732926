//! debug_traceCall on revm: a message on the state after a block, in that block's context, as
//! `call.rs` runs it (the same relaxed checks), under `tracer.rs`'s inspector.

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
use revm::database::State;

use super::block::{chain_env, EvmStateError};
use super::nodes::NodeDb;
use super::state::TrieState;
use super::tracer::{report, TraceInspector};

/// A traced call's view of one block's post-state.
#[pyclass(unsendable, module = "ethnode._rust")]
pub struct RevmTraceCall {
    state: Option<TrieState>,
    forks: Vec<(String, String, u64)>,
    chain_id: u64,
}

#[pymethods]
impl RevmTraceCall {
    #[new]
    fn new(getter: Py<PyAny>, state_root: &[u8], forks: Vec<(String, String, u64)>, chain_id: u64, block_hash: Py<PyAny>) -> PyResult<Self> {
        if state_root.len() != 32 {
            return Err(PyValueError::new_err("state root must be 32 bytes"));
        }
        let db = Arc::new(NodeDb::new(getter));
        let state = TrieState::new(db, B256::from_slice(state_root), block_hash).map_err(|e| EvmStateError::new_err(e.0))?;
        Ok(Self { state: Some(state), forks, chain_id })
    }

    /// The balance of `address` (32 bytes, big-endian), for the pre-call checks.
    fn balance<'py>(&mut self, py: Python<'py>, address: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        if address.len() != 20 {
            return Err(PyValueError::new_err("address must be 20 bytes"));
        }
        let state = self.state.as_mut().ok_or_else(|| PyRuntimeError::new_err("call already run"))?;
        let info = revm::Database::basic(state, Address::from_slice(address)).map_err(|e| EvmStateError::new_err(e.0))?;
        let balance = info.map_or(U256::ZERO, |i| i.balance);
        Ok(PyBytes::new(py, &balance.to_be_bytes::<32>()))
    }

    /// Run the message as `RevmCall.run` takes it; returns the trace as `RevmTraceBlock.run`
    /// gives one tx's. `lookups` as there (sender, recipient, coinbase).
    #[pyo3(signature = (env, blob, message, zero_blob_fee, lookups, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        env: &Bound<'py, PyTuple>,
        blob: Option<(u64, u64, u64, u64, u64)>,
        message: &Bound<'py, PyTuple>,
        zero_blob_fee: bool,
        lookups: Vec<Vec<u8>>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let state = self.state.take().ok_or_else(|| PyRuntimeError::new_err("call already run"))?;
        let (_spec, _header, mut evm_env): (_, _, EvmEnv) = chain_env(self.forks.clone(), self.chain_id, None, env, blob)?;
        let cfg = &mut evm_env.cfg_env;
        cfg.disable_nonce_check = true;
        cfg.disable_eip3607 = true;
        cfg.disable_block_gas_limit = true;
        cfg.tx_gas_limit_cap = Some(u64::MAX);
        if zero_blob_fee {
            if let Some(b) = evm_env.block_env.blob_excess_gas_and_price.as_mut() {
                b.blob_gasprice = 0;
            }
        }
        let (sender, to, value, data, gas, gas_price, access_list, blob_hashes, blob_fee_cap): (
            Vec<u8>, Option<Vec<u8>>, Vec<u8>, Vec<u8>, u64, u128, Option<Vec<(Vec<u8>, Vec<Vec<u8>>)>>, Option<Vec<Vec<u8>>>, u128,
        ) = message.extract()?;
        if sender.len() != 20 || to.as_ref().is_some_and(|t| t.len() != 20) || value.len() != 32 {
            return Err(PyValueError::new_err("bad call message"));
        }
        let mut tx = TxEnv {
            tx_type: 0,
            caller: Address::from_slice(&sender),
            gas_limit: gas,
            gas_price,
            kind: match &to {
                Some(t) => TxKind::Call(Address::from_slice(t)),
                None => TxKind::Create,
            },
            value: U256::from_be_slice(&value),
            data: Bytes::from(data),
            nonce: 0,
            chain_id: Some(self.chain_id),
            ..Default::default()
        };
        if let Some(list) = access_list {
            tx.tx_type = 1;
            tx.access_list = AccessList(
                list.into_iter()
                    .map(|(a, keys)| AccessListItem { address: Address::from_slice(&a), storage_keys: keys.iter().map(|k| B256::from_slice(k)).collect() })
                    .collect(),
            );
        }
        if let Some(hashes) = blob_hashes {
            tx.tx_type = 3;
            tx.gas_priority_fee = Some(gas_price);
            tx.blob_hashes = hashes.iter().map(|h| B256::from_slice(h)).collect();
            tx.max_fee_per_blob_gas = blob_fee_cap;
        }
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        let db = State::builder().with_database(state).build();
        let inspector = TraceInspector::tracing(deadline, &lookups);
        let mut evm = EthEvmFactory::default().create_evm_with_inspector(db, evm_env, inspector);
        let outcome = evm.transact(tx);
        let insp = std::mem::take(evm.inspector_mut());
        let result = match outcome {
            Ok(r) => r,
            Err(e) => {
                let msg = e.to_string();
                if msg.contains("missing trie node") || msg.contains("missing code") || msg.contains("state read failed") {
                    return Err(EvmStateError::new_err(msg));
                }
                return Err(PyValueError::new_err(msg));
            }
        };
        let to = to.map(|t| Address::from_slice(&t));
        report(py, insp, &result.state, evm.db_mut(), &result.result, to)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RevmTraceCall>()
}
