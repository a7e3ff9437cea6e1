"""Resources of the omics location: how tools are run."""

from typing import ClassVar

import dagster as dg

from platform_core.datastore import ConfinedPaths


class OmicsSettings(ConfinedPaths, dg.ConfigurableResource):
    """``tool_timeout_seconds``: the longest any one tool call (kallisto, plink2, ...) may run
    before it is killed and the step fails (``OMICS_TOOL_TIMEOUT_SECONDS``); ``max_input_mb``:
    how far a gzip input of a dropped config may expand, in MB (``OMICS_MAX_INPUT_MB``; the
    operator's: a UI run may not set it)."""

    tool_timeout_seconds: float = 3600.0
    max_input_mb: float = 20000.0
    operator_fields: ClassVar[tuple[str, ...]] = ("max_input_mb",)
