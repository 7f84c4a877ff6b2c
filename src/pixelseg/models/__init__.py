"""pixelseg.models."""
