"""Tests that leak on purpose: run only by tests/test_leak_check.py, which checks that the
autouse ``_no_leaks`` fixture (tests/conftest.py) fails each of them. Not collected by the
suite itself (the file name does not match ``test_*.py``)."""

from __future__ import annotations

import asyncio

from device.links import open_link


async def test_leaks_an_open_link():
    link = open_link("sim://ball")
    await link.open()


async def test_leaks_a_task():
    asyncio.get_running_loop().create_task(asyncio.sleep(3600), name="forgotten")


async def test_leaks_nothing():
    async with open_link("sim://ball"):
        pass
