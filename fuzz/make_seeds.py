#!/usr/bin/env python3
"""Writes fuzz seed corpora (fuzz/seeds/<target>/) from the independent test vectors, so the
fuzzers start from real PDUs instead of from nothing. Run after regenerating the vectors."""
import json
import os
import shutil

here = os.path.dirname(os.path.abspath(__file__))
vectors = json.load(open(os.path.join(here, "..", "tests", "vectors", "independent.json")))
seeds = {t: {} for t in ["deframer", "hdlc_link", "wrapper", "axdr", "acse", "xdlms", "security", "describe"]}
for name, v in vectors.items():
    b = bytes.fromhex(v["hex"])
    if name.startswith("hdlc_"):
        seeds["deframer"][name] = bytes([7]) + b  # first byte: chunk size
        seeds["hdlc_link"][name] = b
        info = b[8:-3] if len(b) > 12 else b""
        if info[:2] == b"\xe6\xe6" or info[:2] == b"\xe6\xe7":
            seeds["xdlms"][name] = info[3:]
            seeds["acse"][name] = info[3:]
    elif name.startswith("wrapper_"):
        seeds["wrapper"][name] = b
        seeds["xdlms"][name] = b[8:]
        seeds["acse"][name] = b[8:]
    elif name.startswith("axdr_"):
        seeds["axdr"][name] = b
    else:
        seeds["xdlms"][name] = b
        seeds["acse"][name] = b
hls = vectors.get("wrapper_aarq_hls_gmac_ciphered")
if hls:
    b = bytes.fromhex(hls["hex"])
    at = b.find(bytes([0x21, 0x1F]))
    if at >= 0:
        seeds["security"]["gurux_glo_initiate"] = b[at:]
# The ciphered GET-Requests in every envelope (glo-, ded-, general-glo, general-ded).
for name, v in vectors.items():
    if name.endswith("_get_clock") or name.endswith("_get_clock_auth_only"):
        seeds["security"][name] = bytes.fromhex(v["hex"])[8:]
# The trace describer: every captured frame, PDU and APDU as it is.
for name, v in vectors.items():
    if not name.startswith("axdr_"):
        seeds["describe"][name] = bytes.fromhex(v["hex"])
for target, files in seeds.items():
    d = os.path.join(here, "seeds", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in files.items():
        open(os.path.join(d, name), "wb").write(data)


# General block transfer (target gbt): the Gurux GBT pushes of tests/vectors/gbt/, each HDLC
# frame's APDU (header, LLC, FCS and flag removed), one block alone and each sequence with a
# length byte before every block (the target's input layout).
def gbt_blocks(path):
    lines = [l.strip() for l in open(path) if l.strip() and not l.startswith("#")]
    return [bytes.fromhex(l)[11:-3] for l in lines]


gbt_dir = os.path.join(here, "seeds", "gbt")
shutil.rmtree(gbt_dir, ignore_errors=True)
os.makedirs(gbt_dir)
for kind in ["plain", "ciphered"]:
    blocks = gbt_blocks(os.path.join(here, "..", "tests", "vectors", "gbt", f"gurux-push-{kind}-hdlc.hex"))
    open(os.path.join(gbt_dir, f"gurux-{kind}-block-1"), "wb").write(blocks[0])
    open(os.path.join(gbt_dir, f"gurux-{kind}-sequence"), "wb").write(
        b"".join(bytes([len(b)]) + b for b in blocks)
    )
