"""Operator tools behind ``courier doctor``, ``courier status`` and ``courier gc``.

Each command is a module with ``add_parser(subparsers)`` and a ``run(args) -> exit code``; the logic they share
(reading Docker, the local OVS and host devices) lives in modules of its own so the server can reuse it.
Exit codes: 0 ok, 1 findings or failure, 2 usage (argparse).
"""
