"""RLP encode/decode: ethnode compiled vs ethnode pure vs pyrlp vs rusty-rlp.

Every group is one (payload, operation, layer); the report script (``benches/report.py``)
turns a run into ratios against ethnode's compiled codec. "raw" is bytes/ints/lists in
and out; "typed" decodes straight into records (pyrlp: Serializable; rusty-rlp: its raw
codec under pyrlp's sedes, which is how it is used with typed objects).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rlp_cases import build_cases, pyrlp_sedes

from ethnode.rlp import implementation

CASES = build_cases()
IMPLS = ["compiled", "pure", "pyrlp", "rusty"]


def _ethnode(kind: str) -> Any:
    try:
        return implementation(kind)
    except ImportError as exc:
        pytest.skip(f"ethnode {kind} RLP unavailable: {exc}")


def _pyrlp() -> Any:
    return pytest.importorskip("rlp", reason="pyrlp (the `rlp` package) not installed")


def _rusty() -> Any:
    return pytest.importorskip("rusty_rlp", reason="rusty-rlp not installed")


def make(case_name: str, op: str, layer: str, impl: str) -> Callable[[], Any]:
    """A zero-argument callable doing one operation; also checks it computes the right thing."""
    case = CASES[case_name]
    if impl in ("compiled", "pure"):
        mod = _ethnode(impl)
        if layer == "raw":
            fn = (lambda: mod.encode(case.raw)) if op == "encode" else (lambda: mod.decode(case.wire))
        else:
            node = case.sedes.node(mod)
            fn = (lambda: node.encode(case.value)) if op == "encode" else (lambda: node.decode(case.wire))
        expected_typed = case.value
    else:
        pyrlp = _pyrlp()
        sedes = pyrlp_sedes()[case_name]
        typed_value = sedes.deserialize(pyrlp.decode(case.wire))
        if impl == "pyrlp":
            raw_enc, raw_dec = pyrlp.encode, pyrlp.decode
        else:
            rusty = _rusty()

            def raw_enc(obj: Any) -> bytes:
                return rusty.encode_raw(obj)

            def raw_dec(data: bytes) -> Any:
                return rusty.decode_raw(data, True, False)[0]

        if layer == "raw":
            # rusty-rlp's raw encoder takes only bytes and lists: ints go in pre-converted.
            raw_in = case.raw if impl == "pyrlp" else ethnode_raw_decoded(case_name)
            fn = (lambda: raw_enc(raw_in)) if op == "encode" else (lambda: raw_dec(case.wire))
        elif impl == "pyrlp":
            if op == "encode":
                def fn() -> Any:
                    return pyrlp.encode(typed_value, sedes=sedes, cache=False)
            else:
                def fn() -> Any:
                    return pyrlp.decode(case.wire, sedes=sedes)
        else:
            if op == "encode":
                def fn() -> Any:
                    return raw_enc(sedes.serialize(typed_value))
            else:
                def fn() -> Any:
                    return sedes.deserialize(raw_dec(case.wire))
        expected_typed = None
    result = fn()
    if op == "encode":
        assert result == case.wire, f"{impl} {layer} encode of {case_name} differs"
    elif layer == "raw" and impl in ("compiled", "pure"):
        assert result == ethnode_raw_decoded(case_name)
    elif expected_typed is not None:
        assert result == expected_typed
    return fn


_RAW_DECODED: dict[str, Any] = {}


def ethnode_raw_decoded(case_name: str) -> Any:
    if case_name not in _RAW_DECODED:
        _RAW_DECODED[case_name] = implementation("pure").decode(CASES[case_name].wire)
    return _RAW_DECODED[case_name]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layer", ["raw", "typed"])
@pytest.mark.parametrize("op", ["encode", "decode"])
@pytest.mark.parametrize("case_name", list(CASES))
def test_rlp(benchmark: Any, case_name: str, op: str, layer: str, impl: str) -> None:
    benchmark.group = f"rlp {case_name} {op} {layer}"
    benchmark.extra_info.update(case=case_name, op=op, layer=layer, impl=impl, items=CASES[case_name].items)
    benchmark(make(case_name, op, layer, impl))
