#!/usr/bin/env python3
"""Seeds for the `association` fuzz target (fuzz/corpus/association/seed-*):
byte streams a peer sends to rx-listen, one valid association and the
malformed cases of tests/it/listen_hostile.rs. No dependencies:
python3 fuzz/make_association_seeds.py"""

import pathlib
import struct

OUT = pathlib.Path(__file__).parent / "corpus" / "association"
MR = b"1.2.840.10008.5.1.4.1.1.4"
VERIFICATION = b"1.2.840.10008.1.1"
EXPLICIT_LE = b"1.2.840.10008.1.2.1"
IMPLICIT_LE = b"1.2.840.10008.1.2"


def pdu(kind, body):
    return struct.pack(">BBI", kind, 0, len(body)) + body


def item(kind, body):
    return struct.pack(">BBH", kind, 0, len(body)) + body


def ae(title):
    return title.ljust(16).encode()


def context(cid, abstract, *syntaxes):
    body = bytes([cid, 0, 0, 0]) + item(0x30, abstract)
    return item(0x20, body + b"".join(item(0x40, s) for s in syntaxes))


def associate_rq(extra_user=b"", contexts=None):
    if contexts is None:
        contexts = context(1, MR, EXPLICIT_LE, IMPLICIT_LE) + context(3, VERIFICATION, IMPLICIT_LE)
    user = item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.826.0.1.3680043.8.498.1") + extra_user
    body = struct.pack(">HH", 1, 0) + ae("RXLISTEN") + ae("FUZZSCU") + bytes(32)
    body += item(0x10, b"1.2.840.10008.3.1.1.1") + contexts + item(0x50, user)
    return pdu(0x01, body)


def even(value):
    return value + b"\0" if len(value) % 2 else value


def command(fields):
    """Implicit VR LE group 0000, behind its group length."""
    rest = b"".join(struct.pack("<HHI", 0, n, len(v)) + v for n, v in fields)
    return struct.pack("<HHI", 0, 0, 4) + struct.pack("<I", len(rest)) + rest


def c_echo(mid):
    return command([(0x0002, even(VERIFICATION)), (0x0100, struct.pack("<H", 0x30)),
                    (0x0110, struct.pack("<H", mid)), (0x0800, struct.pack("<H", 0x0101))])


def c_store(mid, uid, with_uid=True):
    fields = [(0x0002, even(MR)), (0x0100, struct.pack("<H", 1)), (0x0110, struct.pack("<H", mid)),
              (0x0700, struct.pack("<H", 0)), (0x0800, struct.pack("<H", 0))]
    if with_uid:
        fields.append((0x1000, even(uid)))
    return command(fields)


def p_data(cid, control, fragment):
    return pdu(0x04, struct.pack(">IBB", len(fragment) + 2, cid, control) + fragment)


def element(group, number, vr, value):
    value = even(value) if vr in (b"UI",) else (value + b" " if len(value) % 2 else value)
    return struct.pack("<HH", group, number) + vr + struct.pack("<H", len(value)) + value


UID = b"1.2.826.0.1.3680043.8.498.777"
DATA_SET = b"".join([
    element(0x0008, 0x0016, b"UI", MR),
    element(0x0008, 0x0018, b"UI", UID),
    element(0x0008, 0x0060, b"CS", b"MR"),
    element(0x0010, 0x0010, b"PN", b"FUZZ^PATIENT"),
    element(0x0010, 0x0020, b"LO", b"FUZZ01"),
    element(0x0020, 0x000D, b"UI", UID + b".1"),
    element(0x0020, 0x000E, b"UI", UID + b".2"),
    element(0x0020, 0x0011, b"IS", b"1"),
    element(0x0020, 0x0013, b"IS", b"1"),
])
RELEASE = pdu(0x05, bytes(4))
RQ = associate_rq()
HALF = len(DATA_SET) // 2

SEEDS = {
    "valid-echo-store-release": RQ + p_data(3, 3, c_echo(1)) + p_data(1, 3, c_store(2, UID))
    + p_data(1, 0, DATA_SET[:HALF]) + p_data(1, 2, DATA_SET[HALF:]) + RELEASE,
    "valid-two-pdvs-in-one-pdu": RQ + pdu(0x04, struct.pack(">IBB", len(c_store(1, UID)) + 2, 1, 3)
    + c_store(1, UID) + struct.pack(">IBB", len(DATA_SET) + 2, 1, 2) + DATA_SET) + RELEASE,
    "valid-bad-data-set": RQ + p_data(1, 3, c_store(1, UID)) + p_data(1, 2, b"not DICOM" * 20) + RELEASE,
    "valid-abort": RQ + p_data(3, 3, c_echo(1)) + pdu(0x07, bytes([0, 0, 0, 0])),
    "rq-with-role-extneg-identity": associate_rq(
        item(0x54, struct.pack(">H", len(MR)) + MR + b"\x01\x00")
        + item(0x56, struct.pack(">H", len(MR)) + MR + b"\x01\x02\x03")
        + item(0x58, b"\x01\x00" + struct.pack(">H", 4) + b"user" + struct.pack(">H", 0))
        + item(0x55, b"FUZZ_1")) + p_data(3, 3, c_echo(1)) + RELEASE,
    "rq-unknown-context": associate_rq(contexts=context(1, b"1.2.3.4", EXPLICIT_LE)) + RELEASE,
    "rq-4gib": struct.pack(">BBI", 1, 0, 0xFFFFFFFF),
    "rq-over-max": struct.pack(">BBI", 1, 0, 131073) + bytes(64),
    "rq-too-short": pdu(0x01, bytes(10)),
    "pdata-4gib": RQ + struct.pack(">BBI", 4, 0, 0xFFFFFFFF),
    "pdata-over-max": RQ + struct.pack(">BBI", 4, 0, 131073) + bytes(64),
    "pdv-too-short": RQ + pdu(0x04, bytes([0, 0, 0, 1, 1, 3])),
    "pdv-longer-than-pdu": RQ + pdu(0x04, struct.pack(">IBB", 100, 1, 3) + bytes(10)),
    "unknown-context": RQ + p_data(5, 3, c_store(1, UID)),
    "store-without-instance-uid": RQ + p_data(1, 3, c_store(1, UID, with_uid=False)) + p_data(1, 2, DATA_SET),
    "command-cut": RQ + p_data(1, 3, bytes([0, 0, 0, 0, 4, 0])),
    "command-element-4gib": RQ + p_data(1, 3, struct.pack("<HHI", 0, 0x0100, 0xFFFFFFFF)),
    "data-before-command": RQ + p_data(1, 2, DATA_SET),
    "command-in-data-set": RQ + p_data(1, 3, c_store(1, UID)) + p_data(1, 0, DATA_SET[:HALF]) + p_data(1, 3, c_echo(2)),
    "pdata-first": p_data(1, 3, c_store(1, UID)),
    "unknown-pdu-first": pdu(0x09, bytes(8)),
    "unknown-pdu-after": RQ + pdu(0x09, bytes(4)),
    "second-rq": RQ + RQ,
    "release-first": RELEASE,
    "garbage-http": b"GET / HTTP/1.1\r\nHost: rx-listen\r\n\r\n",
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        (OUT / f"seed-{name}").write_bytes(data)
    print(f"{len(SEEDS)} seeds in {OUT}")


if __name__ == "__main__":
    main()
