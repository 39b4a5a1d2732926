//! geth's `StateOverride` for calls: a layer over the block's `TrieState` that answers for
//! the overridden accounts (balance, nonce, code, and storage replaced whole or per slot)
//! and passes every other read through. Nothing is written below it, so the overrides live
//! exactly as long as the call.

use std::collections::HashMap;

use std::sync::Arc;

use alloy_evm::precompiles::{DynPrecompile, Precompile, PrecompilesMap};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use revm::precompile::{PrecompileId, PrecompileOutput};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use revm::state::{AccountInfo, Bytecode};
use alloy_trie::KECCAK_EMPTY;

use super::nodes::StateError;
use super::state::TrieState;

/// One account's overrides; `None` fields read through to the state below.
#[derive(Default)]
struct AccountOverride {
    nonce: Option<u64>,
    balance: Option<U256>,
    code: Option<(B256, Bytecode)>,
    /// geth `state`: every slot not listed reads zero.
    replace_storage: bool,
    storage: HashMap<U256, U256>,
}

/// The block's state with the call's overrides on top.
#[derive(Debug)]
pub struct OverlayState {
    pub inner: TrieState,
    accounts: HashMap<Address, AccountOverride>,
    codes: HashMap<B256, Bytecode>,
}

impl std::fmt::Debug for AccountOverride {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountOverride").field("slots", &self.storage.len()).finish()
    }
}

fn word(b: &[u8], what: &str) -> PyResult<U256> {
    if b.len() != 32 {
        return Err(PyValueError::new_err(format!("{what} must be 32 bytes")));
    }
    Ok(U256::from_be_slice(b))
}

impl OverlayState {
    pub fn new(inner: TrieState) -> Self {
        Self { inner, accounts: HashMap::new(), codes: HashMap::new() }
    }

    /// Override `address` (Python's `override_account`): `balance` and slots are 32-byte words;
    /// `replace_storage` makes unlisted slots read zero (geth `state`), else they read through
    /// (geth `stateDiff`).
    pub fn set(
        &mut self,
        address: &[u8],
        nonce: Option<u64>,
        balance: Option<&[u8]>,
        code: Option<Vec<u8>>,
        storage: Vec<(Vec<u8>, Vec<u8>)>,
        replace_storage: bool,
    ) -> PyResult<()> {
        if address.len() != 20 {
            return Err(PyValueError::new_err("address must be 20 bytes"));
        }
        let entry = self.accounts.entry(Address::from_slice(address)).or_default();
        if nonce.is_some() {
            entry.nonce = nonce;
        }
        if let Some(b) = balance {
            entry.balance = Some(word(b, "balance")?);
        }
        if let Some(code) = code {
            let hash = if code.is_empty() { KECCAK_EMPTY } else { keccak256(&code) };
            let bytecode = Bytecode::new_raw(code.into());
            self.codes.insert(hash, bytecode.clone());
            entry.code = Some((hash, bytecode));
        }
        if replace_storage {
            entry.replace_storage = true;
            entry.storage.clear();
        }
        for (k, v) in storage {
            entry.storage.insert(word(&k, "slot")?, word(&v, "slot value")?);
        }
        Ok(())
    }
}

impl revm::Database for OverlayState {
    type Error = StateError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let below = self.inner.basic(address)?;
        let Some(o) = self.accounts.get(&address) else { return Ok(below) };
        if o.nonce.is_none() && o.balance.is_none() && o.code.is_none() && below.is_none() && o.storage.is_empty() {
            return Ok(None);
        }
        let mut info = below.unwrap_or_else(|| AccountInfo { code: Some(Bytecode::default()), ..Default::default() });
        if let Some(n) = o.nonce {
            info.nonce = n;
        }
        if let Some(b) = o.balance {
            info.balance = b;
        }
        if let Some((hash, code)) = &o.code {
            info.code_hash = *hash;
            info.code = Some(code.clone());
        }
        Ok(Some(info))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if let Some(code) = self.codes.get(&code_hash) {
            return Ok(code.clone());
        }
        self.inner.code_by_hash(code_hash)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, Self::Error> {
        if let Some(o) = self.accounts.get(&address) {
            if let Some(v) = o.storage.get(&index) {
                return Ok(*v);
            }
            if o.replace_storage {
                return Ok(U256::ZERO);
            }
        }
        self.inner.storage(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        self.inner.block_hash(number)
    }
}

/// geth's `StateOverride.Apply` on the precompiles, in its order (`moves` by address
/// ascending, each `(address, move_to, gets_code)`): an overridden address stops being a
/// precompile, and `movePrecompileToAddress` installs the one it held at the destination.
///
/// geth warms the fork's own precompile addresses whatever was moved, and revm warms what the
/// map holds; so a destination outside the fork's set is served by the lookup (cold), and a
/// source left without code keeps a precompile that does nothing, as calling an account
/// without code does (warm). A source given code must run it, so it leaves the map (cold,
/// where geth keeps it warm).
pub fn relocate_precompiles(map: &mut PrecompilesMap, moves: &[(Address, Option<Address>, bool)]) {
    let builtin: Vec<Address> = map.addresses().copied().collect();
    let mut elsewhere: HashMap<Address, Arc<DynPrecompile>> = HashMap::new();
    for (source, dest, gets_code) in moves {
        let mut found = None;
        map.apply_precompile(source, |existing| {
            found = existing;
            if *gets_code {
                None
            } else {
                Some(DynPrecompile::new(PrecompileId::custom("overridden"), |input| Ok(PrecompileOutput::new(0, Bytes::new(), input.reservoir))))
            }
        });
        elsewhere.remove(source);
        let (Some(dest), Some(precompile)) = (dest, found) else { continue };
        if builtin.contains(dest) {
            map.apply_precompile(dest, |_| Some(precompile));
        } else {
            elsewhere.insert(*dest, Arc::new(precompile));
        }
    }
    if !elsewhere.is_empty() {
        map.set_precompile_lookup(move |address: &Address| {
            let precompile = elsewhere.get(address)?.clone();
            let id = precompile.precompile_id().clone();
            Some(DynPrecompile::new_stateful(id, move |input| precompile.call(input)))
        });
    }
}
