//! The parent state as revm reads it (accounts, storage, code, block hashes), and the
//! post-block write-back that turns revm's bundle into new trie nodes and a state root.
//!
//! Reads walk the stored Merkle-Patricia tries here in Rust; only the node fetch crosses into
//! Python (one call per node not yet seen by this block, served from the store's cache).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_rlp::Decodable;
use alloy_trie::{TrieAccount, EMPTY_ROOT_HASH, KECCAK_EMPTY};
use eth_trie::{EthTrie, Trie, TrieError};
use revm::database::BundleState;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use revm::state::{AccountInfo, Bytecode};

use super::nodes::{NodeDb, StateError};

fn trie_err(e: TrieError) -> StateError {
    match e {
        TrieError::MissingTrieNode { node_hash, .. } => StateError(format!("missing trie node 0x{}", hex(node_hash.as_slice()))),
        TrieError::InvalidStateRoot => StateError("missing trie node (state root not in the database)".into()),
        other => StateError(format!("trie error: {other}")),
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A trie at `root` over `db`; the empty root needs no stored node.
pub fn open_trie(db: &Arc<NodeDb>, root: B256) -> Result<EthTrie<NodeDb>, StateError> {
    if root == EMPTY_ROOT_HASH {
        return Ok(EthTrie::new(db.clone()));
    }
    EthTrie::from(db.clone(), root).map_err(trie_err)
}

/// revm's view of the parent block's state.
pub struct TrieState {
    pub db: Arc<NodeDb>,
    accounts: EthTrie<NodeDb>,
    storage: HashMap<Address, (B256, Option<EthTrie<NodeDb>>)>,
    block_hash: Py<PyAny>,
    block_hashes: HashMap<u64, B256>,
}

impl fmt::Debug for TrieState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrieState").field("accounts_read", &self.storage.len()).finish()
    }
}

impl TrieState {
    /// `block_hash` is Python's `number -> hash | None` for BLOCKHASH (asked only when used).
    pub fn new(db: Arc<NodeDb>, root: B256, block_hash: Py<PyAny>) -> Result<Self, StateError> {
        let accounts = open_trie(&db, root)?;
        Ok(Self { db, accounts, storage: HashMap::new(), block_hash, block_hashes: HashMap::new() })
    }

    fn account(&mut self, address: Address) -> Result<Option<TrieAccount>, StateError> {
        let raw = self.accounts.get(keccak256(address).as_slice()).map_err(trie_err)?;
        let Some(raw) = raw else {
            self.storage.insert(address, (EMPTY_ROOT_HASH, None));
            return Ok(None);
        };
        let acc = TrieAccount::decode(&mut raw.as_slice())
            .map_err(|e| StateError(format!("bad account leaf for 0x{}: {e}", hex(address.as_slice()))))?;
        self.storage.entry(address).or_insert((acc.storage_root, None));
        Ok(Some(acc))
    }

    fn storage_root(&mut self, address: Address) -> Result<B256, StateError> {
        if let Some((root, _)) = self.storage.get(&address) {
            return Ok(*root);
        }
        Ok(self.account(address)?.map_or(EMPTY_ROOT_HASH, |a| a.storage_root))
    }

    /// Write revm's block-level changes into the tries; returns the new state root.
    /// The new nodes and code are left in `self.db` for the caller to take.
    pub fn commit(&mut self, bundle: &BundleState) -> Result<B256, StateError> {
        for (hash, code) in &bundle.contracts {
            if *hash != KECCAK_EMPTY {
                self.db.put(*hash, code.original_bytes().to_vec());
            }
        }
        let mut changed: Vec<(&Address, _)> = bundle.state.iter().collect();
        changed.sort_by_key(|(a, _)| **a);
        for (address, account) in changed {
            let key = keccak256(address);
            let Some(info) = &account.info else {
                self.accounts.remove(key.as_slice()).map_err(trie_err)?;
                continue;
            };
            let destroyed = account.was_destroyed();
            let base_root = if destroyed { EMPTY_ROOT_HASH } else { self.storage_root(*address)? };
            let mut storage_root = base_root;
            let mut slots: Vec<_> = account
                .storage
                .iter()
                .filter(|(_, s)| destroyed || s.present_value != s.previous_or_original_value)
                .collect();
            if !slots.is_empty() {
                slots.sort_by_key(|(k, _)| **k);
                let mut trie = open_trie(&self.db, base_root)?;
                for (slot, value) in slots {
                    let skey = keccak256(slot.to_be_bytes::<32>());
                    if value.present_value.is_zero() {
                        trie.remove(skey.as_slice()).map_err(trie_err)?;
                    } else {
                        trie.insert(skey.as_slice(), &alloy_rlp::encode(value.present_value)).map_err(trie_err)?;
                    }
                }
                storage_root = trie.root_hash().map_err(trie_err)?;
            }
            let leaf = TrieAccount {
                nonce: info.nonce,
                balance: info.balance,
                storage_root,
                code_hash: info.code_hash,
            };
            self.accounts.insert(key.as_slice(), &alloy_rlp::encode(leaf)).map_err(trie_err)?;
        }
        self.accounts.root_hash().map_err(trie_err)
    }
}

impl revm::Database for TrieState {
    type Error = StateError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        Ok(self.account(address)?.map(|a| AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            account_id: None,
            code: if a.code_hash == KECCAK_EMPTY { Some(Bytecode::default()) } else { None },
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if code_hash == KECCAK_EMPTY || code_hash == B256::ZERO {
            return Ok(Bytecode::default());
        }
        match self.db.fetch(code_hash.as_slice())? {
            Some(code) => Ok(Bytecode::new_raw(code.into())),
            None => Err(StateError(format!("missing code 0x{}", hex(code_hash.as_slice())))),
        }
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, Self::Error> {
        let root = self.storage_root(address)?;
        if root == EMPTY_ROOT_HASH {
            return Ok(U256::ZERO);
        }
        let db = self.db.clone();
        let entry = self.storage.get_mut(&address).expect("storage root was just cached");
        if entry.1.is_none() {
            entry.1 = Some(open_trie(&db, root)?);
        }
        let trie = entry.1.as_ref().unwrap();
        let raw = trie.get(keccak256(index.to_be_bytes::<32>()).as_slice()).map_err(trie_err)?;
        match raw {
            None => Ok(U256::ZERO),
            Some(raw) => U256::decode(&mut raw.as_slice())
                .map_err(|e| StateError(format!("bad storage value for 0x{}: {e}", hex(address.as_slice())))),
        }
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        if let Some(h) = self.block_hashes.get(&number) {
            return Ok(*h);
        }
        let hash = Python::attach(|py| -> Result<B256, StateError> {
            let v = self.block_hash.call1(py, (number,)).map_err(|e| StateError(format!("state read failed: {e}")))?;
            if v.is_none(py) {
                return Ok(B256::ZERO);
            }
            let b = v.cast_bound::<PyBytes>(py).map_err(|_| StateError("block hash getter returned a non-bytes value".into()))?;
            if b.as_bytes().len() != 32 {
                return Err(StateError("block hash getter returned a value that is not 32 bytes".into()));
            }
            Ok(B256::from_slice(b.as_bytes()))
        })?;
        self.block_hashes.insert(number, hash);
        Ok(hash)
    }
}
