"""eth/72 (EIP-8070) encodings against geth v1.17.10's rules, without sockets.

geth's types (``eth/protocols/eth/protocol.go``): ``NewPooledTransactionHashesPacket72`` is
``[types, sizes, hashes, mask]``, ``GetCellsRequestPacket`` ``[id, hashes, mask]``,
``CellsPacket`` ``[id, hashes, [[cell...] per tx], mask]``; the mask is a
``types.CustodyBitmap`` (``[16]byte``, RLP string ``0x90 || 16 bytes``, bit i of cell i in
byte i/8 at position i%8). A Cells list carries a tx's cells index-major (for each index,
every blob's cell: devp2p's ``buildCells``); geth's handler reorders them blob-major
(``cells[i][(j%blobs)*count+j/blobs]``).
"""

from __future__ import annotations

import pytest

from ethnode import rlp
from ethnode.core.types.cells import CELL_SIZE, BlobTxWithCells, CellSidecar, blobless_encoding, blobless_item
from ethnode.core.types.custody import (
    CUSTODY_ALL,
    CUSTODY_DATA,
    custody_from_bytes,
    custody_indices,
    custody_of,
    custody_to_bytes,
)
from ethnode.core.types.transaction import (
    BLOB_TX_TYPE,
    BlobTx,
    BlobTxSidecar,
    BlobTxWithSidecar,
    decode_tx_item,
    kzg_to_versioned_hash,
)
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.protocols.eth.handlers import blob_major_cells, decode
from ethnode.eth.protocols.eth.protocol import (
    CELLS,
    ETH71,
    ETH72,
    GET_CELLS,
    NEW_POOLED_TRANSACTION_HASHES,
    PROTOCOL_LENGTHS,
    SUPPORTED_VERSIONS,
    PooledHashes,
    PooledHashes72,
    ProtocolViolation,
    message,
)

H1 = bytes.fromhex("00" * 28 + "deadc0de")
H2 = bytes.fromhex("00" * 28 + "feedbeef")


def test_eth72_is_offered_first_with_geth_codes() -> None:
    assert SUPPORTED_VERSIONS[0] == ETH72 and PROTOCOL_LENGTHS[ETH72] == 22  # geth protocolLengths[ETH72]
    assert (GET_CELLS, CELLS) == (0x14, 0x15)  # geth GetCellsMsg, CellsMsg
    assert message(ETH71, GET_CELLS) is None and message(ETH71, CELLS) is None


def test_custody_bitmap_layout_is_geths() -> None:
    # geth NewCustodyBitmap([]uint64{0, 9, 127}): byte 0 bit 0, byte 1 bit 1, byte 15 bit 7.
    mask = custody_of([0, 9, 127])
    assert custody_to_bytes(mask) == bytes([0x01, 0x02]) + bytes(13) + b"\x80"
    assert custody_indices(mask) == [0, 9, 127]
    assert custody_to_bytes(CUSTODY_ALL) == b"\xff" * 16  # CustodyBitmapAll
    assert custody_to_bytes(CUSTODY_DATA) == b"\xff" * 8 + b"\x00" * 8  # CustodyBitmapData: cells 0..63
    assert custody_from_bytes(custody_to_bytes(custody_of([5, 21, 40, 58]))) == custody_of([5, 21, 40, 58])
    with pytest.raises(ValueError, match="out of range"):
        custody_of([128])
    with pytest.raises(ValueError, match="invalid length 15"):
        custody_from_bytes(b"\xff" * 15)


def test_announcement_wire_bytes() -> None:
    ann = PooledHashes72(b"\x03", [1234], [H1], custody_to_bytes(CUSTODY_ALL))
    body = (bytes.fromhex("03")  # types: one byte string [0x03] encodes as itself
            + bytes.fromhex("c3") + bytes.fromhex("8204d2")  # sizes [1234]
            + bytes.fromhex("e1a0") + H1  # hashes
            + bytes.fromhex("90") + b"\xff" * 16)  # mask: a 16-byte string
    assert len(body) == 56
    wire = bytes([0xF8, len(body)]) + body  # a list of 56 bytes takes a one-byte length
    assert ann.encode() == wire
    assert decode(ETH72, NEW_POOLED_TRANSACTION_HASHES, wire) == ann
    # eth/71 has no mask: the same bytes are not an announcement there, and eth/71's are not one on eth/72.
    with pytest.raises(ProtocolViolation, match="NewPooledTransactionHashes"):
        decode(ETH71, NEW_POOLED_TRANSACTION_HASHES, wire)
    with pytest.raises(ProtocolViolation, match="NewPooledTransactionHashes"):
        decode(ETH72, NEW_POOLED_TRANSACTION_HASHES, PooledHashes(b"\x03", [1234], [H1]).encode())


@pytest.mark.parametrize("mask", [b"\xff" * 15, b"\xff" * 17, b""])
def test_mask_must_be_16_bytes(mask: bytes) -> None:
    body = bytes.fromhex("03c38204d2e1a0") + H1 + bytes([0x80 + len(mask)]) + mask
    wire = bytes([0xC0 + len(body)]) + body if len(body) < 56 else bytes([0xF8, len(body)]) + body
    with pytest.raises(ProtocolViolation):
        decode(ETH72, NEW_POOLED_TRANSACTION_HASHES, wire)


def test_get_cells_and_cells_wire_bytes() -> None:
    mask = custody_to_bytes(custody_of([5, 21]))
    get = message(ETH72, GET_CELLS)
    assert get is not None
    wire = get.encode(([H1, H2], mask), 7)
    body = b"\x07" + bytes.fromhex("f842") + bytes.fromhex("a0") + H1 + bytes.fromhex("a0") + H2 + b"\x90" + mask
    assert len(body) == 0x56 and wire == bytes.fromhex("f856") + body
    assert decode(ETH72, GET_CELLS, wire) == (7, ([H1, H2], mask))

    cells_msg = message(ETH72, CELLS)
    assert cells_msg is not None
    cell = bytes(range(256)) * 8
    wire = cells_msg.encode(([H1], [[cell, cell]], mask), 9)
    rid, (hashes, lists, got_mask) = decode(ETH72, CELLS, wire)
    assert (rid, hashes, lists, got_mask) == (9, [H1], [[cell, cell]], mask)
    # A cell is exactly 2048 bytes (geth kzg4844.Cell): one byte short is malformed.
    short = rlp.encode([9, [H1], [[cell[:-1]]], mask])
    with pytest.raises(ProtocolViolation, match="invalid Cells"):
        decode(ETH72, CELLS, short)


def test_cells_reordered_blob_major_as_geth() -> None:
    # Two blobs, indices [5, 21]: the wire has (i5,b0) (i5,b1) (i21,b0) (i21,b1).
    wire = [b"5/0", b"5/1", b"21/0", b"21/1"]
    mask = custody_of([5, 21])
    assert blob_major_cells([H1], [wire], mask) == [[b"5/0", b"21/0", b"5/1", b"21/1"]]
    assert blob_major_cells([H1, H2], [[], wire], mask)[0] == []  # an empty list: nothing for that tx


@pytest.mark.parametrize(
    ("hashes", "lists", "mask", "error"),
    [
        ([H1, H2], [[b"c"]], custody_of([1]), "length mismatch"),  # geth Enqueue
        ([H1], [[b"a", b"b", b"c"]], custody_of([1, 2]), "inconsistent with 2 custody indices"),
        ([H1], [[b"a"]], 0, "inconsistent with 0 custody indices"),  # cells under an empty mask
        ([H1], [[b"a"] * (6 * 128 + 1)], custody_of([1]), "exceeded the possible maximum"),
    ],
)
def test_malformed_cells_are_violations(hashes: list[bytes], lists: list[list[bytes]], mask: int, error: str) -> None:
    with pytest.raises(ProtocolViolation, match=error):
        blob_major_cells(hashes, lists, mask)


def _blob_tx(blobs: int = 2) -> BlobTxWithSidecar:
    commitments = tuple(bytes([0xC0, i]) + bytes(46) for i in range(blobs))
    tx = BlobTx(1, 0, 1, 10**9, 21000, b"\x11" * 20, 0, b"", [], 1, [kzg_to_versioned_hash(c) for c in commitments],
                0, 0, 0).sign(PrivateKey(b"\x01" * 32))
    sidecar = BlobTxSidecar(tuple(bytes([i]) * 131072 for i in range(blobs)), commitments,
                            tuple(bytes([0xA0]) + bytes(47) for _ in range(128 * blobs)), 1)
    return BlobTxWithSidecar(tx, sidecar)  # type: ignore[arg-type]


def test_blobless_network_form() -> None:
    """eth/72 PooledTransactions: ``0x03 || rlp([tx, version, [], commitments, proofs])`` (geth
    encodeForNetwork for version >= 72), which decodes as a blob tx with an empty blob list."""
    full = _blob_tx()
    item = blobless_item(full)
    tx = decode_tx_item(item, allow_sidecar=True)
    assert isinstance(tx, BlobTxWithSidecar) and tx.hash == full.hash
    assert tx.sidecar == BlobTxSidecar((), full.sidecar.commitments, full.sidecar.proofs, 1)
    saved = len(full.network_encoding()) - len(tx.network_encoding())
    # geth blobPayloadSize(2) = 2 * (131072 + 4) + 4: two 4-byte-headed blobs and a 4-byte list
    # header give way to the 1-byte empty list, and the outer list's header shrinks by a byte.
    assert saved == 2 * (131072 + 4) + 4
    cells = BlobTxWithCells(full.tx, CellSidecar((b"x" * CELL_SIZE,) * 4, custody_of([1, 7]),
                                                 full.sidecar.commitments, full.sidecar.proofs))
    assert cells.item() == item and cells.type == BLOB_TX_TYPE and cells.hash == full.hash
    assert blobless_encoding(full.tx, 1, full.sidecar.commitments, full.sidecar.proofs) == tx.network_encoding()


def test_cell_sidecar_lookup() -> None:
    # Blob-major, ascending index: blob 0's cells 3 and 9, then blob 1's.
    sc = CellSidecar((b"0/3", b"0/9", b"1/3", b"1/9"), custody_of([3, 9]), (b"c0", b"c1"), ())
    assert sc.cell(1, 9) == b"1/9" and sc.cell(0, 3) == b"0/3" and sc.cell(0, 4) is None


def test_fcu_v4_custody_reaches_the_blob_fetcher() -> None:
    """engine_forkchoiceUpdatedV4's third argument (geth: BlobFetcher().UpdateCustody), a
    16-byte bitmap in hex; any other length is geth's invalid-params error."""
    from eth_support import ethtest_chain

    from ethnode.eth.catalyst.api import EngineAPI
    from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError

    api = EngineAPI(ethtest_chain(0))
    seen: list[int] = []
    api.on_custody = seen.append
    state = {"headBlockHash": "0x" + "11" * 32, "safeBlockHash": "0x" + "00" * 32,
             "finalizedBlockHash": "0x" + "00" * 32}
    custody = custody_of([7, 19, 33, 52, 68, 90, 111, 126])  # devp2p BlobTxAvailabilityFailure's
    reply = api.forkchoice_updated_v4(state, None, "0x" + custody_to_bytes(custody).hex())
    assert reply["payloadStatus"]["status"] == "SYNCING" and seen == [custody]
    api.forkchoice_updated_v4(state, None)  # no custody given: left as it is
    assert seen == [custody]
    with pytest.raises(RPCError) as err:
        api.forkchoice_updated_v4(state, None, "0x" + "ff" * 15)
    assert err.value.code == INVALID_PARAMS and "custody bitmap: invalid length 15, want 16" in str(err.value)
