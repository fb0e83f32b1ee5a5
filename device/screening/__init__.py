"""The screening gate (red flags, inclusion) and its clearance."""
