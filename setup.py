"""Build both compiled extensions in one `pip install .`, each optional.

- Cython (``pyext/``): compiled when Cython and a C compiler work. Any failure (no
  compiler, a compile error) is reported as a warning and the pure twin is used.
- Rust (``rust/``, pyo3): built by setuptools-rust as ``ethnode._rust`` with
  ``optional=True``, on CPython's stable ABI (pyo3's ``abi3-py311`` in Cargo.toml), so the
  file is ``_rust.abi3.so`` and one build loads on 3.11 and every later Python.
  setuptools-rust already skips an optional extension whose build fails; the wrapper
  below also covers a missing or broken cargo (``CARGO=/bin/false``) so the install
  never fails on the Rust side either.

Both are stripped (Rust: ``strip`` in Cargo's release profile; C: ``-s`` at link time):
symbols are most of an unstripped module and no user of a wheel debugs with them.

The Cython module stays per-version (``_crlp.cpython-3XY-….so``): it uses CPython macros
outside the limited API (``PyTuple_GET_ITEM``, …), so a wheel is tagged for one Python.

``ETHNODE_NO_EXTENSIONS=1`` at build time skips both builds (a pure install).
"""

from __future__ import annotations

import os
import sys
import warnings

from setuptools import setup
from setuptools.command.build_ext import build_ext

SKIP = os.environ.get("ETHNODE_NO_EXTENSIONS", "").strip().lower() not in ("", "0", "false", "no")


def _warn(what: str, exc: BaseException) -> None:
    print(f"WARNING: ethnode: {what} not built, using the pure-Python twin: {exc}", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext that turns any compile failure into a warning."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any failure means "fall back to pure"
            _warn("Cython extensions", exc)

    def build_extensions(self) -> None:
        # A Python built with its lib dir as rpath in LDFLAGS (pyenv) passes it to every
        # extension; a wheel must not send the loader to the build machine's directories.
        if self.compiler.compiler_type == "unix":
            self.compiler.linker_so = [a for a in self.compiler.linker_so if not a.startswith("-Wl,-rpath")]
        super().build_extensions()

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            _warn(ext.name, exc)


def cython_extensions() -> list:
    if SKIP:
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError as exc:
        _warn("Cython extensions", exc)
        return []
    exts = [
        Extension(
            "ethnode.rlp._crlp",
            ["pyext/rlp/_crlp.pyx"],
            extra_compile_args=["-O3"] if sys.platform != "win32" else [],
            extra_link_args=["-s"] if sys.platform.startswith("linux") else [],
        ),
    ]
    try:
        return cythonize(
            exts,
            compiler_directives={
                "language_level": 3,
                "boundscheck": False,
                "wraparound": False,
                "cdivision": True,
                "initializedcheck": False,
            },
            quiet=True,
        )
    except Exception as exc:  # noqa: BLE001
        _warn("Cython extensions", exc)
        return []


def _drop_stale_rust_modules() -> None:
    """Remove per-version ``_rust.cpython-3XY-….so`` left by builds before abi3.

    The import system tries that suffix before ``.abi3.so``, so an old in-place build would
    shadow the new module.
    """
    from glob import glob

    for stale in glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ethnode", "_rust.cpython-*")):
        print(f"ethnode: removing {stale}, which would shadow _rust.abi3.so", file=sys.stderr)
        os.remove(stale)


def rust_setup() -> dict:
    if SKIP:
        return {}
    try:
        from setuptools_rust import Binding, RustExtension
        from setuptools_rust.build import build_rust
    except ImportError as exc:
        _warn("Rust extension", exc)
        return {}

    class OptionalBuildRust(build_rust):
        """build_rust that never fails the install (cargo missing, broken or failing)."""

        def run(self) -> None:
            try:
                super().run()
            except Exception as exc:  # noqa: BLE001
                _warn("Rust extension ethnode._rust", exc)
                return
            if self.inplace:
                _drop_stale_rust_modules()

    with warnings.catch_warnings():
        # py_limited_api on the extension is deprecated in favour of the wheel-wide
        # [bdist_wheel] py_limited_api, which would tag the whole wheel abi3 although the
        # Cython module is per-version; the per-extension flag names only _rust .abi3.so.
        warnings.simplefilter("ignore", DeprecationWarning)
        ext = RustExtension(
            "ethnode._rust",
            path="rust/Cargo.toml",
            binding=Binding.PyO3,
            optional=True,
            debug=False,
            py_limited_api=True,
        )
    return {
        "rust_extensions": [ext],
        "cmdclass_rust": OptionalBuildRust,
    }


rust = rust_setup()
cmdclass = {"build_ext": OptionalBuildExt}
if "cmdclass_rust" in rust:
    cmdclass["build_rust"] = rust.pop("cmdclass_rust")

setup(ext_modules=cython_extensions(), cmdclass=cmdclass, **rust)
