//! Reading Python bytes-like arguments without copying where that is safe.

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Run `f` on the bytes of any buffer-protocol object: borrowed for `bytes`, copied for
/// the mutable kinds (a bytearray could change under us while the GIL is released).
pub(crate) fn with_bytes<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> PyResult<R>) -> PyResult<R> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return f(b.as_bytes());
    }
    let buf = PyBuffer::<u8>::get(obj)?;
    let owned = buf.to_vec(obj.py())?;
    f(&owned)
}
