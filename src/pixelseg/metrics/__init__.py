"""pixelseg.metrics."""
