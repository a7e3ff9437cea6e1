"""The ECOD code location: the only place its Definitions are built (its defs/ folder and the
location kit)."""

from ecod_assets.location import LOCATION

defs = LOCATION.definitions()
