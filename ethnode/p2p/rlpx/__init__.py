"""RLPx: the ECIES handshake, the frame codec and snappy, as sans-IO objects."""
