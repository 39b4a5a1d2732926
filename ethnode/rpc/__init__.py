"""The JSON-RPC framework: dispatch, method tables, the HTTP, WebSocket and IPC transports, JWT auth (geth rpc/).

It knows no node, chain or peer, so both the node's public endpoints (``ethnode.node.rpcstack``)
and the Engine API's authenticated one (``ethnode.eth.catalyst``) are built on it, and so
can anything else that needs a small HTTP server (``ethnode.monitoring``'s ``/metrics``).
``jsonrpc``: the one dispatcher every transport feeds; ``api``: how API objects become
method names; ``http``: the HTTP server (aiohttp); ``endpoint``: the JSON-RPC request rules,
JWT an option, HTTP and WebSocket on one port; ``websocket``, ``ipc``: the persistent
transports; ``conn``: a persistent connection and its bounded outgoing queue;
``subscription``: ``eth_subscribe``'s plumbing; ``jwt``.
"""
