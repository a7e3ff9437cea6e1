"""The pipeline engine: a pipeline's spec (YAML or Python), its compilation (functions
resolved and checked), the application of a step to planes and a plate's run over its wells.
The user's API is imaging_assets.pipelines."""
