from imaging_assets.science.mosaic import stitch_sites

SHIPPED_STEPS = {"stitch": stitch_sites}
