"""The JSON-RPC framework: dispatch, method tables, the HTTP endpoint and JWT auth (geth rpc/).

It knows no node, chain or peer, so both the node's public endpoint (``ethnode.node.rpcstack``)
and the Engine API's authenticated one (``ethnode.eth.catalyst``) are built on it, and so
can anything else that needs a small HTTP server (``ethnode.monitoring``'s ``/metrics``).
``jsonrpc``: the dispatcher; ``api``: how API objects become method names; ``http``: the
HTTP/1.1 server; ``endpoint``: the one JSON-RPC request handler, JWT an option; ``jwt``.
"""
