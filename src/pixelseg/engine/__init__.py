"""pixelseg.engine."""
