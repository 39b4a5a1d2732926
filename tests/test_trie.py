"""Merkle Patricia trie roots: published roots, real-chain roots, and py-trie as a second opinion."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_support import shared_path

from ethnode import rlp
from ethnode.crypto.keccak import keccak256
from ethnode.trie import EMPTY_ROOT, hex_prefix, ordered_trie_root, secure_trie_root, trie_root


def _b(text: str | None) -> bytes:
    """ethereum/tests TrieTests convention: 0x-prefixed strings are hex, others are ASCII."""
    if text is None:
        return b""
    return bytes.fromhex(text[2:]) if text.startswith("0x") else text.encode()


def test_empty_root_is_hash_of_empty_string_encoding() -> None:
    assert EMPTY_ROOT == keccak256(rlp.encode(b""))
    assert EMPTY_ROOT.hex() == "56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
    assert trie_root([]) == EMPTY_ROOT
    assert secure_trie_root([]) == EMPTY_ROOT
    assert ordered_trie_root([]) == EMPTY_ROOT


@pytest.mark.parametrize(
    ("path", "leaf", "encoded"),
    [
        # Examples from the yellow paper / ethereum wiki "Patricia Tree" (compact encoding).
        ("12345", False, "112345"),
        ("012345", False, "00012345"),
        ("0f1cb8", True, "200f1cb8"),
        ("f1cb8", True, "3f1cb8"),
        ("", True, "20"),
        ("", False, "00"),
    ],
)
def test_hex_prefix(path: str, leaf: bool, encoded: str) -> None:
    assert hex_prefix(path, leaf).hex() == encoded


# Sequences of updates from ethereum/tests TrieTests/trietest.json (MIT); null = delete.
TRIETEST = {
    "emptyValues": (
        [
            ("do", "verb"), ("ether", "wookiedoo"), ("horse", "stallion"), ("shaman", "horse"),
            ("doge", "coin"), ("ether", None), ("dog", "puppy"), ("shaman", None),
        ],
        "5991bb8c6514148a29db676a14ac506cd2cd5775ace63c30a4fe457715e9ac84",
    ),
    "jeff": (
        [
            ("0x0000000000000000000000000000000000000000000000000000000000000045",
             "0x22b224a1420a802ab51d326e29fa98e34c4f24ea"),
            ("0x0000000000000000000000000000000000000000000000000000000000000046",
             "0x67706c2076330000000000000000000000000000000000000000000000000000"),
            ("0x0000000000000000000000000000000000000000000000000000001234567890",
             "0x697c7b8c961b56f675d570498424ac8de1a918f6"),
            ("0x000000000000000000000000697c7b8c961b56f675d570498424ac8de1a918f6", "0x1234567890"),
            ("0x0000000000000000000000007ef9e639e2733cb34e4dfc576d4b23f72db776b2",
             "0x4655474156000000000000000000000000000000000000000000000000000000"),
            ("0x000000000000000000000000ec4f34c97e43fbb2816cfd95e388353c7181dab1",
             "0x4e616d6552656700000000000000000000000000000000000000000000000000"),
            ("0x4655474156000000000000000000000000000000000000000000000000000000",
             "0x7ef9e639e2733cb34e4dfc576d4b23f72db776b2"),
            ("0x4e616d6552656700000000000000000000000000000000000000000000000000",
             "0xec4f34c97e43fbb2816cfd95e388353c7181dab1"),
            ("0x0000000000000000000000000000000000000000000000000000001234567890", None),
            ("0x000000000000000000000000697c7b8c961b56f675d570498424ac8de1a918f6",
             "0x6f6f6f6820736f2067726561742c207265616c6c6c793f000000000000000000"),
            ("0x6f6f6f6820736f2067726561742c207265616c6c6c793f000000000000000000",
             "0x697c7b8c961b56f675d570498424ac8de1a918f6"),
        ],
        "9f6221ebb8efe7cff60a716ecb886e67dd042014be444669f0159d8e68b42100",
    ),
    "insert-middle-leaf": (
        [
            ("key1aa", "0123456789012345678901234567890123456789xxx"),
            ("key1", "0123456789012345678901234567890123456789Very_Long"),
            ("key2bb", "aval3"), ("key2", "short"), ("key3cc", "aval3"),
            ("key3", "1234567890123456789012345678901"),
        ],
        "cb65032e2f76c48b82b5c24b3db8f670ce73982869d38cd39a624f23d62a9e89",
    ),
    # geth trie/trie_test.go TestInsert.
    "geth-insert-1": (
        [("doe", "reindeer"), ("dog", "puppy"), ("dogglesworth", "cat")],
        "8aad789dff2f538bca5d8ea56e8abe10f4c7ba3a5dea95fea4cd6e7c3a1168d3",
    ),
    "geth-insert-2": (
        [("A", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")],
        "d23786fb4a010da3ce639d66d5e904a11dbc02746d1ce25029e53290cabf28ab",
    ),
}

# trietest.json "branchingTests": 25 addresses inserted then all deleted -> the empty root.
BRANCHING_KEYS = """
04110d816c380812a427968ece99b1c963dfbce6 095e7baea6a6c7c4c2dfeb977efac326af552d87
0a517d755cebbf66312b30fff713666a9cb917e0 24dd378f51adc67a50e339e8031fe9bd4aafab36
293f982d000532a7861ab122bdc4bbfd26bf9030 2cf5732f017b0cf1b1f13a1478e10239716bf6b5
31c640b92c21a1f1465c91070b4b3b4d6854195f 37f998764813b136ddf5a754f34063fd03065e36
37fa399a749c121f8a15ce77e3d9f9bec8020d7a 4f36659fa632310b6ec438dea4085b522a2dd077
62c01474f089b07dae603491675dc5b5748f7049 729af7294be595a0efd7d891c9e51f89c07950c7
83e3e5a16d3b696a0314b30b2534804dd5e11197 8703df2417e0d7c59d063caa9583cb10a4d20532
8dffcd74e5b5923512916c6a64b502689cfa65e1 95a4d7cccb5204733874fa87285a176fe1e9e240
99b2fcba8120bedd048fe79f5262a6690ed38c39 a4202b8b8afd5354e3e40a219bdc17f6001bf2cf
a94f5374fce5edbc8e2a8697c15331677e6ebf0b a9647f4a0a14042d91dc33c0328030a7157c93ae
aa6cffe5185732689c18f37a7f86170cb7304c2a aae4a2e3c51c04606dcb3723456e58f3ed214f45
c37a43e940dfb5baf581a0b82b351d48305fc885 d2571607e241ecf590ed94b12d87c94babe36db6
f735071cbee190d76b704ce68384fc21e389fbe7
""".split()


@pytest.mark.parametrize("name", sorted(TRIETEST))
def test_published_roots(name: str) -> None:
    updates, root = TRIETEST[name]
    # Fed as a sequence of updates: later pairs override, an empty value deletes.
    assert trie_root((_b(k), _b(v)) for k, v in updates).hex() == root
    # Fed as the final key set, in any order, the root is the same.
    final = {_b(k): _b(v) for k, v in updates}
    items = [(k, v) for k, v in final.items() if v]
    random.Random(7).shuffle(items)
    assert trie_root(items).hex() == root


def test_branching_inserts_then_deletes_give_empty_root() -> None:
    keys = [bytes.fromhex(k) for k in BRANCHING_KEYS]
    assert len(keys) == 25
    updates = [(k, b"something") for k in keys] + [(k, b"") for k in keys]
    assert trie_root(updates) == EMPTY_ROOT
    assert trie_root((k, b"something") for k in keys) != EMPTY_ROOT


def test_puppy_root_from_the_brief() -> None:
    # do/horse/doge/dog is trietest.json "emptyValues" after its deletions, hence 0x5991...,
    # not 0x8aad... (that root belongs to doe/dog/dogglesworth, geth TestInsert).
    items = [(b"do", b"verb"), (b"horse", b"stallion"), (b"doge", b"coin"), (b"dog", b"puppy")]
    assert trie_root(items).hex() == "5991bb8c6514148a29db676a14ac506cd2cd5775ace63c30a4fe457715e9ac84"


def test_secure_roots() -> None:
    # paritytech trie-root sec_trie_root_works (keccak-hashed keys).
    items = [(b"doe", b"reindeer"), (b"dog", b"puppy"), (b"dogglesworth", b"cat")]
    assert secure_trie_root(items).hex() == "d4cd937e4a4368d7931a9cf51686b7e10abb3dce38a39000fd7902a092b64585"
    # ethereum/tests TrieTests/hex_encoded_securetrie_test.json "test1": address -> account RLP.
    accounts = [
        ("a94f5374fce5edbc8e2a8697c15331677e6ebf0b",
         "f848018405f446a7a056e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
         "a0c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
        ("095e7baea6a6c7c4c2dfeb977efac326af552d87",
         "f8440101a056e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
         "a004bccc5d94f4d1f99aab44369a910179931772f2a5c001c3229f57831c102769"),
        ("d2571607e241ecf590ed94b12d87c94babe36db6",
         "f8440180a0ba4b47865c55a341a4a78759bb913cd15c3ee8eaf30a62fa8d1c8863113d84e8"
         "a0c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
        ("62c01474f089b07dae603491675dc5b5748f7049",
         "f8448080a056e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
         "a0c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
        ("2adc25665018aa1fe0e6bc666dac8fc2697ff9ba",
         "f8478083019a59a056e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
         "a0c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
    ]
    root = secure_trie_root((bytes.fromhex(a), bytes.fromhex(v)) for a, v in accounts)
    assert root.hex() == "730a444e08ab4b8dee147c9b232fc52d34a223d600031c1e9d25bfc985cbd797"


def test_single_short_leaf_root_is_still_hashed() -> None:
    # The root node is hashed even when its encoding is shorter than 32 bytes.
    node = rlp.encode([hex_prefix(b"a".hex(), True), b"b"])
    assert len(node) < 32
    assert trie_root([(b"a", b"b")]) == keccak256(node)


def test_ordered_root_keys_by_rlp_index() -> None:
    # Index keys are rlp(i): 0x80, 0x01..0x7f, 0x8180...; their byte order is not numeric order.
    pytrie = pytest.importorskip("trie")
    values = [bytes([i % 256]) * (i % 50 + 1) for i in range(300)]
    reference = pytrie.HexaryTrie(db={})
    for i, v in enumerate(values):
        reference[rlp.encode(i)] = v
    assert ordered_trie_root(values) == reference.root_hash


def test_block_body_roots_of_the_ethtest_chain() -> None:
    """Every tx root and withdrawals root of the 600 ethtest blocks, recomputed."""
    from ethnode.core.types import Header
    from ethnode.rlp._pure import item_header

    data = shared_path("chains", "ethtest", "chain.rlp").read_bytes()
    pos = checked_txs = checked_withdrawals = 0
    while pos < len(data):
        _, _, end = item_header(data, pos, len(data))
        block = rlp.decode(data[pos:end])
        pos = end
        header = Header.decode(rlp.encode(block[0]))
        # A typed tx sits in a block body as an RLP string wrapping type||payload; the trie
        # value is that inner envelope. A legacy tx is a list and is its own value.
        txs = [tx if isinstance(tx, bytes) else rlp.encode(tx) for tx in block[1]]
        assert ordered_trie_root(txs) == header.tx_root, header.number
        checked_txs += len(txs)
        if header.withdrawals_root is not None:
            ws = [rlp.encode(w) for w in block[3]]
            assert ordered_trie_root(ws) == header.withdrawals_root, header.number
            checked_withdrawals += len(ws)
    assert checked_txs > 0 and checked_withdrawals > 0


# --- differential against py-trie (the `trie` package), when it is installed ----------

_keys = st.binary(min_size=0, max_size=5) | st.binary(min_size=32, max_size=32)
# Small alphabets make shared prefixes, keys that are prefixes of others, and short nodes.
_prefixy = st.lists(st.sampled_from([0x00, 0x01, 0x10, 0x11, 0xFF]), max_size=4).map(bytes)
_values = st.binary(min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_keys | _prefixy, _values), max_size=40))
def test_matches_py_trie(items: list[tuple[bytes, bytes]]) -> None:
    pytrie = pytest.importorskip("trie")
    reference = pytrie.HexaryTrie(db={})
    for k, v in items:
        reference[k] = v
    assert trie_root(items) == reference.root_hash


def test_matches_py_trie_on_a_large_secure_set() -> None:
    pytrie = pytest.importorskip("trie")
    rng = random.Random(2124)
    items = [(rng.randbytes(20), rng.randbytes(rng.randint(1, 90))) for _ in range(500)]
    reference = pytrie.HexaryTrie(db={})
    for k, v in items:
        reference[keccak256(k)] = v
    assert secure_trie_root(items) == reference.root_hash
