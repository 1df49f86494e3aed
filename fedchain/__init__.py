"""fedchain: decentralized federated learning over libp2p, IPFS and an Ethereum ledger."""

__version__ = "0.1.0"
