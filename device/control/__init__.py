"""The supervised loop (safety on every batch and tick) and vibration patterns."""
