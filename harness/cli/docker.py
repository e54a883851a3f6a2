"""``tfparity docker build|check|check-gpu``: image and engine maintenance (used by docker/docker.mk)."""

from __future__ import annotations

import argparse

from harness.spec.names import DEVICES

HELP = "build the worker images, check the engine and the GPU runtime"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="docker_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    b = sub.add_parser("build", help="build (or refresh) the worker image")
    b.add_argument("--device", choices=DEVICES, default="cpu")
    b.add_argument("--tag", default=None)
    b.add_argument("--base-image", default=None)
    b.add_argument("--if-missing", action="store_true", help="only when missing or stale")
    sub.add_parser("check", help="engine and compose reachable")
    sub.add_parser("check-gpu", help="fail in one line unless a GPU container can start")


def run(args: argparse.Namespace) -> int:
    from harness.orchestrate.backends.docker.engine import check_compose, check_engine
    from harness.orchestrate.backends.docker.gpu import check_gpu_runtime
    from harness.orchestrate.backends.docker.image import build_image, ensure_image
    from harness.orchestrate.backends.docker.settings import DEFAULT_IMAGES

    engine = check_engine()
    if args.docker_command == "build":
        build = ensure_image if args.if_missing else build_image
        info = build(args.device, tag=args.tag, base_image=args.base_image)
        print(f"{args.tag or DEFAULT_IMAGES[args.device]} {info['id']}")
    elif args.docker_command == "check-gpu":
        check_compose()
        check_gpu_runtime()
        print("GPU runtime: ok")
    else:
        print(f"Docker engine {engine['server_version']}, compose {check_compose()}")
    return 0
