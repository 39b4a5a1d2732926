"""Gas price suggestions and fee history, after geth's ``eth/gasprice`` oracle.

The tip suggestion samples the three lowest effective tips of each of the last 20 blocks
(ignoring tips under 2 wei and the block producer's own txs; an empty block contributes
the last suggestion), takes the 60th percentile and caps it at 500 gwei: geth's full-node
defaults. ``eth_gasPrice`` adds the head's base fee; ``eth_maxPriorityFeePerGas`` is the tip.

Fee history rewards are weighted by each tx's gas used from the stored receipts; when a
block's receipts are not stored (a node that does not execute) the tx gas limits stand in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ethnode.core.blockchain import BlockChain
from ethnode.core.eip1559 import calc_base_fee
from ethnode.core.eip4844 import blob_base_fee, calc_blob_fee, calc_excess_blob_gas, latest_blob_config
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.ethapi.marshal import _inner, effective_gas_price

GPO_BLOCKS = 20  # geth FullNodeGPO.Blocks
GPO_PERCENTILE = 60  # geth FullNodeGPO.Percentile
GPO_MAX_PRICE = 500 * 10**9  # wei; geth DefaultMaxPrice
GPO_IGNORE_PRICE = 2  # wei; geth DefaultIgnorePrice
SAMPLE_NUMBER = 3  # lowest tips taken per block; geth sampleNumber
DEFAULT_GAS_PRICE = 10**6  # wei: the suggestion before any block held a tx (geth --miner.gasprice: 0.001 gwei)
MAX_FEE_HISTORY = 1024  # blocks per eth_feeHistory call; geth MaxHeaderHistory/MaxBlockHistory
MAX_PERCENTILES = 100  # geth maxQueryLimit


class FeeHistoryError(ValueError):
    """A bad eth_feeHistory request; the text is geth's."""


@dataclass
class FeeHistory:
    oldest: int
    base_fees: list[int]
    gas_used_ratio: list[float]
    blob_base_fees: list[int]
    blob_gas_used_ratio: list[float]
    rewards: list[list[int]] | None


class GasPriceOracle:
    """geth gasprice.Oracle over a ``BlockChain``; the suggestion is cached per head."""

    def __init__(self, chain: BlockChain, default: int = DEFAULT_GAS_PRICE) -> None:
        self.chain = chain
        self.last_price = default
        self._cache: tuple[bytes, int] | None = None

    def suggest_tip_cap(self) -> int:
        head = self.chain.current_block
        if self._cache is not None and self._cache[0] == head.hash:
            return self._cache[1]
        samples: list[int] = []
        number = head.number
        while number > 0 and number > head.number - GPO_BLOCKS:  # geth never samples the genesis
            block = self.chain.get_block_by_number(number)
            if block is None:
                break
            samples += self._block_tips(block) or [self.last_price]
            number -= 1
        price = self.last_price
        if samples:
            samples.sort()
            price = samples[(len(samples) - 1) * GPO_PERCENTILE // 100]
        price = min(price, GPO_MAX_PRICE)
        self.last_price = price
        self._cache = (head.hash, price)
        return price

    def _block_tips(self, block: Block) -> list[int]:
        base_fee = block.header.base_fee
        tips = []
        for item in block.transactions:
            tx = _inner(item)  # type: ignore[arg-type]
            tip = effective_gas_price(tx, base_fee) - (base_fee or 0)
            if tip < GPO_IGNORE_PRICE or tx.sender == block.header.coinbase:
                continue
            tips.append(tip)
        tips.sort()
        return tips[:SAMPLE_NUMBER]

    def gas_price(self) -> int:
        base_fee = self.chain.current_block.base_fee
        return self.suggest_tip_cap() + (base_fee or 0)

    def fee_history(self, count: int, last: Header, percentiles: Sequence[float] | None) -> FeeHistory:
        """geth Oracle.FeeHistory for ``count`` blocks ending at ``last`` (already resolved)."""
        percentiles = list(percentiles or [])
        if len(percentiles) > MAX_PERCENTILES:
            raise FeeHistoryError(f"too many percentiles: {len(percentiles)} > {MAX_PERCENTILES}")
        for i, p in enumerate(percentiles):
            if not 0 <= p <= 100:
                raise FeeHistoryError(f"invalid reward percentile: {p:f}")
            if i > 0 and p <= percentiles[i - 1]:
                raise FeeHistoryError(f"invalid reward percentile: #{i - 1}:{percentiles[i - 1]:f} >= #{i}:{p:f}")
        count = min(count, MAX_FEE_HISTORY, last.number + 1)
        oldest = last.number - count + 1
        config = self.chain.config
        out = FeeHistory(oldest, [], [], [], [], [] if percentiles else None)
        header = last
        for number in range(oldest, last.number + 1):
            header = self.chain.get_header_by_number(number)
            if header is None:
                raise FeeHistoryError(f"header #{number} not found")
            out.base_fees.append(header.base_fee or 0)
            out.gas_used_ratio.append(header.gas_used / header.gas_limit if header.gas_limit else 0.0)
            blob_cfg = latest_blob_config(config, header.time) if header.excess_blob_gas is not None else None
            if blob_cfg is not None:
                out.blob_base_fees.append(calc_blob_fee(config, header))
                max_blob_gas = blob_cfg.max * 2**17
                out.blob_gas_used_ratio.append((header.blob_gas_used or 0) / max_blob_gas if max_blob_gas else 0.0)
            else:
                out.blob_base_fees.append(0)
                out.blob_gas_used_ratio.append(0.0)
            if out.rewards is not None:
                out.rewards.append(self._rewards(header, percentiles))
        out.base_fees.append(calc_base_fee(config, header) if config.is_london(header.number + 1) else 0)
        next_cfg = latest_blob_config(config, header.time) if header.excess_blob_gas is not None else None
        if next_cfg is not None:
            out.blob_base_fees.append(blob_base_fee(next_cfg, calc_excess_blob_gas(config, header, header.time)))
        else:
            out.blob_base_fees.append(0)
        return out

    def _rewards(self, header: Header, percentiles: list[float]) -> list[int]:
        block = self.chain.get_block(header.hash, header.number)
        txs = [_inner(t) for t in block.transactions] if block is not None else []  # type: ignore[arg-type]
        if not txs:
            return [0] * len(percentiles)
        receipts = self.chain.get_receipts(header.hash, header.number)
        if receipts is not None and len(receipts) == len(txs):
            used = [r.cumulative_gas_used - (receipts[i - 1].cumulative_gas_used if i else 0)
                    for i, r in enumerate(receipts)]
        else:
            used = [tx.gas for tx in txs]  # type: ignore[attr-defined]
        base_fee = header.base_fee or 0
        ranked = sorted(
            ((effective_gas_price(tx, header.base_fee) - base_fee, gas) for tx, gas in zip(txs, used, strict=True)),
        )
        total = header.gas_used or sum(used)
        rewards = []
        index, acc = 0, ranked[0][1]
        for p in percentiles:
            threshold = int(total * p / 100)
            while acc < threshold and index < len(ranked) - 1:
                index += 1
                acc += ranked[index][1]
            rewards.append(ranked[index][0])
        return rewards


__all__ = ["GasPriceOracle", "FeeHistory", "FeeHistoryError", "DEFAULT_GAS_PRICE", "MAX_FEE_HISTORY"]
