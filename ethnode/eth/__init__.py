"""The Ethereum service and the eth wire protocol handler (geth's eth/ package)."""
