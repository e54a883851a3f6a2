"""``tfparity docker build|check|check-gpu``: image and engine maintenance (used by docker/docker.mk)."""

from __future__ import annotations

import argparse

from harness.cli import types
from harness.spec.names import DEVICES

HELP = "build the worker images, check the engine and the GPU runtime"


def gpu_ids(text: str) -> tuple[str, ...]:
    """argparse type of ``--gpus``: distinct GPU ids, e.g. ``0`` or ``0,1``."""
    from harness.orchestrate.backends.docker.gpu import parse_gpu_ids

    ids: tuple[str, ...] = types.from_parser(parse_gpu_ids)(text)
    return ids


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="docker_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    b = sub.add_parser("build", help="build (or refresh) the worker image")
    b.add_argument("--device", choices=DEVICES, default="cpu")
    b.add_argument("--tag", default=None)
    b.add_argument("--base-image", default=None)
    b.add_argument("--if-missing", action="store_true", help="only when missing or stale")
    sub.add_parser("check", help="engine and compose reachable")
    g = sub.add_parser(
        "check-gpu",
        help="TensorFlow in the GPU image (built or reused) must see and use the GPU(s); one line naming the "
        "cause otherwise (NVIDIA Container Toolkit, driver, CUDA libraries)",
    )
    g.add_argument(
        "--gpus", type=gpu_ids, default=None, metavar="IDS", help="GPU ids for the device request (default 0)"
    )
    g.add_argument("--tag", default=None, help="the GPU image (default tfparity:gpu)")


def run(args: argparse.Namespace) -> int:
    from harness.orchestrate.backends.docker.engine import check_compose, check_engine
    from harness.orchestrate.backends.docker.image import build_image, ensure_image
    from harness.orchestrate.backends.docker.settings import DEFAULT_IMAGES

    engine = check_engine()
    if args.docker_command == "build":
        build = ensure_image if args.if_missing else build_image
        info = build(args.device, tag=args.tag, base_image=args.base_image)
        print(f"{args.tag or DEFAULT_IMAGES[args.device]} {info['id']}")
    elif args.docker_command == "check-gpu":
        check_compose()
        for line in check_gpu(args.gpus, args.tag):
            print(line)
    else:
        print(f"Docker engine {engine['server_version']}, compose {check_compose()}")
    return 0


def check_gpu(gpus: tuple[str, ...] | None, tag: str | None) -> list[str]:
    """The two-step GPU check: the engine takes the device request, then TF in the GPU image uses the GPU."""
    from harness.orchestrate.backends.docker.gpu import check_gpu as tf_check
    from harness.orchestrate.backends.docker.gpu import check_toolkit, gpu_summary
    from harness.orchestrate.backends.docker.image import ensure_image
    from harness.orchestrate.backends.docker.settings import DEFAULT_GPU_IDS, DEFAULT_IMAGES

    ids = gpus or DEFAULT_GPU_IDS
    image = tag or DEFAULT_IMAGES["gpu"]
    check_toolkit(ids, image)  # seconds, and no image is built on a host that cannot run it
    info = ensure_image("gpu", tag=image)
    return gpu_summary(tf_check(image, info["id"], ids), ids)
