"""The Faust worker: starter and executor agents."""
