"""Fetching what peers announce (geth ``eth/fetcher``): the tx fetcher (a sans-IO scheduler,
``tx_scheduler``, driven on asyncio by ``tx_fetcher``) and the block fetcher (eth/68
announcements and propagated blocks, eth/69 range updates)."""
