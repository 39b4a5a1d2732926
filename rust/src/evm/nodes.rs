//! Trie nodes and code read from ethnode's state store, and the ones a block writes.
//!
//! The store is content-addressed (key = keccak256 of the value), so the Python side hands us
//! a getter and we never need invalidation: whatever a block writes is kept here until Python
//! takes it into the block's batch. Removing is a no-op for the same reason: another state
//! root may still share a node the trie library thinks is obsolete.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use alloy_primitives::B256;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Why a state read failed: a missing node means the parent state is incomplete, never a bad block.
#[derive(Debug, Clone)]
pub struct StateError(pub String);

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StateError {}
impl revm::database_interface::DBErrorMarker for StateError {}

/// The node source of one block: Python's cached store getter plus this block's writes.
pub struct NodeDb {
    getter: Py<PyAny>,
    written: Mutex<HashMap<B256, Vec<u8>>>,
}

impl NodeDb {
    pub fn new(getter: Py<PyAny>) -> Self {
        Self { getter, written: Mutex::new(HashMap::new()) }
    }

    /// What the store holds under `key`; `None` if absent.
    pub fn fetch(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if key.len() == 32 {
            if let Some(v) = self.written.lock().unwrap().get(&B256::from_slice(key)) {
                return Ok(Some(v.clone()));
            }
        }
        Python::attach(|py| {
            let value = self
                .getter
                .call1(py, (PyBytes::new(py, key),))
                .map_err(|e| StateError(format!("state read failed: {e}")))?;
            if value.is_none(py) {
                return Ok(None);
            }
            let bytes = value
                .cast_bound::<PyBytes>(py)
                .map_err(|_| StateError("state getter returned a non-bytes value".into()))?;
            Ok(Some(bytes.as_bytes().to_vec()))
        })
    }

    pub fn put(&self, key: B256, value: Vec<u8>) {
        self.written.lock().unwrap().insert(key, value);
    }

    /// Everything written so far, emptied (the block's new nodes and code).
    pub fn take_written(&self) -> HashMap<B256, Vec<u8>> {
        std::mem::take(&mut *self.written.lock().unwrap())
    }
}

impl eth_trie::DB for NodeDb {
    type Error = StateError;

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Self::Error> {
        self.fetch(key)
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<(), Self::Error> {
        self.put(B256::from_slice(key), value);
        Ok(())
    }

    fn remove(&self, _key: &[u8]) -> Result<(), Self::Error> {
        Ok(()) // shared, content-addressed entries are never deleted
    }

    fn flush(&self) -> Result<(), Self::Error> {
        Ok(())
    }
}
