"""The instance task: Mask R-CNN."""
