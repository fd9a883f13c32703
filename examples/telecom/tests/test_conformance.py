"""The conformance suite of Univers on this universe (both engines): `pytest`."""

from core.conformance import *  # noqa: F403

UNIVERSE = "telecom"
