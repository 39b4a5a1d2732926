//! Block execution with revm (see `block.rs`), over ethnode's stored state (`state.rs`).

mod access_list;
mod block;
mod call;
mod nodes;
mod overlay;
mod state;
mod trace_call;
mod tracer;

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    block::register(m)?;
    access_list::register(m)?;
    tracer::register(m)?;
    trace_call::register(m)?;
    call::register(m)
}
