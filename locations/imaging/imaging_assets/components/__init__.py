"""The imaging component type: a pipeline YAML is one pipeline (its assets, checks, job)."""

from imaging_assets.components.pipeline import ImagingPipeline

__all__ = ["ImagingPipeline"]
