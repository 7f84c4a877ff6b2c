"""Instance data: per-object masks, label images, COCO JSON; their checks and transforms."""
