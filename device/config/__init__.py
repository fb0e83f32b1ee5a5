"""The config folder: known devices (pairing store) and zone profiles."""
