#!/usr/bin/env python3
"""An independent IEC 62056-21 client for interoperability tests: pwitab's iec62056-21 (PyPI
iec62056-21, pinned in .ci/run) takes a mode C data readout over TCP from 127.0.0.1 and
prints what it parsed, one JSON object on stdout:

  {"identification": {"manufacturer": .., "baud": .., "ident": ..},
   "data_sets": [{"address": .., "value": .., "unit": ..}, ...]}

Usage: iec21_client.py --port PORT
Exits 3 when the package is not installed (the Rust test then skips, unless peers are
required). tests/mode_c.rs compares its output with the simulator's values.
"""
import argparse
import json
import sys

try:
    from iec62056_21 import client
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"iec62056-21 is not installed: {e}", file=sys.stderr)
    sys.exit(3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # Loopback only: the tests never talk to another address.
    c = client.Iec6205621Client.with_tcp_transport(("127.0.0.1", args.port))
    c.transport.timeout = 10
    c.connect()
    try:
        answer = c.standard_readout()
    finally:
        c.disconnect()
    out = {
        "identification": {
            "manufacturer": c.manufacturer_id,
            "baud": c.switchover_baudrate,
            "ident": c.identification,
        },
        "data_sets": [
            {"address": s.address, "value": s.value, "unit": s.unit} for s in answer.data
        ],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
