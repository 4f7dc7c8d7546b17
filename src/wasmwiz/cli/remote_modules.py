"""`wasmwiz remote modules`: store modules on the service, list, name and delete them."""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO

from wasmwiz.cli.remote_calls import add_retry_flag, with_client
from wasmwiz_client import Client, StoredModule

_LIST_FORMAT = (
    "Prints one module a line, newest first: ID, SIZE (bytes), CREATED and NAMES "
    "(comma-separated, or -), separated by tabs."
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    modules = commands.add_parser(
        "modules",
        help="store modules on the service, to run by id or name",
        description="Stored modules run with `remote run REF` and `remote batch --module REF`.",
    )
    actions = modules.add_subparsers(dest="modules_command", required=True)

    push = actions.add_parser(
        "push", help="store a module; prints its id", description="Prints the module's id."
    )
    push.add_argument("file", help="the .wasm (or .wat) file")
    push.add_argument("--name", help="a name for it too (moved here if it named another)")
    push.set_defaults(remote_handler=push_module)

    listing = actions.add_parser("list", help="list your stored modules", description=_LIST_FORMAT)
    listing.set_defaults(remote_handler=list_modules)

    remove = actions.add_parser("rm", help="delete a stored module and every name for it")
    remove.add_argument("reference", metavar="REF", help="its id (sha256:…) or a name")
    remove.set_defaults(remote_handler=remove_module)

    tag = actions.add_parser("tag", help="point a name at a stored module")
    tag.add_argument("name", metavar="NAME")
    tag.add_argument("reference", metavar="REF", help="its id (sha256:…) or another name")
    tag.set_defaults(remote_handler=tag_module)

    untag = actions.add_parser("untag", help="remove a name (the module stays)")
    untag.add_argument("name", metavar="NAME")
    untag.set_defaults(remote_handler=untag_module)

    for parser in (push, listing, remove, tag, untag):
        add_retry_flag(parser)


def push_module(args: argparse.Namespace, stdin: BinaryIO) -> int:
    def push(client: Client) -> int:
        print(client.upload_module(args.file, args.name).id)
        return 0

    return with_client(args, push)


def list_modules(args: argparse.Namespace, stdin: BinaryIO) -> int:
    def show(client: Client) -> int:
        for stored in client.iter_modules():
            print(module_line(stored))
            sys.stdout.flush()
        return 0

    return with_client(args, show)


def module_line(stored: StoredModule) -> str:
    created = stored.created_at.isoformat().replace("+00:00", "Z")
    names = ",".join(stored.names) or "-"
    return f"{stored.id}\t{stored.size}\t{created}\t{names}"


def remove_module(args: argparse.Namespace, stdin: BinaryIO) -> int:
    def remove(client: Client) -> int:
        client.delete_module(args.reference)
        return 0

    return with_client(args, remove)


def tag_module(args: argparse.Namespace, stdin: BinaryIO) -> int:
    def tag(client: Client) -> int:
        client.tag_module(args.name, args.reference)
        return 0

    return with_client(args, tag)


def untag_module(args: argparse.Namespace, stdin: BinaryIO) -> int:
    def untag(client: Client) -> int:
        client.untag_module(args.name)
        return 0

    return with_client(args, untag)
