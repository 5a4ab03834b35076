"""Helpers the test modules import (``from helpers.devices import device_fixture``).

pyproject.toml puts ``tests/`` on ``sys.path`` (``pythonpath = ["tests"]``), so this
package imports the same way from ``tests/lib/``, ``tests/house/`` and ``tests/exercises/``.
"""
