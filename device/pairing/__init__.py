"""Pairing a BLE device: bond, tare, calibrate, store."""
