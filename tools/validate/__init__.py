"""Specs -> findings: layer A (document), B (azure-ai-ml loaders), C (exported JSON schemas), D (repo rules), report
formats and the schema export."""
