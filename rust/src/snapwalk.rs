//! snap AccountRange's walk: accounts of a stored state trie in key order, as reply items.
//!
//! The twin of `ethnode/eth/protocols/snap/_walk_pure.py` (same arguments, results and
//! stopping rules). One call serves a chunk of up to `max_items` accounts, so Python can
//! let other peers run between chunks; nodes are fetched through the state database's
//! getter (its cache first), so nothing is read twice and nothing is copied into Rust for
//! longer than a chunk. Each account leaf becomes the encoded `[hash, slim account]` item
//! geth's AccountRange carries: the empty storage root and code hash sent as empty strings.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

const EMPTY_ROOT: [u8; 32] = [
    0x56, 0xe8, 0x1f, 0x17, 0x1b, 0xcc, 0x55, 0xa6, 0xff, 0x83, 0x45, 0xe6, 0x92, 0xc0, 0xf8, 0x6e, 0x5b, 0x48,
    0xe0, 0x1b, 0x99, 0x6c, 0xad, 0xc0, 0x01, 0x62, 0x2f, 0xb5, 0xe3, 0x63, 0xb4, 0x21,
];
const EMPTY_CODE_HASH: [u8; 32] = [
    0xc5, 0xd2, 0x46, 0x01, 0x86, 0xf7, 0x23, 0x3c, 0x92, 0x7e, 0x7d, 0xb2, 0xdc, 0xc7, 0x03, 0xc0, 0xe5, 0x00,
    0xb6, 0x53, 0xca, 0x82, 0x27, 0x3b, 0x7b, 0xfa, 0xd8, 0x04, 0x5d, 0x85, 0xa4, 0x70,
];

fn bad(what: &str) -> PyErr {
    PyValueError::new_err(format!("malformed trie node: {what}"))
}

/// (is list, payload start, payload end) of the RLP item at `data[pos..]`; only the canonical
/// encoding is accepted, as ethnode's RLP decoder (the pure twin's) accepts only that.
fn item(data: &[u8], pos: usize) -> PyResult<(bool, usize, usize)> {
    let b = *data.get(pos).ok_or_else(|| bad("truncated"))?;
    let (list, start, len) = match b {
        0x00..=0x7f => return Ok((false, pos, pos + 1)),
        0x80..=0xb7 => (false, pos + 1, (b - 0x80) as usize),
        0xb8..=0xbf | 0xf8..=0xff => {
            let n = (b - if b >= 0xf8 { 0xf7 } else { 0xb7 }) as usize;
            let bytes = data.get(pos + 1..pos + 1 + n).ok_or_else(|| bad("truncated length"))?;
            if bytes[0] == 0 {
                return Err(bad("non-canonical length"));
            }
            let len = bytes.iter().fold(0usize, |acc, &x| acc.saturating_mul(256).saturating_add(x as usize));
            if len < 56 {
                return Err(bad("non-canonical length"));
            }
            (b >= 0xf8, pos + 1 + n, len)
        }
        _ => (true, pos + 1, (b - 0xc0) as usize),
    };
    let end = start.checked_add(len).filter(|&e| e <= data.len()).ok_or_else(|| bad("item past its end"))?;
    if b == 0x81 && data[start] < 0x80 {
        return Err(bad("non-canonical single byte"));
    }
    Ok((list, start, end))
}

/// The items of the list at `data` (a whole encoded node): (is list, start of item, payload range).
fn items(data: &[u8]) -> PyResult<Vec<(bool, usize, usize, usize)>> {
    let (list, mut pos, end) = item(data, 0)?;
    if !list {
        return Err(bad("not a list"));
    }
    if end != data.len() {
        return Err(bad("trailing bytes"));
    }
    let mut out = Vec::with_capacity(17);
    while pos < end {
        let (l, s, e) = item(data, pos)?;
        out.push((l, pos, s, e));
        pos = e;
    }
    if pos != end {
        return Err(bad("list length"));
    }
    Ok(out)
}

/// A child reference: a stored node's hash or an embedded node's encoding.
enum Ref {
    Hash(Vec<u8>),
    Inline(Vec<u8>),
}

fn rlp_header(len: usize, offset: u8, out: &mut Vec<u8>) {
    if len < 56 {
        out.push(offset + len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(offset + 55 + (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// `[hash, slim account]` for a leaf holding a full account RLP; returns the slim body's length.
fn account_item(key: &[u8], full: &[u8], out: &mut Vec<u8>) -> PyResult<usize> {
    let fields = items(full)?;
    if fields.len() != 4 || fields.iter().any(|f| f.0) {
        return Err(bad("account is not [nonce, balance, root, codehash]"));
    }
    let mut body = Vec::with_capacity(full.len());
    for (i, &(_, at, start, end)) in fields.iter().enumerate() {
        let payload = &full[start..end];
        if (i == 2 && payload == EMPTY_ROOT) || (i == 3 && payload == EMPTY_CODE_HASH) {
            body.push(0x80);
        } else {
            body.extend_from_slice(&full[at..end]);
        }
    }
    let mut slim = Vec::with_capacity(body.len() + 9);
    rlp_header(body.len(), 0xc0, &mut slim);
    slim.extend_from_slice(&body);
    out.clear();
    rlp_header(33 + slim.len(), 0xc0, out);
    out.push(0xa0);
    out.extend_from_slice(key);
    out.extend_from_slice(&slim);
    Ok(slim.len())
}

/// One chunk of an AccountRange walk; see `_walk_pure.account_chunk` for the contract.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn snap_account_chunk<'py>(
    py: Python<'py>,
    get_node: &Bound<'py, PyAny>,
    root: &[u8],
    start: &[u8],
    limit: &[u8],
    size: u64,
    nbytes: u64,
    max_items: usize,
) -> PyResult<(Bound<'py, PyList>, u64, bool, Option<Bound<'py, PyBytes>>)> {
    if start.len() != 32 || limit.len() != 32 || root.len() != 32 {
        return Err(PyValueError::new_err("root, start and limit must be 32 bytes"));
    }
    let out = PyList::empty(py);
    if root == EMPTY_ROOT {
        return Ok((out, size, true, None));
    }
    let bound: Vec<u8> = start.iter().flat_map(|b| [b >> 4, b & 0x0f]).collect();
    let mut stack: Vec<(Ref, Vec<u8>, bool)> = vec![(Ref::Hash(root.to_vec()), Vec::new(), true)];
    let mut size = size;
    let mut last: Option<[u8; 32]> = None;
    let mut count = 0usize;
    let mut buf = Vec::with_capacity(128);
    while let Some((node_ref, prefix, bounded)) = stack.pop() {
        let data: Vec<u8> = match node_ref {
            Ref::Inline(data) => data,
            Ref::Hash(hash) => {
                let value = get_node.call1((PyBytes::new(py, &hash),))?;
                if value.is_none() {
                    // the same error the pure walk raises: ethnode.core.state.trie.MissingNodeError
                    let missing = py.import("ethnode.core.state.trie")?.getattr("MissingNodeError")?;
                    return Err(PyErr::from_value(missing.call1((PyBytes::new(py, &hash),))?));
                }
                value.cast::<PyBytes>()?.as_bytes().to_vec()
            }
        };
        let fields = items(&data)?;
        if fields.len() == 17 {
            let depth = prefix.len();
            let low = if bounded && depth < bound.len() { bound[depth] as usize } else { 0 };
            for i in (low..16).rev() {
                let (list, at, s, e) = fields[i];
                let child = if list {
                    Ref::Inline(data[at..e].to_vec())
                } else if e == s {
                    continue;
                } else {
                    Ref::Hash(data[s..e].to_vec())
                };
                let mut path = prefix.clone();
                path.push(i as u8);
                stack.push((child, path, bounded && i == low));
            }
            continue;
        }
        if fields.len() != 2 || fields[0].0 {
            return Err(bad("neither a branch nor a short node"));
        }
        let encoded = &data[fields[0].2..fields[0].3];
        let flag = *encoded.first().ok_or_else(|| bad("empty path"))? >> 4;
        let mut path = prefix;
        if flag & 1 == 1 {
            path.push(encoded[0] & 0x0f);
        }
        for b in &encoded[1..] {
            path.push(b >> 4);
            path.push(b & 0x0f);
        }
        let mut bounded = bounded;
        if bounded {
            let n = path.len().min(bound.len());
            match path[..n].cmp(&bound[..n]) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Greater => bounded = false,
                std::cmp::Ordering::Equal => {}
            }
        }
        let (child_list, child_at, cs, ce) = fields[1];
        if flag & 2 == 0 {
            let child = if child_list { Ref::Inline(data[child_at..ce].to_vec()) } else { Ref::Hash(data[cs..ce].to_vec()) };
            stack.push((child, path, bounded));
            continue;
        }
        if path.len() != 64 || child_list {
            return Err(bad("account leaf key is not 32 bytes"));
        }
        let mut key = [0u8; 32];
        for (i, k) in key.iter_mut().enumerate() {
            *k = (path[2 * i] << 4) | path[2 * i + 1];
        }
        let slim_len = account_item(&key, &data[cs..ce], &mut buf)?;
        out.append(PyBytes::new(py, &buf))?;
        size += 32 + slim_len as u64;
        last = Some(key);
        count += 1;
        if key.as_slice() >= limit || size > nbytes {
            return Ok((out, size, true, Some(PyBytes::new(py, &key))));
        }
        if count >= max_items {
            return Ok((out, size, false, Some(PyBytes::new(py, &key))));
        }
    }
    Ok((out, size, true, last.map(|k| PyBytes::new(py, &k))))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(snap_account_chunk, m)?)?;
    Ok(())
}
