"""Bluetooth LE for massagectl: a bleak backend on Bumble (``bumble_backend``, with one
shared Bumble host per HCI transport in ``bumble_host``) and the factory that picks the
OS's bleak backend or Bumble (``factory``). Only this package imports Bumble on the host
side; ``device.links.ble`` uses bleak's public API with the classes the factory gives.
"""
