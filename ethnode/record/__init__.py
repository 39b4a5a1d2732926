"""``ethnode-fast record``'s library: what a node sees, timestamped, to SQLite or Parquet.

    from ethnode.api import EthNode, NodeConfig
    from ethnode.record import Recorder, load, open_sink

    async with EthNode(NodeConfig(network="sepolia", discovery=True)) as node:
        recorder = Recorder(node, open_sink("sepolia.sqlite3"))
        await recorder.start()
        ...
        print(*(await recorder.stop()).lines())

    txs = load("sepolia.sqlite3", "txs")        # a pandas DataFrame
"""

from ethnode.record.recorder import Recorder, Summary
from ethnode.record.sinks import TABLES, ParquetSink, RecordError, SQLiteSink, load, open_sink

__all__ = ["Recorder", "Summary", "load", "open_sink", "SQLiteSink", "ParquetSink", "RecordError", "TABLES"]
