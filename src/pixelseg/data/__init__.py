"""pixelseg.data."""
