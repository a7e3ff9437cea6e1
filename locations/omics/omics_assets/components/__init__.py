"""The omics component type: a YAML instance under ``omics_assets/defs/`` is one workflow."""

from omics_assets.components.workflow import OmicsWorkflow

__all__ = ["OmicsWorkflow"]
