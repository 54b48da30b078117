"""A fake SDNext server speaking the real /sdapi/v1 protocol (see /work/shared/SDNEXT.md §7).

Used by the tests through the `fake_sdnext` fixture, and runnable on its own so the product can be tried
without a GPU: `python -m tests.fakes.sdnext --port 7860 [--auth user:pwd] [--steps-delay 0.1]`.
"""

from .server import FAULTS, FakeSDNext, RecordedRequest

__all__ = ["FAULTS", "FakeSDNext", "RecordedRequest"]
