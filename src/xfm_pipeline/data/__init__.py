"""Data layer: readers for the published formats, the shapes-world generator, transforms, validation."""
