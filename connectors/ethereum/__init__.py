"""Ethereum blocks and logs as events, final ``confirmations`` deep, with reorgs retracted.

    config.py     EthereumConfig: the endpoint, the depth, the log filters
    chain.py      the chain-tracking core: reorgs, confirmations, what to emit (no RPC)
    events.py     chain changes ↔ CloudEvents
    node.py       the port to a node, and its errors
    web3node.py   that port over web3.py (HTTP polling or a websocket subscription)
    connector.py  the connector: heads → catch-up → core → sink.commit
"""

from connectors.ethereum.config import EthereumConfig
from connectors.ethereum.connector import EthereumConnector

__all__ = ["EthereumConfig", "EthereumConnector"]
