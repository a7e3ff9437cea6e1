"""Resources of the omics location: how tools are run."""

import dagster as dg


class OmicsSettings(dg.ConfigurableResource):
    """``tool_timeout_seconds``: the longest any one tool call (kallisto, plink2, ...) may run
    before it is killed and the step fails (``OMICS_TOOL_TIMEOUT_SECONDS``)."""

    tool_timeout_seconds: float = 3600.0
