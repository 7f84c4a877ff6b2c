"""pixelseg.export."""
