"""Findings -> plan -> az ml: the plan as data, apply, promote and diff."""
