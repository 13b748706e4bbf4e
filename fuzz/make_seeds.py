"""Writes the seed files of the `header` fuzz target into fuzz/corpus/header.

Run with a Python that has pydicom 2.x (examples-data/pypx-venv has one, from ./get_oracle.sh):

    examples-data/pypx-venv/bin/python fuzz/make_seeds.py

Seeds: the first 16 KiB of three real instances (cut inside their large
private groups), and one small instance (the first real one without its
private groups, 4x4 pixels) written in every layout and transfer syntax
rx-repack reads, plus a few odd ones.
"""

import glob
import io
import os
import sys

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

HERE = os.path.dirname(os.path.abspath(__file__))
REAL = sorted(glob.glob(os.path.join(HERE, "..", "examples-data", "SAG-anon", "*.dcm")))
OUT = os.path.join(HERE, "corpus", "header")


def save(name, data):
    with open(os.path.join(OUT, "seed-" + name), "wb") as f:
        f.write(data)


def small_instance():
    ds = pydicom.dcmread(REAL[0], stop_before_pixels=True)
    ds.remove_private_tags()
    ds.Rows = 4
    ds.Columns = 4
    ds.PixelData = bytes(range(32))
    ds["PixelData"].VR = "OW"
    return ds


def encoded(ds, syntax, preamble=True, meta=True):
    ds.file_meta.TransferSyntaxUID = syntax
    ds.is_little_endian = syntax != ExplicitVRBigEndian
    ds.is_implicit_VR = syntax == ImplicitVRLittleEndian
    if not meta:
        buf = io.BytesIO()
        fp = pydicom.filebase.DicomFileLike(buf)
        fp.is_little_endian = ds.is_little_endian
        fp.is_implicit_VR = ds.is_implicit_VR
        pydicom.filewriter.write_dataset(fp, ds)
        return buf.getvalue()
    buf = io.BytesIO()
    ds.save_as(buf, write_like_original=False)
    data = buf.getvalue()
    return data if preamble else data[128:]


def main():
    os.makedirs(OUT, exist_ok=True)
    for i in (0, 60, 120):
        with open(REAL[i], "rb") as f:
            save(f"real-{i + 1:04}-16k.dcm", f.read(16 * 1024))

    ds = small_instance()
    save("explicit-le.dcm", encoded(ds, ExplicitVRLittleEndian))
    save("implicit-le.dcm", encoded(ds, ImplicitVRLittleEndian))
    save("explicit-be.dcm", encoded(ds, ExplicitVRBigEndian))
    save("deflated.dcm", encoded(ds, DeflatedExplicitVRLittleEndian))
    save("no-preamble.dcm", encoded(ds, ExplicitVRLittleEndian, preamble=False))
    save("bare-implicit-le.dcm", encoded(ds, ImplicitVRLittleEndian, meta=False))
    save("bare-explicit-le.dcm", encoded(ds, ExplicitVRLittleEndian, meta=False))
    save("bare-explicit-be.dcm", encoded(ds, ExplicitVRBigEndian, meta=False))

    # Sequences and items of undefined length, nested three deep.
    odd = small_instance()
    inner = Dataset()
    inner.CodeValue = "X"
    inner.CodeMeaning = "nested"
    middle = Dataset()
    middle.ConceptNameCodeSequence = Sequence([inner])
    odd.ContentSequence = Sequence([middle, Dataset()])
    for elem in odd.iterall():
        if elem.VR == "SQ":
            elem.is_undefined_length = True
            for item in elem.value:
                item.is_undefined_length_sequence_item = True
    save("undefined-lengths.dcm", encoded(odd, ExplicitVRLittleEndian))
    save("undefined-lengths-implicit.dcm", encoded(odd, ImplicitVRLittleEndian))

    # Japanese with a code extension, and UTF-8 with a byte it lacks.
    jp = small_instance()
    jp.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    jp.PatientName = "Yamada^Tarou=\u5c71\u7530^\u592a\u90ce"
    jp.SeriesDescription = "\u982d\u90e8"
    save("iso2022-ir87.dcm", encoded(jp, ExplicitVRLittleEndian))
    utf8 = small_instance()
    utf8.SpecificCharacterSet = "ISO_IR 192"
    data = encoded(utf8, ExplicitVRLittleEndian)
    save("utf8-invalid.dcm", data.replace(b"anonymized", b"M\xfcller^Han"))

    # Many value types, several values each.
    types = small_instance()
    types.FrameIncrementPointer = [0x00181063, 0x00181065]
    types.add_new(0x00189089, "FD", [0.1, -2.5e-7, 1e20])
    types.add_new(0x00189087, "FD", 1500.0)
    types.add_new(0x00280034, "IS", ["1", "1"])
    types.add_new(0x00181310, "US", [0, 256, 256, 0])
    types.add_new(0x00189219, "SS", -3)
    types.add_new(0x00280106, "US", 0)
    types.add_new(0x00291010, "UN", b"\x00\x01'\"\\")
    types.add_new(0x00080005, "CS", "ISO_IR 100")
    types.PatientComments = "line\nbreak\ttab\x00"
    save("value-types.dcm", encoded(types, ExplicitVRLittleEndian))

    # Encapsulated pixel data: an offset table and two fragments.
    enc = small_instance()
    enc.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8\xff\xd9", b"\x01\x02\x03\x04"])
    enc["PixelData"].VR = "OB"
    enc["PixelData"].is_undefined_length = True
    save("encapsulated.dcm", encoded(enc, JPEGBaseline8Bit))

    # A header longer than what rx-repack reads at once (16 KiB; 64 KiB
    # before): the walk and dicom-rs go on reading from the file.
    big = small_instance()
    big.add_new(0x00190010, "LO", "FUZZ")
    big.add_new(0x00191000, "OB", b"\x00" * 70000)
    save("over-64k.dcm", encoded(big, ExplicitVRLittleEndian))

    # The meta group only.
    save("meta-only.dcm", encoded(ds, ExplicitVRLittleEndian)[: 132 + 12 + 212])
    return 0


if __name__ == "__main__":
    sys.exit(main())
