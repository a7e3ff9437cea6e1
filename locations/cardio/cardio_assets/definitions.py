"""The cardio code location: the only place its Definitions are built (its defs/ folder and
the location kit)."""

from cardio_assets.location import LOCATION

defs = LOCATION.definitions()
