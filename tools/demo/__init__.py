"""The local end-to-end story and the tiny offline Phi-3-architecture model it trains."""
