"""Ray actors and the pipelines that run them. Importing this package does not import Ray."""
