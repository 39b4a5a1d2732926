//! The known-hash cache: "which hashes has this peer already seen" (geth's knownCache).
//!
//! Hashes live once, packed, in a ring buffer of capacity N (32 bytes each); the hash
//! table stores only u32 ring positions (4 bytes + 1 control byte per bucket), so an
//! entry costs ~42 bytes instead of the ~130 of a Python set of bytes. When full, the
//! oldest hash is evicted (geth pops an arbitrary one; oldest-first is deterministic, so
//! the pure twin can match it exactly). The table hashes with a per-instance random key
//! (foldhash), because tx hashes are attacker-ground and an unkeyed hash of the first
//! bytes would let a peer build collision chains.
//!
//! The batch calls take a packed buffer of 32-byte hashes: one call per message, never
//! one per hash, which is where native code beats a Python set (~3 ns vs ~30 ns/hash).
//!
//! Memory under peer churn: every peer owns two caches and peers come and go all day, so
//! what a dropped cache gives back matters as much as what a live one holds. Ring and
//! table start empty and double as hashes arrive, because a peer that announces a few
//! hundred hashes should cost kilobytes, not the 1.3 MiB of a full tx cache. Their large
//! buffers come straight from the kernel (`PageBacked`), because through malloc they did
//! not come back: glibc raises its mmap threshold after the first large free, later
//! buffers land on the heap, and a heap fragmented by 160 peers' worth of them is never
//! trimmed (20 waves of 160 peers left RSS at 128 MB from 42 MB before; now 51 MB).
//! Measured and rejected: mimalloc as the crate's allocator (it held 280-320 MB after the
//! same churn), malloc_trim after drops (~50 ms with the GIL held on a 1 GB heap), a pool
//! of freed caches (it keeps the peak by design). tests/test_knowncache_churn.py holds the
//! line; benches/bench_churn_memory.py prints the figures.

use std::hash::BuildHasher;

use allocator_api2::vec::Vec;
use hashbrown::HashTable;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::with_bytes;

const HASH_LEN: usize = 32;

/// Ring slots reserved by a cache's first insertion; the ring then doubles up to capacity.
const RING_START: usize = 64;

/// A full cache rebuilds its table in place (instead of letting hashbrown double it) once
/// at least capacity / REBUILD_AFTER evictions have passed since the last rebuild: each
/// rebuild reinserts `capacity` entries, so this bounds its cost to REBUILD_AFTER
/// reinsertions per eviction.
const REBUILD_AFTER: usize = 8;

type Hash = [u8; HASH_LEN];

mod pages {
    //! An allocator that maps large buffers from the kernel and unmaps them on free.

    use std::alloc::Layout;
    use std::ptr::NonNull;

    use allocator_api2::alloc::{AllocError, Allocator, Global};

    /// Buffers from this size up are mapped: glibc's default M_MMAP_THRESHOLD, the size
    /// from which malloc itself maps, before its dynamic threshold moves it up.
    pub(super) const PAGE_BACKED_MIN: usize = 128 * 1024;

    /// mmap's alignment guarantee (the smallest page size of any platform).
    const PAGE_ALIGN: usize = 4096;

    #[derive(Clone, Copy, Default)]
    pub(super) struct PageBacked;

    #[inline]
    fn mapped(layout: Layout) -> bool {
        cfg!(unix) && layout.size() >= PAGE_BACKED_MIN && layout.align() <= PAGE_ALIGN
    }

    unsafe impl Allocator for PageBacked {
        fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
            if !mapped(layout) {
                return Global.allocate(layout);
            }
            map(layout.size())
        }

        unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
            if mapped(layout) {
                unmap(ptr, layout.size());
            } else {
                Global.deallocate(ptr, layout);
            }
        }

        /// The ring doubles in place where the kernel can move pages instead of copying.
        #[cfg(target_os = "linux")]
        unsafe fn grow(
            &self,
            ptr: NonNull<u8>,
            old: Layout,
            new: Layout,
        ) -> Result<NonNull<[u8]>, AllocError> {
            if !(mapped(old) && mapped(new) && old.align() == new.align()) {
                let grown = self.allocate(new)?;
                // SAFETY: both blocks are live and distinct, and old.size() <= new.size().
                unsafe {
                    std::ptr::copy_nonoverlapping(ptr.as_ptr(), grown.cast::<u8>().as_ptr(), old.size());
                    self.deallocate(ptr, old);
                }
                return Ok(grown);
            }
            // SAFETY: `ptr` is a mapping of old.size() bytes made by `map`.
            let p = unsafe { libc::mremap(ptr.as_ptr().cast(), old.size(), new.size(), libc::MREMAP_MAYMOVE) };
            if p == libc::MAP_FAILED {
                return Err(AllocError);
            }
            let p = NonNull::new(p.cast::<u8>()).ok_or(AllocError)?;
            Ok(NonNull::slice_from_raw_parts(p, new.size()))
        }
    }

    #[cfg(unix)]
    fn map(len: usize) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(AllocError);
        }
        let p = NonNull::new(p.cast::<u8>()).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, len))
    }

    #[cfg(unix)]
    unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
        // SAFETY: the caller passes a mapping `map` made with this length. munmap only fails
        // on arguments that were never mapped, so there is nothing to recover from.
        unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
    }

    #[cfg(not(unix))]
    fn map(_len: usize) -> Result<NonNull<[u8]>, AllocError> {
        unreachable!("mapped() is false off unix")
    }

    #[cfg(not(unix))]
    unsafe fn unmap(_ptr: NonNull<u8>, _len: usize) {
        unreachable!("mapped() is false off unix")
    }
}

use pages::PageBacked;

#[pyclass(module = "ethnode._rust", name = "KnownCache")]
pub struct KnownCache {
    ring: Vec<Hash, PageBacked>,
    /// Ring slot the next insertion goes to once the ring is full (the oldest entry).
    next: usize,
    capacity: usize,
    table: HashTable<u32, PageBacked>,
    hasher: foldhash::fast::RandomState,
    /// Evictions since the ring filled or the table was last rebuilt.
    evicted: usize,
}

fn as_hash(b: &[u8]) -> PyResult<&Hash> {
    b.try_into()
        .map_err(|_| PyValueError::new_err(format!("a hash must be 32 bytes, got {}", b.len())))
}

fn check_packed(b: &[u8]) -> PyResult<()> {
    if b.len() % HASH_LEN != 0 {
        return Err(PyValueError::new_err(format!(
            "packed hashes must be a multiple of 32 bytes, got {}",
            b.len()
        )));
    }
    Ok(())
}

impl KnownCache {
    #[inline]
    fn hash_of(&self, h: &Hash) -> u64 {
        self.hasher.hash_one(h)
    }

    #[inline]
    fn contains_hash(&self, h: &Hash) -> bool {
        let ring = &self.ring;
        self.table
            .find(self.hash_of(h), |&i| &ring[i as usize] == h)
            .is_some()
    }

    fn insert(&mut self, h: &Hash) {
        let hv = self.hash_of(h);
        {
            let ring = &self.ring;
            if self.table.find(hv, |&i| &ring[i as usize] == h).is_some() {
                return;
            }
        }
        let slot = if self.ring.len() < self.capacity {
            if self.ring.len() == self.ring.capacity() {
                // Double, but never past capacity: the ring's last step is exact.
                let grown = (2 * self.ring.len()).max(RING_START).min(self.capacity);
                self.ring.reserve_exact(grown - self.ring.len());
            }
            self.ring.push(*h);
            self.ring.len() - 1
        } else {
            let slot = self.next;
            let old = self.ring[slot];
            let old_hv = self.hash_of(&old);
            if let Ok(entry) = self.table.find_entry(old_hv, |&i| i as usize == slot) {
                entry.remove();
            }
            self.ring[slot] = *h;
            self.next = (slot + 1) % self.capacity;
            self.evicted += 1;
            // Evictions leave tombstones behind. Once they use up the table's spare room,
            // hashbrown doubles the table (a full 32768-hash cache went from 65536 buckets to
            // 131072 within 400,000 evictions, +320 KiB per busy peer), though the number of
            // live entries never grows; clearing the tombstones in place keeps it at size.
            if self.table.len() == self.table.capacity() && self.evicted >= self.capacity / REBUILD_AFTER {
                self.rebuild_table();
                return;
            }
            slot
        };
        let ring = &self.ring;
        let hasher = &self.hasher;
        self.table
            .insert_unique(hv, slot as u32, |&i| hasher.hash_one(ring[i as usize]));
    }

    /// Reindex every ring slot into the emptied table, keeping its allocation.
    fn rebuild_table(&mut self) {
        let (ring, hasher) = (&self.ring, &self.hasher);
        self.table.clear();
        for (i, h) in ring.iter().enumerate() {
            self.table
                .insert_unique(hasher.hash_one(h), i as u32, |&j| hasher.hash_one(ring[j as usize]));
        }
        self.evicted = 0;
    }
}

#[pymethods]
impl KnownCache {
    #[new]
    fn new(capacity: usize) -> PyResult<Self> {
        if capacity == 0 || capacity > u32::MAX as usize {
            return Err(PyValueError::new_err("capacity must be between 1 and 2**32-1"));
        }
        Ok(KnownCache {
            ring: Vec::new_in(PageBacked),
            next: 0,
            capacity,
            table: HashTable::new_in(PageBacked),
            hasher: foldhash::fast::RandomState::default(),
            evicted: 0,
        })
    }

    #[getter]
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn __len__(&self) -> usize {
        self.ring.len()
    }

    fn __contains__(&self, hash: &Bound<'_, PyAny>) -> PyResult<bool> {
        with_bytes(hash, |b| Ok(self.contains_hash(as_hash(b)?)))
    }

    /// Mark one hash known.
    fn add(&mut self, hash: &Bound<'_, PyAny>) -> PyResult<()> {
        with_bytes(hash, |b| {
            let h = *as_hash(b)?;
            self.insert(&h);
            Ok(())
        })
    }

    /// Mark every hash of a packed buffer known, in order.
    fn add_many(&mut self, packed: &Bound<'_, PyAny>) -> PyResult<()> {
        with_bytes(packed, |b| {
            check_packed(b)?;
            for chunk in b.chunks_exact(HASH_LEN) {
                self.insert(chunk.try_into().expect("32-byte chunk"));
            }
            Ok(())
        })
    }

    /// The hashes of a packed buffer not in the cache, packed, in their original order.
    fn filter_unknown<'py>(&self, packed: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        with_bytes(packed, |b| {
            check_packed(b)?;
            let mut out: std::vec::Vec<u8> = std::vec::Vec::with_capacity(b.len());
            for chunk in b.chunks_exact(HASH_LEN) {
                if !self.contains_hash(chunk.try_into().expect("32-byte chunk")) {
                    out.extend_from_slice(chunk);
                }
            }
            Ok(PyBytes::new(packed.py(), &out))
        })
    }

    /// Heap bytes this cache holds now (ring + table + itself): grows with use, up to
    /// ~42 B per entry at capacity.
    fn nbytes(&self) -> usize {
        self.ring.capacity() * HASH_LEN + self.table.allocation_size() + std::mem::size_of::<Self>()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<KnownCache>()
}
