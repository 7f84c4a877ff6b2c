"""pixelseg.models.encoders."""
