"""Models -> answers: the scoring client (free of repo imports, Prompt flow ships it), scoring requests, the local
endpoint host and its process control."""
