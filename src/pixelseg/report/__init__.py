"""pixelseg.report."""
