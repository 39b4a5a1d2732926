"""The snap protocol (snap/1, snap/2 of EIP-8189): serving the state in ranges beside eth.

``protocol`` holds the message tables, ``serve`` answers queries from the stored tries
(``SnapServer``), ``peer`` is the per-connection handler.
"""
