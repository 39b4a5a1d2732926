"""Chain core: types, genesis, fork id, chain database, BlockChain."""
