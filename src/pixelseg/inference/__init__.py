"""pixelseg.inference."""
