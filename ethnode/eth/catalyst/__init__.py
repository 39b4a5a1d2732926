"""The Engine API beside the chain it drives (geth eth/catalyst)."""
