"""The RLPx frame codec, both backends: geth's golden frame, a spec restatement of the
MACs, compiled<->pure differential streams, tampering, limits and misuse.

geth's golden frame (p2p/rlpx/rlpx_test.go TestFrameReadWrite) fixes the AES-CTR part
only: its MACs come from a fake hash. The MAC side is checked against ``SpecSender``, a
literal restatement of devp2p rlpx.md "Framing" written here independently of both
backends, and then the backends are checked against each other.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_support import load_vector

from ethnode.crypto.keccak import keccak256, keccak256_hasher
from ethnode.errors import EthnodeError
from ethnode.p2p.rlpx import frame as frame_mod
from ethnode.p2p.rlpx.frame import (
    MAX_FRAME_SIZE,
    FrameError,
    FrameTooLargeError,
    MACMismatchError,
    frame_implementation,
)
from ethnode.rlp import encode as rlp_encode

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

AES = bytes.fromhex("0b" * 32)
MAC = bytes.fromhex("5c" * 32)
# A's egress MAC is B's ingress MAC and the other way round, as after a handshake.
SEED_AB = b"initiator egress seed"
SEED_BA = b"recipient egress seed"


def _codec_class(kind: str) -> Any:
    try:
        return frame_implementation(kind)
    except ImportError as exc:
        pytest.skip(f"compiled frame codec unavailable: {exc}")


@pytest.fixture(params=["compiled", "pure"])
def codec_class(request: pytest.FixtureRequest) -> Any:
    """Each FrameCodec implementation in turn; the compiled one skips only when not built."""
    return _codec_class(request.param)


def both_classes() -> tuple[Any, Any]:
    return _codec_class("compiled"), _codec_class("pure")


def pair(sender_cls: Any, receiver_cls: Any, aes: bytes = AES, mac: bytes = MAC) -> tuple[Any, Any]:
    """Two codecs facing each other, as the two ends of one connection."""
    return sender_cls(aes, mac, SEED_AB, SEED_BA), receiver_cls(aes, mac, SEED_BA, SEED_AB)


def read(receiver: Any, frame: bytes) -> tuple[int, bytes]:
    need = receiver.read_header(frame[:32])
    assert need == len(frame) - 32
    return receiver.read_body(frame[32:])  # type: ignore[no-any-return]


class SpecSender:
    """devp2p rlpx.md "Framing", restated literally: the reference for the MAC bytes.

    header-mac-seed = aes(mac-secret, keccak256.digest(egress-mac)[:16]) ^ header-ciphertext
    egress-mac = keccak256.update(egress-mac, header-mac-seed)
    header-mac = keccak256.digest(egress-mac)[:16]
    egress-mac = keccak256.update(egress-mac, frame-ciphertext)
    frame-mac-seed = aes(mac-secret, keccak256.digest(egress-mac)[:16]) ^ keccak256.digest(egress-mac)[:16]
    egress-mac = keccak256.update(egress-mac, frame-mac-seed)
    frame-mac = keccak256.digest(egress-mac)[:16]
    """

    def __init__(self, aes_secret: bytes, mac_secret: bytes, egress_seed: bytes) -> None:
        self.ctr = Cipher(algorithms.AES(aes_secret), modes.CTR(bytes(16))).encryptor()
        self.mac_secret = mac_secret
        self.egress = keccak256_hasher()
        self.egress.update(egress_seed)

    def aes_block(self, block: bytes) -> bytes:
        enc = Cipher(algorithms.AES(self.mac_secret), modes.ECB()).encryptor()
        return enc.update(block) + enc.finalize()

    @staticmethod
    def xor(a: bytes, b: bytes) -> bytes:
        return bytes(x ^ y for x, y in zip(a, b, strict=True))

    def frame(self, content: bytes, size: int | None = None) -> bytes:
        """A frame whose decrypted content is ``content`` (size field overridable)."""
        size = len(content) if size is None else size
        header = size.to_bytes(3, "big") + b"\xc2\x80\x80"
        header_ct = self.ctr.update(header.ljust(16, b"\x00"))
        self.egress.update(self.xor(self.aes_block(self.egress.digest()[:16]), header_ct))
        header_mac = self.egress.digest()[:16]
        body_ct = self.ctr.update(content + bytes(-len(content) % 16))
        self.egress.update(body_ct)
        digest16 = self.egress.digest()[:16]
        self.egress.update(self.xor(self.aes_block(digest16), digest16))
        frame_mac = self.egress.digest()[:16]
        return header_ct + header_mac + body_ct + frame_mac


# --- geth's golden frame ---------------------------------------------------------------


def test_golden_frame_aes_matches_geth(codec_class: Any) -> None:
    golden = load_vector("rlpx", "eip8_handshake.json")["extra_from_go_ethereum"]["frame_golden"]
    aes, mac = bytes.fromhex(golden["aes_secret"]), bytes.fromhex(golden["mac_secret"])
    assert aes == keccak256(b"")  # geth's setup: aes-secret = mac-secret = keccak256("")
    expected = bytes.fromhex(golden["golden_frame"])
    payload = bytes.fromhex(golden["msg_payload_rlp"])

    sender, receiver = pair(codec_class, codec_class, aes, mac)
    frame = sender.write(golden["msg_code"], payload)
    # header ciphertext and body ciphertext are geth's; its MACs (0x01 * 16) are from a fake hash.
    assert len(frame) == len(expected) == 64
    assert frame[:16] == expected[:16]
    assert frame[32:48] == expected[32:48]
    assert expected[16:32] == expected[48:] == b"\x01" * 16
    assert read(receiver, frame) == (8, payload)

    # The real MACs are the spec's, and geth's fake ones are refused.
    assert frame == SpecSender(aes, mac, SEED_AB).frame(bytes.fromhex(golden["frame_content"]))
    with pytest.raises(MACMismatchError):
        codec_class(aes, mac, b"", SEED_AB).read_header(expected[:32])


@pytest.mark.parametrize("code", [0, 1, 0x10, 0x7F, 0x80, 0xFF, 0x100, 0x1234_5678, 2**64 - 1])
def test_message_code_is_rlp_integer(codec_class: Any, code: int) -> None:
    """Frame content is rlp(code) || payload, as geth's rlp.EncodeToBytes(uint64): 0 -> 0x80."""
    payload = b"\xc2\x01\x02"
    frame = codec_class(AES, MAC, SEED_AB, b"").write(code, payload)
    assert frame == SpecSender(AES, MAC, SEED_AB).frame(rlp_encode(code) + payload)
    assert read(codec_class(AES, MAC, b"", SEED_AB), frame) == (code, payload)


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 15, 16, 17, 31, 32, 100, 1024, 16 * 1024, 70_000])
def test_padding_and_size_field(codec_class: Any, size: int) -> None:
    payload = os.urandom(size)
    frame = codec_class(AES, MAC, SEED_AB, b"").write(3, payload)
    fsize = 1 + size
    assert len(frame) == 32 + -(-fsize // 16) * 16 + 16
    assert frame == SpecSender(AES, MAC, SEED_AB).frame(b"\x03" + payload)


def test_stream_of_frames_keeps_state(codec_class: Any) -> None:
    spec = SpecSender(AES, MAC, SEED_AB)
    sender, receiver = pair(codec_class, codec_class)
    for i in range(40):
        payload = os.urandom(i * 37)
        frame = sender.write(i, payload)
        assert frame == spec.frame(rlp_encode(i) + payload)
        assert read(receiver, frame) == (i, payload)


def test_accepts_any_bytes_like(codec_class: Any) -> None:
    sender, receiver = pair(codec_class, codec_class)
    for payload in (bytearray(b"abc"), memoryview(b"xyzw"), memoryview(b"__sliced__")[2:8]):
        frame = sender.write(7, payload)
        assert receiver.read_header(memoryview(frame)[:32]) == len(frame) - 32
        assert receiver.read_body(bytearray(frame[32:])) == (7, bytes(payload))


# --- compiled vs pure ------------------------------------------------------------------

messages = st.lists(
    st.tuples(
        st.one_of(st.integers(0, 0x7F), st.integers(0, 2**64 - 1)),
        st.one_of(st.binary(max_size=64), st.binary(min_size=1000, max_size=3000)),
    ),
    min_size=1,
    max_size=12,
)
secrets = st.binary(min_size=32, max_size=32)


@SETTINGS
@given(messages, secrets, secrets, st.binary(max_size=200))
def test_compiled_to_pure_and_back(
    msgs: list[tuple[int, bytes]], aes: bytes, mac: bytes, seed: bytes
) -> None:
    compiled, pure = both_classes()
    c_send, p_recv = compiled(aes, mac, seed, b"x"), pure(aes, mac, b"x", seed)
    p_send, c_recv = pure(aes, mac, seed, b"y"), compiled(aes, mac, b"y", seed)
    for code, payload in msgs:
        frame = c_send.write(code, payload)
        assert frame == p_send.write(code, payload)  # byte for byte
        assert read(p_recv, frame) == (code, payload)
        assert read(c_recv, frame) == (code, payload)


@SETTINGS
@given(messages, st.data())
def test_both_reject_the_same_tampering(msgs: list[tuple[int, bytes]], data: st.DataObject) -> None:
    """Flip one bit somewhere in the stream: both receivers fail at the same frame, same class."""
    compiled, pure = both_classes()
    sender = pure(AES, MAC, SEED_AB, b"")
    frames = [sender.write(code, payload) for code, payload in msgs]
    target = data.draw(st.integers(0, len(frames) - 1))
    bit = data.draw(st.integers(0, len(frames[target]) * 8 - 1))
    tampered = bytearray(frames[target])
    tampered[bit // 8] ^= 1 << (bit % 8)
    frames[target] = bytes(tampered)
    outcomes = []
    for cls in (compiled, pure):
        receiver = cls(AES, MAC, b"", SEED_AB)
        for i, frame in enumerate(frames):
            try:
                read(receiver, frame)
            except MACMismatchError:
                outcomes.append(i)
                break
    assert outcomes == [target, target]


# --- tampering, limits, misuse ---------------------------------------------------------


@pytest.mark.parametrize("where", ["header", "header-mac", "body", "frame-mac"])
def test_flipped_bit_is_mac_mismatch(codec_class: Any, where: str) -> None:
    sender, receiver = pair(codec_class, codec_class)
    frame = bytearray(sender.write(1, b"payload bytes"))
    offset = {"header": 2, "header-mac": 20, "body": 33, "frame-mac": len(frame) - 1}[where]
    frame[offset] ^= 0x40
    if where.startswith("header"):
        with pytest.raises(MACMismatchError, match="header"):
            receiver.read_header(bytes(frame[:32]))
    else:
        receiver.read_header(bytes(frame[:32]))
        with pytest.raises(MACMismatchError, match="frame"):
            receiver.read_body(bytes(frame[32:]))


def test_error_classes() -> None:
    assert issubclass(MACMismatchError, FrameError)
    assert issubclass(FrameTooLargeError, FrameError)
    assert issubclass(FrameError, EthnodeError)


def test_max_frame_size(codec_class: Any) -> None:
    sender, receiver = pair(codec_class, codec_class)
    payload = os.urandom(MAX_FRAME_SIZE - 1)  # + 1 byte of message code = 2**24 - 1
    frame = sender.write(0, payload)
    assert frame[:32] and read(receiver, frame) == (0, payload)
    with pytest.raises(FrameTooLargeError):
        sender.write(0, payload + b"x")
    with pytest.raises(FrameTooLargeError):
        sender.write(0x80, payload)  # two-byte code
    # a refused write leaves the stream usable
    assert read(receiver, sender.write(5, b"after")) == (5, b"after")


@pytest.mark.parametrize("code", [-1, 2**64])
def test_code_out_of_range(codec_class: Any, code: int) -> None:
    with pytest.raises(OverflowError):
        codec_class(AES, MAC, b"", b"").write(code, b"")


def test_bad_secret_length(codec_class: Any) -> None:
    with pytest.raises(ValueError):
        codec_class(AES[:16], MAC, b"", b"")
    with pytest.raises(ValueError):
        codec_class(AES, MAC + b"\x00", b"", b"")


def test_calls_out_of_order(codec_class: Any) -> None:
    sender, receiver = pair(codec_class, codec_class)
    frame = sender.write(2, b"abc")
    with pytest.raises(FrameError, match="before read_header"):
        receiver.read_body(frame[32:])
    receiver.read_header(frame[:32])
    with pytest.raises(FrameError, match="pending"):
        receiver.read_header(frame[:32])
    assert receiver.read_body(frame[32:]) == (2, b"abc")
    with pytest.raises(FrameError, match="before read_header"):
        receiver.read_body(frame[32:])


def test_wrong_lengths(codec_class: Any) -> None:
    sender, receiver = pair(codec_class, codec_class)
    frame = sender.write(2, b"abc")
    with pytest.raises(FrameError, match="32 bytes"):
        receiver.read_header(frame[:31])
    receiver.read_header(frame[:32])
    with pytest.raises(FrameError, match="must be 32 bytes, got 31"):
        receiver.read_body(frame[32:-1])


@pytest.mark.parametrize(
    "content",
    [
        b"",  # no message code at all
        b"\x00",  # integer with a leading zero
        b"\x81\x05",  # single byte below 0x80 in long form
        b"\x82\x00\x01",  # leading zero in long form
        b"\x83\x01\x02",  # runs past the frame
        b"\x89" + b"\x01" * 9,  # wider than uint64
        b"\xc0",  # a list
        b"\xc2\x01\x02",
    ],
)
def test_bad_message_code(codec_class: Any, content: bytes) -> None:
    spec = SpecSender(AES, MAC, SEED_AB)
    receiver = codec_class(AES, MAC, b"", SEED_AB)
    with pytest.raises(FrameError) as info:
        read(receiver, spec.frame(content))
    assert not isinstance(info.value, MACMismatchError)
    # The twins leave the stream in the same place: the next frame still reads.
    assert read(receiver, spec.frame(b"\x05hi")) == (5, b"hi")


def test_long_form_code_reads(codec_class: Any) -> None:
    spec = SpecSender(AES, MAC, SEED_AB)
    receiver = codec_class(AES, MAC, b"", SEED_AB)
    assert read(receiver, spec.frame(b"\x81\x80" + b"p" * 20)) == (0x80, b"p" * 20)
    assert read(receiver, spec.frame(b"\x88" + b"\xff" * 8)) == (2**64 - 1, b"")


def test_backend_selection() -> None:
    import ethnode

    kind = ethnode.backends()["rlpx_frame"]
    assert frame_mod.FrameCodec is frame_implementation(str(kind))
    with pytest.raises(ValueError):
        frame_implementation("cython")
