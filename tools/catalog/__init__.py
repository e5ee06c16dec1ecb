"""The model catalog (`schemas/catalog/models.yaml`) generated from the registry's own model metadata."""
