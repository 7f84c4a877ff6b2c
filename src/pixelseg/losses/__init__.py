"""pixelseg.losses."""
