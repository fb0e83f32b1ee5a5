"""Simulated devices: firmware behaviour and physics of the sensor ball and the handheld,
scripted pressing, and endpoints that put a simulated device on a real transport.

Simulators are a product feature (the demo runs on them), not test doubles. They import
only ``firmware_bridge`` of ours: a bug shared with the host must not be able to hide.
"""
