"""pixelseg.postprocess."""
