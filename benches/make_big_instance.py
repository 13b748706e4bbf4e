#!/usr/bin/env python3
"""Writes a valid MR instance with SIZE_MIB MiB of pixel data to PATH, for
the benchmarks of large instances (benches/big_instance.sh, listen_big.sh,
listen_many_big.sh). NUMBER (default 1) is its InstanceNumber and ends its
SOPInstanceUID, so that several instances of the series can be made.

    python3 benches/make_big_instance.py PATH SIZE_MIB [NUMBER]

The pixel data is one random MiB repeated: written fast, and not zeros, so
no layer can take a shortcut on all-zero blocks.
"""
import random, struct, sys

path, size_mib = sys.argv[1], int(sys.argv[2])
number = int(sys.argv[3]) if len(sys.argv) > 3 else 1
pixel_len = size_mib * 1024 * 1024
frames = size_mib * 2  # 512 * 512 * 2 bytes = 0.5 MiB per frame

def pad(value: bytes, vr: str) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB") else b" "
    return value

def elem(group: int, element: int, vr: str, value: bytes) -> bytes:
    value = pad(value, vr)
    head = struct.pack("<HH", group, element) + vr.encode()
    if vr in ("OB", "OW", "OF", "SQ", "UT", "UN"):
        return head + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value

SOP_CLASS = b"1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
SOP_INSTANCE = b"1.2.826.0.1.3680043.8.498.1%018d" % number
STUDY = b"1.2.826.0.1.3680043.8.498.2000000000000000001"
SERIES = b"1.2.826.0.1.3680043.8.498.3000000000000000001"

meta_body = b"".join([
    elem(0x0002, 0x0001, "OB", b"\0\1"),
    elem(0x0002, 0x0002, "UI", SOP_CLASS),
    elem(0x0002, 0x0003, "UI", SOP_INSTANCE),
    elem(0x0002, 0x0010, "UI", b"1.2.840.10008.1.2.1"),  # explicit VR LE
    elem(0x0002, 0x0012, "UI", b"1.2.826.0.1.3680043.8.498.1"),
    elem(0x0002, 0x0013, "SH", b"RXBENCH"),
])
meta = elem(0x0002, 0x0000, "UL", struct.pack("<I", len(meta_body))) + meta_body

us = lambda v: struct.pack("<H", v)
dataset = b"".join([  # ascending tag order, as DICOM requires
    elem(0x0008, 0x0016, "UI", SOP_CLASS),
    elem(0x0008, 0x0018, "UI", SOP_INSTANCE),
    elem(0x0008, 0x0020, "DA", b"20240102"),
    elem(0x0008, 0x0050, "SH", b"ACC0001"),
    elem(0x0008, 0x0060, "CS", b"MR"),
    elem(0x0008, 0x1030, "LO", b"BENCH BIG STUDY"),
    elem(0x0008, 0x103E, "LO", b"BIG SERIES"),
    elem(0x0010, 0x0010, "PN", b"Bench^Big"),
    elem(0x0010, 0x0020, "LO", b"BENCH001"),
    elem(0x0010, 0x0030, "DA", b"19700101"),
    elem(0x0020, 0x000D, "UI", STUDY),
    elem(0x0020, 0x000E, "UI", SERIES),
    elem(0x0020, 0x0011, "IS", b"1"),
    elem(0x0020, 0x0013, "IS", str(number).encode()),
    elem(0x0028, 0x0002, "US", us(1)),
    elem(0x0028, 0x0004, "CS", b"MONOCHROME2"),
    elem(0x0028, 0x0008, "IS", str(frames).encode()),
    elem(0x0028, 0x0010, "US", us(512)),
    elem(0x0028, 0x0011, "US", us(512)),
    elem(0x0028, 0x0100, "US", us(16)),
    elem(0x0028, 0x0101, "US", us(16)),
    elem(0x0028, 0x0102, "US", us(15)),
    elem(0x0028, 0x0103, "US", us(0)),
])
# PixelData header only; the value is streamed below.
pixel_head = struct.pack("<HH", 0x7FE0, 0x0010) + b"OW\0\0" + struct.pack("<I", pixel_len)

block = random.Random(42).randbytes(1024 * 1024)
with open(path, "wb") as f:
    f.write(b"\0" * 128 + b"DICM" + meta + dataset + pixel_head)
    for _ in range(size_mib):
        f.write(block)
