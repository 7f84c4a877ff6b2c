"""The semantic task: a class for every pixel."""
