"""ultrachat_200k -> checked chat JSONL: sources, row rules, the streaming pipeline, outputs, manifest and the bundled
sample."""
