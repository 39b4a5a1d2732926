"""devp2p: the RLPx transport, the base protocol, discovery and the p2p Server."""
