"""Shared foundations every package uses: one-line errors, atomic files, YAML with line numbers, the offline switches
and the repo's facts (paths, contracts, catalog, kinds)."""
