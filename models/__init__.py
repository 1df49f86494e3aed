"""Models, data loaders, partitioners, training and metrics (see models/README.md)."""
