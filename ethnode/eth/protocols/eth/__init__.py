"""The eth wire protocol (geth ``eth/protocols/eth``), one way from the transport to the backend.

A message arrives on the peer's reader: ``EthPeer.handle`` decodes it once (``handlers``),
answers data queries from the backend's chain and pool itself (``serve``), settles
responses to its own requests in its request tracker (``tracker``), and hands every
other packet, typed and checked, to the ``EthBackend`` (``backend``): the handler, which
never calls back into the peer to decode or to settle. ``protocol`` holds the message
tables, ``handshake`` the Status exchange rules, ``knowncache`` the per-peer hash caches.
"""
