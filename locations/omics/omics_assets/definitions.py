"""The omics code location: the only place its Definitions are built. Its workflows are
YAML files (shipped under ``defs/workflows/``, the operator's in ``OMICS_WORKFLOWS_DIR``) that
the location reads when it loads (``components.loader``), with what every location shares
(storage, settings, notifier, inbox and alert sensors)."""

from omics_assets.location import LOCATION

defs = LOCATION.definitions()
