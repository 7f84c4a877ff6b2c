"""pixelseg.tasks."""
