"""The send path (README.md, "What the server guarantees"): sequencer -> persister -> router.

Each stage is one dedicated task joined to the next by a bounded channel;
``open_pipeline`` starts all three in a nursery and hands back the
``Pipeline`` through which connection readers submit sends.
"""

from sandcat.pipeline.outlet import Directory, Outlet
from sandcat.pipeline.pipeline import Pipeline, run_pipeline
from sandcat.pipeline.sequencer import RecentAcks, SendRequest

__all__ = ["Directory", "Outlet", "Pipeline", "RecentAcks", "SendRequest", "run_pipeline"]
