"""The public JSON-RPC namespaces (geth ``internal/ethapi``, ``eth/api*.go``, ``eth/filters``, ``node/api.go``).

Above the Ethereum service they answer for, so the service itself knows nothing of JSON:
``eth`` (with ``call``, ``gasprice``, ``blocks``), ``filters`` and ``logfilter`` for the
eth namespace, ``txpool``, ``clique``, and the node's own ``web3``, ``net`` and ``admin``.
``hexutil`` and ``marshal`` are geth's JSON encodings of values, blocks and receipts.
"""
