"""Convert firmware_bridge/test_vectors.json to the line records test_host.c reads.

Usage: python3 vectors_to_txt.py [test_vectors.json] > vectors.txt
Records (one per line, "-" for an empty hex string), see test_host.c:
    crc <input_hex> <crc_decimal>
    cobs <decoded_hex> <encoded_hex>
    frame <type_byte> <seq> <payload_hex> <frame_hex> <wire_hex>
    invalid <wire_hex> <reason>
    stream <wire_hex> <crc_drops> <other_drops> <frame_hex>...
Standard library only (the firmware build must not need the project's venv).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parent.parent / "test_vectors.json"


def _h(x: str) -> str:
    return x or "-"


def vector_lines(vectors: dict) -> list[str]:
    """The records for a parsed test_vectors.json."""
    lines = [f"crc {_h(r['input_hex'])} {r['crc']}" for r in vectors["crc16"]]
    lines += [f"cobs {_h(r['decoded_hex'])} {_h(r['encoded_hex'])}" for r in vectors["cobs"]]
    lines += [
        f"frame {r['type_byte']} {r['seq']} {_h(r['payload_hex'])} {r['frame_hex']} {r['wire_hex']}"
        for r in vectors["frames"]
    ]
    lines += [f"invalid {r['wire_hex']} {r['reason']}" for r in vectors["invalid"]]
    for r in vectors["streams"]:
        drops = r["drops"]
        other = sum(n for reason, n in drops.items() if reason != "crc")
        lines.append(f"stream {r['wire_hex']} {drops['crc']} {other} " + " ".join(r["frames"]))
    return lines


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT
    sys.stdout.write("\n".join(vector_lines(json.loads(path.read_text()))) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
