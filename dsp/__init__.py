"""Pure signal and safety logic: calibration, filters, zones, hold timing, supervision.

Nothing here does I/O, asyncio or Qt, and nothing here imports the rest of massagectl:
plain numbers and numpy arrays go in and out, so the same code runs live and offline.
"""
