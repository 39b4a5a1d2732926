"""RPC servers: a minimal HTTP/1.1 JSON-RPC server and the JWT-authenticated Engine API (geth node/, eth/catalyst)."""
