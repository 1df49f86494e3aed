"""Network architectures; build them by name through ``models.registry.build_model``."""
