"""Limits of the RLP codecs, shared by both backends so they fail on the same inputs."""

# Deepest list nesting accepted by encode and decode. Ethereum payloads nest at most a
# handful of levels; the cap keeps a hostile ``c1c1c1...`` from exhausting the C stack
# of the compiled decoder or Python's recursion limit in the pure one (geth has no cap
# because Go stacks grow; ours do not).
MAX_DEPTH = 256
