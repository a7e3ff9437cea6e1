"""The plate graph: manifest -> validation -> tile positions -> stitched OME-Zarr -> QC.

One partition per plate. Wells fan out inside the assets over ``num_workers`` processes; a
failed well is a row with its error, and the step fails only past ``max_failed_fraction``.
Re-running a plate redoes only wells that failed, are missing or whose inputs changed (each
well's input fingerprint is stored with its result).
"""
