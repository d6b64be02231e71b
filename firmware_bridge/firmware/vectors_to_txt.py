"""Convert firmware_bridge/test_vectors.json to the line records test_host.c reads.

Usage: python3 vectors_to_txt.py [--policy] [test_vectors.json] > vectors.txt
Records (one per line, "-" for an empty hex string), see test_host.c:
    crc <input_hex> <crc_decimal>
    cobs <decoded_hex> <encoded_hex>
    frame <type_byte> <seq> <payload_hex> <frame_hex> <wire_hex>
    invalid <wire_hex> <reason>
    stream <wire_hex> <crc_drops> <other_drops> <frame_hex>...
With --policy, the records of the on-device inference frames that test_policy_frames.c
reads instead (f32 values as little-endian hex, "-" for none):
    info <precision> <sensor_source> <state_dim> <clock_hz> <name_hex> <payload_hex>
    sensors <n_obs> <values_hex> <payload_hex>
    telemetry <n_obs> <n_act> <time_us> <sensor_seq> <state> <cycles> <digest> <values_hex>
              <payload_hex>        (values: obs, policy_action, applied)
    digest <state_hex> <crc_decimal>
Standard library only (the firmware build must not need the project's venv).
"""

from __future__ import annotations

import json
import struct
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
        for r in vectors["frames"] + vectors.get("telemetry_frames", [])
    ]
    lines += [f"invalid {r['wire_hex']} {r['reason']}" for r in vectors["invalid"]]
    for r in vectors["streams"]:
        drops = r["drops"]
        other = sum(n for reason, n in drops.items() if reason != "crc")
        lines.append(f"stream {r['wire_hex']} {drops['crc']} {other} " + " ".join(r["frames"]))
    return lines


def _f32_hex(values: list[float]) -> str:
    return _h(struct.pack(f"<{len(values)}f", *values).hex())


def policy_lines(vectors: dict) -> list[str]:
    """The on-device inference records (--policy) for a parsed test_vectors.json."""
    lines = []
    for r in vectors["frames"]:
        f = r["fields"]
        if r["type"] == "POLICY":
            name = _h(f["name"].encode("ascii").hex())
            lines.append(
                f"info {f['precision']} {f['sensor_source']} {f['state_dim']} {f['clock_hz']} "
                f"{name} {r['payload_hex']}"
            )
        elif r["type"] == "SENSORS":
            lines.append(f"sensors {len(f['values'])} {_f32_hex(f['values'])} {r['payload_hex']}")
    for r in vectors.get("telemetry_frames", []):
        f = r["fields"]
        values = f["obs"] + f["policy_action"] + f["applied"]
        lines.append(
            f"telemetry {r['n_obs']} {len(f['applied'])} {f['device_time_us']} {f['sensor_seq']} "
            f"{f['state']} {f['step_cycles']} {f['state_digest']} {_f32_hex(values)} "
            f"{r['payload_hex']}"
        )
    for r in vectors.get("state_digests", []):
        lines.append(f"digest {_f32_hex(r['state'])} {r['digest']}")
    return lines


def main(argv: list[str]) -> int:
    args = argv[1:]
    policy = "--policy" in args
    args = [a for a in args if a != "--policy"]
    path = Path(args[0]) if args else DEFAULT
    vectors = json.loads(path.read_text())
    lines = policy_lines(vectors) if policy else vector_lines(vectors)
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
