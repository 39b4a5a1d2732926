"""The Rust Keccak-f[1600] implementations behind the compiled frame MACs.

The frame tests (``test_rlpx_frame.py``) check the compiled MACs against a spec
restatement and the pure twin with whichever permutation this CPU picks; here every
available permutation is checked against the others and a known answer, and a frame
stream written with the portable permutation is compared with the default one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest
from shared_support import subprocess_env

_rust = pytest.importorskip("ethnode._rust", reason="compiled module not built")
if os.environ.get("ETHNODE_NO_EXTENSIONS"):
    pytest.skip("ETHNODE_NO_EXTENSIONS is set", allow_module_level=True)

# Keccak-f[1600] of the all-zero state, first and last lanes (Keccak team's KeccakF-1600 test vector).
ZERO_STATE_LANE_0 = 0xF1258F7940E1DDE7
ZERO_STATE_LANE_24 = 0xEAF1FF7B5CECA249


def available() -> list[str]:
    names = []
    for name in ("portable", "avx512"):
        try:
            _rust.keccak_f1600_permute(bytes(200), name)
            names.append(name)
        except ValueError:
            pass
    return names


@pytest.mark.parametrize("name", available())
def test_known_answer(name: str) -> None:
    out = _rust.keccak_f1600_permute(bytes(200), name)
    assert int.from_bytes(out[:8], "little") == ZERO_STATE_LANE_0
    assert int.from_bytes(out[192:], "little") == ZERO_STATE_LANE_24


def test_implementations_agree_on_random_states() -> None:
    names = available()
    for _ in range(300):
        state = os.urandom(200)
        outs = {_rust.keccak_f1600_permute(state, name) for name in names}
        assert len(outs) == 1


def test_run_reports_the_codec_permutation() -> None:
    assert _rust.keccak_f1600_implementation() in available()
    assert _rust.keccak_f1600_run(3) == _rust.keccak_f1600_run(3, "portable")
    with pytest.raises(ValueError):
        _rust.keccak_f1600_run(1, "no-such-permutation")


_FRAMES = """
import hashlib, sys
from ethnode._rust import FrameCodec, keccak_f1600_implementation
c = FrameCodec(bytes(range(32)), bytes(range(32, 64)), b"egress seed", b"ingress seed")
h = hashlib.sha256()
for size in (0, 1, 15, 16, 119, 120, 135, 136, 137, 271, 272, 1000, 4096, 70000):
    h.update(c.write(0x10 + size % 7, bytes(i % 251 for i in range(size))))
print(keccak_f1600_implementation(), h.hexdigest())
"""


@pytest.mark.subprocess
def test_frames_identical_with_the_portable_permutation() -> None:
    """The whole codec (sponge, SIMD absorb, digests) gives the same frames either way."""

    def run(**env: str) -> list[str]:
        full = subprocess_env(**env)
        out = subprocess.run([sys.executable, "-c", _FRAMES], capture_output=True, text=True, env=full,
                             cwd=tempfile.gettempdir(), timeout=60, check=True)
        return out.stdout.split()

    default, portable = run(), run(ETHNODE_KECCAK="portable")
    assert portable[0] == "portable"
    assert default[1] == portable[1]
