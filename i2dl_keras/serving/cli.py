"""`i2dl serve [ROOT]`: the command line of `ModelServer`; `main(argv)` returns the exit status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from i2dl_keras.serving.images import DEFAULT_MAX_IMAGE_PIXELS
from i2dl_keras.serving.server import ModelServer


def build_parser() -> argparse.ArgumentParser:
    """The `i2dl serve` argument parser; its defaults are `ModelServer`'s."""
    parser = argparse.ArgumentParser(
        prog="i2dl serve",
        description="Serve every exported model under ROOT (ROOT/APP/serving/N/) with TF "
        "Serving's REST and gRPC APIs.",
    )
    parser.add_argument(
        "root",
        nargs="?",
        default="saved_models",
        metavar="ROOT",
        help="folder of exports (default: saved_models)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (0.0.0.0: all; default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8501, help="REST port (0: any free port; default: 8501)"
    )
    parser.add_argument(
        "--grpc-port", type=int, default=8500, help="gRPC port (0: any free port; default: 8500)"
    )
    parser.add_argument("--no-grpc", action="store_true", help="serve REST only")
    parser.add_argument(
        "--batching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="group concurrent requests into one model call (default: on)",
    )
    parser.add_argument(
        "--max-batch-size", type=int, default=32, help="most rows per grouped call (default: 32)"
    )
    parser.add_argument(
        "--batch-timeout-ms",
        type=float,
        default=0.0,
        help="how long a batch waits for more requests (default: 0, take what is queued)",
    )
    parser.add_argument(
        "--num-batch-threads",
        type=int,
        default=1,
        help="batches gathered and run at once, per signature (default: 1)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=1.0,
        help="how often ROOT is checked for new versions (0: never; default: 1)",
    )
    parser.add_argument(
        "--num-versions",
        type=int,
        default=1,
        help="newest versions served per model (0: all; default: 1)",
    )
    parser.add_argument(
        "--max-body-mb", type=float, default=32.0, help="largest request in MiB (default: 32)"
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        default=DEFAULT_MAX_IMAGE_PIXELS,
        help="most pixels per encoded image, read from its header before decoding; larger "
        f"images get HTTP 400 (default: {DEFAULT_MAX_IMAGE_PIXELS}, 4096x4096, which a "
        "12-megapixel photo fits)",
    )
    return parser


def _check(args: argparse.Namespace) -> None:
    """Raises `ValueError` with a one-line message for a flag value that cannot work."""
    root = Path(args.root)
    if not root.is_dir():
        raise ValueError(
            f"{root}: no such folder; pass the folder that `i2dl APP export` writes to "
            "(saved_models by default)"
        )
    for flag, value, low in (
        ("--max-batch-size", args.max_batch_size, 1),
        ("--num-batch-threads", args.num_batch_threads, 1),
        ("--num-versions", args.num_versions, 0),
        ("--port", args.port, 0),
        ("--grpc-port", args.grpc_port, 0),
        ("--max-image-pixels", args.max_image_pixels, 1),
    ):
        if value < low:
            raise ValueError(f"{flag} must be at least {low}, got {value}")
    for flag, value in (("--port", args.port), ("--grpc-port", args.grpc_port)):
        if value > 65535:
            raise ValueError(f"{flag} must be a port number from 0 to 65535, got {value}")
    if args.batch_timeout_ms < 0 or args.poll_seconds < 0 or args.max_body_mb <= 0:
        raise ValueError("--batch-timeout-ms and --poll-seconds must be >= 0, --max-body-mb > 0")


def main(argv: Sequence[str]) -> int:
    """Runs `i2dl serve` with `argv` (the arguments after `serve`) until Ctrl-C or SIGTERM.

    Args:
        argv: The command-line arguments, e.g. `["saved_models", "--port", "0"]`.

    Returns:
        The exit status: `0` after a clean stop (or `--help`), `2` on a usage error (a missing
        folder, a bad flag value, a port that cannot be bound), which is printed as one line
        on stderr.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse has printed the usage and the error (or --help)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        _check(args)
    except ValueError as exc:
        print(f"i2dl: error: {exc}", file=sys.stderr)
        return 2
    server = ModelServer(
        args.root,
        host=args.host,
        port=args.port,
        grpc_port=None if args.no_grpc else args.grpc_port,
        batching=args.batching,
        max_batch_size=args.max_batch_size,
        batch_timeout_ms=args.batch_timeout_ms,
        num_batch_threads=args.num_batch_threads,
        poll_seconds=args.poll_seconds,
        num_versions=args.num_versions,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_image_pixels=args.max_image_pixels,
    )
    try:
        server.serve_forever(echo=lambda text: print(text, flush=True))
    except OSError as exc:  # a port that is taken or not allowed
        print(f"i2dl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # uvicorn shuts down cleanly on Ctrl-C, then raises it again for the caller.
        pass
    print("stopped", flush=True)
    return 0
