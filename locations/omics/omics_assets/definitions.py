"""The omics code location: the only place its Definitions are built. The workflows are
components (``defs/<workflow>/defs.yaml``), loaded from the defs/ folder by the location kit
with what every location shares (storage, settings, notifier, inbox and alert sensors)."""

from omics_assets.components.workflow import workflows_of
from omics_assets.location import LOCATION
from omics_assets.workflows import check_inputs

defs = LOCATION.definitions()
check_inputs(workflows_of(defs))
