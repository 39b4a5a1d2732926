//! debug_traceCall on revm: a message on the state after a block, in that block's context, as
//! `call.rs` runs it (the same relaxed checks), under `tracer.rs`'s inspector.

use alloy_evm::{Evm, EvmFactory};
use alloy_evm::eth::EthEvmFactory;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use revm::database::State;

use super::call::{balance_of, call_env, call_tx, deadline_after, open_state, transact_error};
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
        Ok(Self { state: Some(open_state(getter, state_root, block_hash)?), forks, chain_id })
    }

    /// The balance of `address` (32 bytes, big-endian), for the pre-call checks.
    fn balance<'py>(&mut self, py: Python<'py>, address: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let state = self.state.as_mut().ok_or_else(|| PyRuntimeError::new_err("call already run"))?;
        balance_of(py, state, address)
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
        let evm_env = call_env(self.forks.clone(), self.chain_id, env, blob, zero_blob_fee, None)?;
        let (tx, to) = call_tx(message, self.chain_id)?;
        let db = State::builder().with_database(state).build();
        let inspector = TraceInspector::tracing(deadline_after(timeout), &lookups);
        let mut evm = EthEvmFactory::default().create_evm_with_inspector(db, evm_env, inspector);
        let outcome = evm.transact(tx);
        let insp = std::mem::take(evm.inspector_mut());
        let result = outcome.map_err(transact_error)?;
        report(py, insp, &result.state, evm.db_mut(), &result.result, to)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RevmTraceCall>()
}
