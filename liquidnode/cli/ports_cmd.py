"""``liquidnode ports``: the serial ports of this machine and the board probably behind each.

For each USB serial port: its path (pass it to ``deploy --port`` or ``board flash --port``),
the USB vendor:product id, a guess of the board (Arduino Uno, CH340 or FTDI clone...) and
pyserial's description. ``--all`` also lists ports without a USB id (on-board UARTs).
``--json`` prints ``{"ports": [{"device", "usb", "vid", "pid", "serial_number", "board",
"description"}, ...]}``.
"""

from __future__ import annotations

import argparse
import json

from liquidnode.cli.arguments import Subparsers


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``ports``."""
    from liquidnode.cli.arguments import add_json_argument

    p = subparsers.add_parser(
        "ports",
        help="list serial ports with their USB id and a guess of the board",
        description=(
            "List the serial ports of this machine (pyserial), with the USB vendor:product id "
            "and a guess of the board behind each (Arduino Uno, CH340/FTDI clones...). Pass "
            "the path to 'liquidnode deploy --port' or 'liquidnode board flash --port'."
        ),
    )
    p.add_argument("--all", action="store_true", help="also list ports without a USB id")
    add_json_argument(p, "the port list")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """List the ports; 0 also when there are none (a line says so)."""
    from liquidnode.firmware_bridge.ports import list_ports

    ports = list_ports(include_non_usb=args.all)
    if args.json:
        print(json.dumps({"ports": [p.to_json() for p in ports]}))
        return 0
    if not ports:
        hint = "" if args.all else " (--all also lists ports without a USB id)"
        print(f"no USB serial ports found{hint}; is the board plugged in?")
        return 0
    print(f"{'port':<16} {'usb':<9}  {'board (guess)':<46} description")
    for p in ports:
        usb = p.to_json()["usb"] or "-"
        print(f"{p.device:<16} {usb:<9}  {p.board or 'unknown':<46} {p.description}")
    return 0
