"""Imported by the layer-B worker pool's forkserver (tools.validate.runner): azure-ai-ml is imported once, offline
and quietly, and every worker forks from that process instead of importing it again (about 2 s of CPU each)."""

from tools.core.offline import apply_offline_env
from tools.validate.sdk import import_sdk

apply_offline_env()
import_sdk()
