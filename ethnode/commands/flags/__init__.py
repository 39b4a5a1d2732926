"""The flags of ``ethnode-fast run``, one module per area, and the services they configure.

The domain packages know nothing of argparse: each module here adds its area's flags
(``add_*_flags``), turns the parsed values into that area's config object and returns
the Node service constructor ``run`` registers. ``validators`` holds the argparse
``type=`` helpers they share (numbers, ports, comma lists), so a kind of value is read
and reported the same way whatever flag carries it.
"""
