"""``ethnode-fast crawl``: walk the discovery DHT, greet what it finds, write geth's nodes.json.

geth's ``devp2p discv4 crawl`` is the anchor (``nodeset``: the nodes.json layout and its
liveness score; ``crawler``: sources, revalidation, timeout). Beyond geth, every live node
is dialed once per check for RLPx + Hello + eth Status (``probe``), and what they said is
tallied in a census file (``census``): clients and versions, capabilities, network ids,
fork IDs and why dials failed.
"""
