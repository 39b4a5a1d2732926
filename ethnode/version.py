"""The release version, in a leaf module: the p2p Hello and the miner's extra-data name the
client with it, and they may not import the package root (which loads every hot path)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
