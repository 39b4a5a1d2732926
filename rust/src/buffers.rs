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

/// A new `bytes` of `len` bytes that `fill` must write completely.
///
/// pyo3's `PyBytes::new_with` zeroes the buffer first; for a 1 MiB frame that is one more
/// pass over memory than the cipher already makes, which shows against the keccak limit.
/// The memory comes from CPython's allocator through an opaque pointer, and every caller
/// writes each byte (header, ciphertext, padding, MAC; or the whole payload) before the
/// object reaches Python, so nothing unwritten is ever read.
pub(crate) fn bytes_filled<'py>(
    py: Python<'py>,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> PyResult<()>,
) -> PyResult<Bound<'py, PyBytes>> {
    use pyo3::ffi;
    unsafe {
        let ptr = ffi::PyBytes_FromStringAndSize(std::ptr::null(), len as ffi::Py_ssize_t);
        let bytes = Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked::<PyBytes>();
        let buffer: *mut u8 = ffi::PyBytes_AsString(ptr).cast();
        fill(std::slice::from_raw_parts_mut(buffer, len))?;
        Ok(bytes)
    }
}
