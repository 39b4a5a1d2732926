"""Watching a running node: ``/metrics`` over HTTP, chain event lines, the terminal progress display.

Above everything it watches (it reads the p2p Server and the Ethereum service at scrape
time), so nothing on a hot path imports it; the primitives it serves are in
``ethnode.metrics``. ``service``: the Node service (``/metrics``, event logger, loop-lag
probe, sync display); ``collectors``: the gauges read from the node at scrape time;
``events``: the "Chain head was updated" lines; ``syncdisplay`` and ``progress``: the
progress bar, also drawn by ``ethnode-fast import``.
"""
