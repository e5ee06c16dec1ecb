"""Evaluation: score a candidate and a champion chat model on the same gate rows and decide (``python -m tools
evaluate``, and the ``components/evaluate`` command component, which ships this folder as an additional include).

Every module here except ``cli`` imports only its siblings (relative imports) and third-party libraries, so the
folder runs as the top-level package ``evaluate`` inside an Azure ML job as well as ``tools.evaluate`` here.
"""
