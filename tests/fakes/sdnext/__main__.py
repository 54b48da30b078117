"""`python -m tests.fakes.sdnext --port 7860 [--auth user:pwd] [--steps-delay 0.1]`: run the fake in the foreground."""

from __future__ import annotations

import argparse
import contextlib
import sys

from .server import FakeSDNext


def _auth(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user:
        raise argparse.ArgumentTypeError("expected user:password")
    return user, password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.sdnext", description="Fake SDNext server (no GPU).")
    parser.add_argument("--port", type=int, default=7860, help="port on 127.0.0.1 (default 7860)")
    parser.add_argument("--auth", type=_auth, default=None, help="require HTTP Basic user:password")
    parser.add_argument("--steps-delay", type=float, default=0.1, help="seconds per sampling step (default 0.1)")
    args = parser.parse_args(argv)
    fake = FakeSDNext(auth=args.auth, steps_delay=args.steps_delay)
    print(f"Fake SDNext listening on http://127.0.0.1:{args.port} (Ctrl+C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        fake.serve_forever(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
