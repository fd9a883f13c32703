"""Univers core: customers, orders, invoicing, payments and renewal scheduling.

The core knows no universe. Universes are pluggy plugins registered through the
``univers.plugins`` entry-point group; they implement the hooks of :mod:`core.hookspecs`
marked with :data:`hookimpl`.
"""

import pluggy

PROJECT = "univers"
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl", "hookspec"]
