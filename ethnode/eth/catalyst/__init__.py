"""The Engine API beside the chain it drives (geth eth/catalyst).

Above the Ethereum service, which does not import it: ``api`` holds the ``engine_``
methods over a ``BlockChain``, ``service`` the Node service that serves them on the
JWT-authenticated endpoint and ``register``, which the command line calls to attach it.
"""
