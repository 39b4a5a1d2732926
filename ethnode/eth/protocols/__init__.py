"""The wire protocols the Ethereum service speaks over devp2p (geth ``eth/protocols``): one
subpackage per protocol, each with its messages, its per-peer object and its serving code."""
