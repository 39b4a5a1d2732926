"""The one base class every ethnode error derives from.

Callers that talk to untrusted peers catch ``EthnodeError`` to tell "the input was bad"
apart from bugs in ethnode itself (which surface as ordinary Python exceptions).
"""


class EthnodeError(Exception):
    """Base of every error ethnode raises on purpose."""
