"""``ethnode-fast`` subcommands, each module exposing ``register(subparsers)`` (wired in ``ethnode.cli``)."""
