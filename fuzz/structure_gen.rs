//! The `structure` fuzz target's generator: fuzz bytes decoded, choice by
//! choice, into a DICOM file (shared with `tests/it/fuzz_regressions.rs`,
//! which replays the kept corpus through it).
//!
//! A file is a framing (preamble and `DICM`, `DICM` alone, or a bare data
//! set), a file meta group (its transfer syntax right, absent, garbled or
//! naming another encoding), and a data set in explicit VR little or big
//! endian, implicit VR little endian, or deflated: a tree of elements with
//! standard and private tags, every VR and some nonstandard ones, defined
//! and undefined lengths, sequences nested a few levels deep (SQ, UN of
//! undefined length whose content is implicit VR little endian, OB/OW and
//! private tags of undefined length), items of defined and undefined
//! length, encapsulated pixel data, elements after the pixel data and
//! trailing bytes. Then a few mutations of the serialised bytes, aimed at
//! the structure the serialiser recorded: a cut at an element, a length
//! changed, a VR changed, a tag changed, bytes inserted or removed.
//!
//! Only `std` and `flate2` (which the main crate has too). When the fuzz
//! bytes run out every further choice is the first (zero): no mutation, no
//! more elements, so every input gives a file.

use std::io::Write;

/// The fuzz bytes, read one choice at a time.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data, pos: 0 }
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    /// A number below `n` (0 for n <= 1).
    fn below(&mut self, n: usize) -> usize {
        match n {
            0 | 1 => 0,
            2..=256 => usize::from(self.byte()) % n,
            _ => usize::from(self.u16()) % n,
        }
    }

    /// True `of256` times in 256 (never once the input is used up).
    fn chance(&mut self, of256: u16) -> bool {
        u16::from(self.byte()) >= 256 - of256.min(256)
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// How the data set is encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DataEncoding {
    ExplicitLe,
    ExplicitBe,
    ImplicitLe,
    /// Explicit VR little endian, deflated.
    Deflated,
}

/// How the file starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Framing {
    /// 128-byte preamble, `DICM`, the meta group.
    Preamble,
    /// `DICM` and the meta group, no preamble.
    NoPreamble,
    /// Preamble and `DICM`, then straight the data set (no group 0002).
    NoMetaGroup,
    /// The data set alone.
    Bare,
}

/// A generated file and what it was made of (for reports).
pub struct Generated {
    pub bytes: Vec<u8>,
    pub framing: Framing,
    pub encoding: DataEncoding,
    /// How many byte mutations were applied.
    pub mutations: usize,
}

impl Generated {
    /// Whether pydicom can read it without `force=True`: it wants `DICM`
    /// after a 128-byte preamble.
    pub fn has_preamble(&self) -> bool {
        self.bytes.get(128..132) == Some(b"DICM")
    }
}

const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
const UNDEFINED: u32 = 0xFFFF_FFFF;

const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
/// Syntaxes whose data set is explicit VR little endian (pixel data
/// compressed).
const COMPRESSED: [&str; 4] = [
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.5",
];

/// Every VR of the standard.
const VRS: [&[u8; 2]; 34] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB",
    b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
    b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
];
/// VR codes no standard knows: DCMTK and pydicom read on with a 2-byte length.
const NONSTANDARD_VRS: [&[u8; 2]; 6] = [b"  ", b"\0\0", b"xx", b"us", b"ox", b"??"];

/// Tags with their VR, the layout's and records' ones among them.
const VALUE_TAGS: [(u16, u16, &[u8; 2]); 42] = [
    (0x0008, 0x0000, b"UL"),
    (0x0008, 0x0005, b"CS"),
    (0x0008, 0x0008, b"CS"),
    (0x0008, 0x0016, b"UI"),
    (0x0008, 0x0018, b"UI"),
    (0x0008, 0x0020, b"DA"),
    (0x0008, 0x0030, b"TM"),
    (0x0008, 0x0050, b"SH"),
    (0x0008, 0x0060, b"CS"),
    (0x0008, 0x1010, b"SH"),
    (0x0008, 0x1030, b"LO"),
    (0x0008, 0x103E, b"LO"),
    (0x0009, 0x0010, b"LO"),
    (0x0009, 0x1010, b"UN"),
    (0x0009, 0x1011, b"OB"),
    (0x0010, 0x0010, b"PN"),
    (0x0010, 0x0020, b"LO"),
    (0x0010, 0x0030, b"DA"),
    (0x0010, 0x0040, b"CS"),
    (0x0010, 0x1010, b"AS"),
    (0x0010, 0x1030, b"DS"),
    (0x0010, 0x4000, b"LT"),
    (0x0018, 0x0050, b"DS"),
    (0x0018, 0x1310, b"US"),
    (0x0019, 0x0010, b"LO"),
    (0x0019, 0x1008, b"CS"),
    (0x0020, 0x000D, b"UI"),
    (0x0020, 0x000E, b"UI"),
    (0x0020, 0x0011, b"IS"),
    (0x0020, 0x0013, b"IS"),
    (0x0020, 0x0032, b"DS"),
    (0x0028, 0x0010, b"US"),
    (0x0028, 0x0030, b"DS"),
    (0x0028, 0x1052, b"DS"),
    (0x0029, 0x1010, b"OB"),
    (0x0040, 0x0244, b"DA"),
    (0x0040, 0xA160, b"UT"),
    (0x0054, 0x1001, b"CS"),
    (0x3006, 0x0002, b"SH"),
    (0x300A, 0x0002, b"SH"),
    (0x6000, 0x3000, b"OW"),
    (0x0011, 0x1000, b"LO"),
];

/// Tags that hold sequences (or are written with undefined length anyway).
const SEQUENCE_TAGS: [(u16, u16); 10] = [
    (0x0008, 0x1140),
    (0x0008, 0x1115),
    (0x0040, 0x0275),
    (0x0008, 0x1111),
    (0x3006, 0x0020),
    (0x0009, 0x1020),
    (0x0029, 0x1020),
    (0x2001, 0x105F),
    (0x0010, 0x0010),
    (0x0040, 0xA730),
];

/// Where in the serialised bytes the structure is, for the mutations.
#[derive(Debug, Clone, Copy)]
enum Mark {
    /// An element or item header starts here.
    Element(usize),
    /// An explicit VR code.
    Vr(usize),
    /// A length field of 2 or 4 bytes, big endian or not.
    Length(usize, u8, bool),
}

impl Mark {
    fn at(self) -> usize {
        match self {
            Mark::Element(at) | Mark::Vr(at) | Mark::Length(at, ..) => at,
        }
    }

    fn moved(self, by: isize) -> Mark {
        let shift = |at: usize| at.saturating_add_signed(by);
        match self {
            Mark::Element(at) => Mark::Element(shift(at)),
            Mark::Vr(at) => Mark::Vr(shift(at)),
            Mark::Length(at, width, big) => Mark::Length(shift(at), width, big),
        }
    }
}

/// Serialised bytes and their marks.
#[derive(Default)]
struct Out {
    bytes: Vec<u8>,
    marks: Vec<Mark>,
}

impl Out {
    fn append(&mut self, other: Out) {
        let base = self.bytes.len() as isize;
        self.marks
            .extend(other.marks.into_iter().map(|m| m.moved(base)));
        self.bytes.extend(other.bytes);
    }
}

/// How the bytes being written are encoded.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    explicit: bool,
    big: bool,
}

impl Ctx {
    const IMPLICIT_LE: Ctx = Ctx {
        explicit: false,
        big: false,
    };

    fn u16(self, n: u16) -> [u8; 2] {
        if self.big {
            n.to_be_bytes()
        } else {
            n.to_le_bytes()
        }
    }

    fn u32(self, n: u32) -> [u8; 4] {
        if self.big {
            n.to_be_bytes()
        } else {
            n.to_le_bytes()
        }
    }
}

/// Whether explicit VR gives `vr` a 4-byte length.
fn long_length(vr: &[u8; 2]) -> bool {
    matches!(
        vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

/// Writes an element (or item) header. `vr` is left out in implicit VR
/// and for items.
fn header(out: &mut Out, ctx: Ctx, tag: (u16, u16), vr: &[u8; 2], length: u32) {
    out.marks.push(Mark::Element(out.bytes.len()));
    out.bytes.extend(ctx.u16(tag.0));
    out.bytes.extend(ctx.u16(tag.1));
    if ctx.explicit && tag.0 != 0xFFFE {
        out.marks.push(Mark::Vr(out.bytes.len()));
        out.bytes.extend(vr);
        if long_length(vr) {
            out.bytes.extend([0, 0]);
            out.marks.push(Mark::Length(out.bytes.len(), 4, ctx.big));
            out.bytes.extend(ctx.u32(length));
        } else {
            out.marks.push(Mark::Length(out.bytes.len(), 2, ctx.big));
            out.bytes.extend(ctx.u16(length as u16));
        }
    } else {
        out.marks.push(Mark::Length(out.bytes.len(), 4, ctx.big));
        out.bytes.extend(ctx.u32(length));
    }
}

/// One element of the tree.
enum Node {
    Value {
        tag: (u16, u16),
        vr: [u8; 2],
        value: Vec<u8>,
    },
    Sequence {
        tag: (u16, u16),
        vr: [u8; 2],
        undefined: bool,
        items: Vec<Item>,
        /// The sequence delimiter of an undefined length (left out sometimes).
        delimiter: bool,
    },
    /// Encapsulated data: a basic offset table and fragments.
    Fragments {
        tag: (u16, u16),
        vr: [u8; 2],
        fragments: Vec<Vec<u8>>,
        delimiter: bool,
    },
    /// Bytes as they are: a stray delimiter, garbage.
    Raw(Vec<u8>),
}

struct Item {
    undefined: bool,
    nodes: Vec<Node>,
    delimiter: bool,
}

impl Node {
    fn tag(&self) -> (u16, u16) {
        match self {
            Node::Value { tag, .. } | Node::Sequence { tag, .. } | Node::Fragments { tag, .. } => {
                *tag
            }
            Node::Raw(_) => (0xFFFF, 0xFFFF),
        }
    }

    fn write(&self, out: &mut Out, ctx: Ctx) {
        match self {
            Node::Value { tag, vr, value } => {
                header(out, ctx, *tag, vr, value.len() as u32);
                out.bytes.extend(value);
            }
            Node::Sequence {
                tag,
                vr,
                undefined,
                items,
                delimiter,
            } => {
                // A UN of undefined length holds implicit VR little endian.
                let inner = if ctx.explicit && *undefined && vr == b"UN" {
                    Ctx::IMPLICIT_LE
                } else {
                    ctx
                };
                let mut content = Out::default();
                for item in items {
                    item.write(&mut content, inner);
                }
                if *undefined && *delimiter {
                    header(&mut content, inner, SEQUENCE_END, b"  ", 0);
                }
                let length = if *undefined {
                    UNDEFINED
                } else {
                    content.bytes.len() as u32
                };
                header(out, ctx, *tag, vr, length);
                out.append(content);
            }
            Node::Fragments {
                tag,
                vr,
                fragments,
                delimiter,
            } => {
                header(out, ctx, *tag, vr, UNDEFINED);
                for fragment in fragments {
                    header(out, ctx, ITEM, b"  ", fragment.len() as u32);
                    out.bytes.extend(fragment);
                }
                if *delimiter {
                    header(out, ctx, SEQUENCE_END, b"  ", 0);
                }
            }
            Node::Raw(bytes) => {
                out.marks.push(Mark::Element(out.bytes.len()));
                out.bytes.extend(bytes);
            }
        }
    }
}

impl Item {
    fn write(&self, out: &mut Out, ctx: Ctx) {
        let mut content = Out::default();
        for node in &self.nodes {
            node.write(&mut content, ctx);
        }
        if self.undefined && self.delimiter {
            header(&mut content, ctx, ITEM_END, b"  ", 0);
        }
        let length = if self.undefined {
            UNDEFINED
        } else {
            content.bytes.len() as u32
        };
        header(out, ctx, ITEM, b"  ", length);
        out.append(content);
    }
}

/// Text values by kind of VR: ordinary, odd and hostile.
fn text_value(input: &mut Input, vr: &[u8; 2]) -> Vec<u8> {
    const NAMES: [&[u8]; 8] = [
        b"Doe^John",
        b"anonymized",
        b"",
        b"../../etc",
        b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B",
        b"M\xfcller",
        b"a\\b\\c",
        b"\xc3\x28 bad utf8",
    ];
    const UIDS: [&[u8]; 6] = [
        b"1.2.840.10008.5.1.4.1.1.4",
        b"1.3.12.2.1107.5.2.19.45152.2013030808110258929186035",
        b"1.2.3",
        b"",
        b"1.2.3.abc",
        b"1.2.840.10008.1.2.1",
    ];
    const NUMBERS: [&[u8]; 7] = [
        b"1",
        b"-1.5",
        b"0.859375\\0.859375",
        b"",
        b"abc",
        b"1e400",
        b"12",
    ];
    const DATES: [&[u8]; 5] = [b"20130308", b"", b"2013.03.08", b"081103.184000", b"003Y"];
    const CODES: [&[u8]; 6] = [
        b"ISO_IR 100",
        b"ISO_IR 192",
        b"\\ISO 2022 IR 87",
        b"ORIGINAL\\PRIMARY",
        b"MR",
        b"",
    ];
    let mut value = match vr {
        b"UI" => input.pick(&UIDS).to_vec(),
        b"DS" | b"IS" => input.pick(&NUMBERS).to_vec(),
        b"DA" | b"TM" | b"DT" | b"AS" => input.pick(&DATES).to_vec(),
        b"CS" | b"AE" => input.pick(&CODES).to_vec(),
        _ => input.pick(&NAMES).to_vec(),
    };
    if input.chance(24) {
        // Bytes of the fuzzer's choosing.
        let n = input.below(24);
        value = input.bytes(n);
    }
    if value.len() % 2 == 1 && input.byte() < 230 {
        value.push(if vr == b"UI" { 0 } else { b' ' });
    }
    value
}

/// The size of one value of a binary VR.
fn unit(vr: &[u8; 2]) -> usize {
    match vr {
        b"US" | b"SS" | b"OW" => 2,
        b"UL" | b"SL" | b"FL" | b"AT" | b"OF" | b"OL" => 4,
        b"FD" | b"SV" | b"UV" | b"OD" | b"OV" => 8,
        _ => 1,
    }
}

fn is_text(vr: &[u8; 2]) -> bool {
    matches!(
        vr,
        b"AE"
            | b"AS"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"ST"
            | b"TM"
            | b"UC"
            | b"UI"
            | b"UR"
            | b"UT"
    )
}

/// A value for `vr`: mostly a few bytes, sometimes large (past the 16 KiB
/// read at once, past the 64 KiB kept of one value).
fn value_for(input: &mut Input, vr: &[u8; 2]) -> Vec<u8> {
    let size = input.below(32);
    if size >= 30 {
        let len = if size == 30 {
            16 * 1024 + input.below(4096)
        } else {
            0xFFF0 + input.below(64)
        };
        let fill = input.byte();
        let mut value = vec![fill; len];
        // Sometimes an item tag at its start: a value that looks like a
        // sequence.
        if input.chance(64) {
            value[..4].copy_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        }
        return value;
    }
    if is_text(vr) && size < 26 {
        return text_value(input, vr);
    }
    let count = input.below(9);
    let mut value = input.bytes(count * unit(vr));
    if size == 29 && !value.is_empty() {
        // Not a whole number of values.
        value.pop();
    }
    if size == 28 {
        // An item tag first, then something: what implicit VR readers
        // take for a sequence.
        let mut looks = vec![0xFE, 0xFF, 0x00, 0xE0];
        let n = 4 + 2 * input.below(6);
        looks.extend(input.bytes(n));
        value = looks;
    }
    value
}

/// What the generator has left to spend, so that files stay small.
struct Budget {
    nodes: usize,
}

fn gen_value_node(input: &mut Input, ctx: Ctx) -> Node {
    let (tag, mut vr) = if input.chance(32) {
        let tag = (input.u16(), input.u16());
        (tag, *input.pick(&VRS))
    } else {
        let (g, e, vr) = input.pick(&VALUE_TAGS);
        ((g, e), *vr)
    };
    if ctx.explicit && input.chance(24) {
        vr = if input.chance(96) {
            *input.pick(&NONSTANDARD_VRS)
        } else {
            *input.pick(&VRS)
        };
    }
    if vr == *b"SQ" {
        vr = *b"UN";
    }
    let value = value_for(input, &vr);
    Node::Value { tag, vr, value }
}

fn gen_sequence(input: &mut Input, ctx: Ctx, depth: usize, budget: &mut Budget) -> Node {
    let tag = if input.chance(16) {
        (input.u16(), input.u16())
    } else {
        input.pick(&SEQUENCE_TAGS)
    };
    let undefined = input.chance(128);
    let vr = match input.below(16) {
        0..=9 => *b"SQ",
        10..=12 => *b"UN",
        13 => *b"OB",
        14 => *b"UT",
        _ => *input.pick(&NONSTANDARD_VRS),
    };
    let inner = if ctx.explicit && undefined && vr == *b"UN" {
        Ctx::IMPLICIT_LE
    } else {
        ctx
    };
    let count = input.below(4);
    let mut items = Vec::new();
    for _ in 0..count {
        let undefined = input.chance(128);
        let nodes = gen_nodes(input, inner, depth + 1, budget, 6);
        let delimiter = !input.chance(8);
        let mut item = Item {
            undefined,
            nodes,
            delimiter,
        };
        if input.chance(6) {
            // A stray delimiter inside an item.
            let mut out = Out::default();
            let which = if input.chance(128) {
                ITEM_END
            } else {
                SEQUENCE_END
            };
            header(&mut out, inner, which, b"  ", 0);
            item.nodes.push(Node::Raw(out.bytes));
        }
        items.push(item);
    }
    Node::Sequence {
        tag,
        vr,
        undefined,
        items,
        delimiter: !input.chance(8),
    }
}

/// Encapsulated data: a basic offset table, fragments, a delimiter.
fn gen_fragments(input: &mut Input, tag: (u16, u16), vr: [u8; 2]) -> Node {
    let mut fragments = Vec::new();
    let table = input.below(3) * 4;
    fragments.push(input.bytes(table));
    for _ in 0..input.below(4) {
        let len = input.below(16) * 2;
        fragments.push(input.bytes(len));
    }
    Node::Fragments {
        tag,
        vr,
        fragments,
        delimiter: !input.chance(8),
    }
}

fn gen_nodes(
    input: &mut Input,
    ctx: Ctx,
    depth: usize,
    budget: &mut Budget,
    most: usize,
) -> Vec<Node> {
    let count = input.below(most + 1);
    let mut nodes = Vec::new();
    for _ in 0..count {
        if budget.nodes == 0 {
            break;
        }
        budget.nodes -= 1;
        let node = match input.below(32) {
            0..=21 => gen_value_node(input, ctx),
            22..=27 if depth < 5 => gen_sequence(input, ctx, depth, budget),
            28 => {
                // A private or unusual tag of undefined length holding
                // fragments (OB/OW), or a data set (a sequence mislabelled).
                let tag = input.pick(&[(0x0009, 0x1011), (0x0029, 0x1010), (0x6000, 0x3000)]);
                let vr = if input.chance(128) { *b"OB" } else { *b"OW" };
                if ctx.explicit && input.chance(128) {
                    gen_fragments(input, tag, vr)
                } else {
                    let count = input.below(3);
                    let items = (0..count)
                        .map(|_| Item {
                            undefined: input.chance(128),
                            nodes: gen_nodes(input, ctx, depth + 1, budget, 4),
                            delimiter: true,
                        })
                        .collect();
                    Node::Sequence {
                        tag,
                        vr,
                        undefined: true,
                        items,
                        delimiter: true,
                    }
                }
            }
            29 => {
                // Bytes of the fuzzer's choosing where an element should be.
                let n = 1 + input.below(16);
                Node::Raw(input.bytes(n))
            }
            _ => gen_value_node(input, ctx),
        };
        nodes.push(node);
    }
    // Tags in order, mostly.
    if !input.chance(24) {
        nodes.sort_by_key(Node::tag);
    }
    nodes
}

/// The pixel data and what may follow it at the top level.
fn gen_image_data(input: &mut Input, ctx: Ctx, nodes: &mut Vec<Node>) {
    match input.below(8) {
        0..=2 => {}
        3 | 4 => {
            let vr = input.pick(&[*b"OW", *b"OB"]);
            let len = input.below(33) * 2;
            nodes.push(Node::Value {
                tag: (0x7FE0, 0x0010),
                vr,
                value: input.bytes(len),
            });
        }
        5 | 6 => nodes.push(gen_fragments(input, (0x7FE0, 0x0010), *b"OB")),
        _ => {
            let len = input.below(9) * 4;
            nodes.push(Node::Value {
                tag: (0x7FE0, 0x0008),
                vr: *b"OF",
                value: input.bytes(len),
            });
        }
    }
    if input.chance(48) {
        let len = input.below(8) * 2;
        nodes.push(Node::Value {
            tag: (0xFFFC, 0xFFFC),
            vr: *b"OB",
            value: vec![0; len],
        });
    }
    if input.chance(24) {
        let n = 1 + input.below(12);
        nodes.push(Node::Raw(input.bytes(n)));
    }
    let _ = ctx;
}

/// A mutation of serialised bytes `out`, guided by its marks.
fn mutate(input: &mut Input, out: &mut Out) {
    if out.bytes.is_empty() {
        return;
    }
    let mark = |input: &mut Input, out: &Out, want: fn(&Mark) -> bool| -> Option<Mark> {
        let candidates: Vec<Mark> = out.marks.iter().copied().filter(want).collect();
        (!candidates.is_empty()).then(|| candidates[input.below(candidates.len())])
    };
    let len = out.bytes.len();
    match input.below(8) {
        0 => {
            // Cut at an element, or anywhere.
            let at = match mark(input, out, |m| matches!(m, Mark::Element(_))) {
                Some(m) if input.chance(192) => m.at() + input.below(13),
                _ => input.below(len + 1),
            };
            out.bytes.truncate(at.min(len));
            out.marks.retain(|m| m.at() < out.bytes.len());
        }
        1 | 2 => {
            // A length changed.
            if let Some(Mark::Length(at, width, big)) =
                mark(input, out, |m| matches!(m, Mark::Length(..)))
            {
                let old = read_len(&out.bytes, at, width, big);
                let new = match input.below(8) {
                    0 => 0,
                    1 => old.wrapping_add(1),
                    2 => old.wrapping_sub(1),
                    3 => old.wrapping_add(2 + 2 * input.below(8) as u32),
                    4 => old.wrapping_sub(2 + 2 * input.below(8) as u32),
                    5 => UNDEFINED,
                    6 => 0xFFFF_FFF0,
                    _ => input.u32(),
                };
                write_len(&mut out.bytes, at, width, big, new);
            }
        }
        3 => {
            // A VR changed (its length field keeps its size).
            if let Some(m) = mark(input, out, |m| matches!(m, Mark::Vr(_))) {
                let vr = if input.chance(64) {
                    *input.pick(&NONSTANDARD_VRS)
                } else {
                    *input.pick(&VRS)
                };
                let at = m.at();
                if at + 2 <= out.bytes.len() {
                    out.bytes[at..at + 2].copy_from_slice(&vr);
                }
            }
        }
        4 => {
            // A tag changed: to an item or delimiter tag, or any.
            if let Some(m) = mark(input, out, |m| matches!(m, Mark::Element(_))) {
                let at = m.at();
                let tag: [u8; 4] = match input.below(4) {
                    0 => [0xFE, 0xFF, 0x00, 0xE0],
                    1 => [0xFE, 0xFF, 0x0D, 0xE0],
                    2 => [0xFE, 0xFF, 0xDD, 0xE0],
                    _ => input.u32().to_le_bytes(),
                };
                if at + 4 <= out.bytes.len() {
                    out.bytes[at..at + 4].copy_from_slice(&tag);
                }
            }
        }
        5 | 6 => {
            // Bytes inserted at an element: a delimiter, an item header,
            // an element header of undefined length, or garbage.
            let at = mark(input, out, |m| matches!(m, Mark::Element(_)))
                .map_or(input.below(len + 1), Mark::at)
                .min(len);
            let inserted: Vec<u8> = match input.below(5) {
                0 => vec![0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0],
                1 => vec![0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0],
                2 => vec![0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF],
                3 => {
                    let mut h = vec![0x09, 0x00, 0x30, 0x10];
                    h.extend(input.pick(&[*b"UN", *b"SQ", *b"OB", *b"UT"]));
                    h.extend([0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
                    h
                }
                _ => {
                    let n = 1 + input.below(16);
                    input.bytes(n)
                }
            };
            let n = inserted.len() as isize;
            out.bytes.splice(at..at, inserted);
            out.marks = out
                .marks
                .iter()
                .map(|m| if m.at() >= at { m.moved(n) } else { *m })
                .collect();
        }
        _ => {
            // Bytes removed: from one element to another, or a few.
            let from = mark(input, out, |m| matches!(m, Mark::Element(_)))
                .map_or(input.below(len), Mark::at)
                .min(len);
            let to = if input.chance(128) {
                mark(input, out, |m| matches!(m, Mark::Element(_)))
                    .map_or(len, Mark::at)
                    .clamp(from, len)
            } else {
                (from + 1 + input.below(8)).min(len)
            };
            out.bytes.drain(from..to);
            let n = (to - from) as isize;
            out.marks = out
                .marks
                .iter()
                .filter(|m| m.at() < from || m.at() >= to)
                .map(|m| if m.at() >= to { m.moved(-n) } else { *m })
                .collect();
        }
    }
}

fn read_len(bytes: &[u8], at: usize, width: u8, big: bool) -> u32 {
    match (width, bytes.get(at..at + usize::from(width))) {
        (2, Some(b)) => u32::from(if big {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        }),
        (4, Some(b)) => {
            let b = [b[0], b[1], b[2], b[3]];
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        }
        _ => 0,
    }
}

fn write_len(bytes: &mut [u8], at: usize, width: u8, big: bool, value: u32) {
    let Some(slot) = bytes.get_mut(at..at + usize::from(width)) else {
        return;
    };
    match (width, big) {
        (2, false) => slot.copy_from_slice(&(value as u16).to_le_bytes()),
        (2, true) => slot.copy_from_slice(&(value as u16).to_be_bytes()),
        (_, false) => slot.copy_from_slice(&value.to_le_bytes()),
        (_, true) => slot.copy_from_slice(&value.to_be_bytes()),
    }
}

/// The file meta group: what it names, and its bytes.
fn gen_meta(input: &mut Input, encoding: DataEncoding) -> Out {
    let right = match encoding {
        DataEncoding::ExplicitLe => {
            if input.chance(48) {
                input.pick(&COMPRESSED)
            } else {
                EXPLICIT_LE
            }
        }
        DataEncoding::ExplicitBe => EXPLICIT_BE,
        DataEncoding::ImplicitLe => IMPLICIT_LE,
        DataEncoding::Deflated => DEFLATED,
    };
    let transfer_syntax: Option<Vec<u8>> = match input.below(16) {
        0..=10 => Some(right.as_bytes().to_vec()),
        11 => None,
        12 => {
            // Garbled.
            let n = input.below(24);
            Some(input.bytes(n))
        }
        _ => Some(
            input
                .pick(&[
                    IMPLICIT_LE,
                    EXPLICIT_LE,
                    EXPLICIT_BE,
                    DEFLATED,
                    COMPRESSED[0],
                ])
                .as_bytes()
                .to_vec(),
        ),
    };
    let ctx = Ctx {
        explicit: true,
        big: false,
    };
    let mut elements = Out::default();
    let ui = |out: &mut Out, element: u16, value: &[u8], pad: bool| {
        let mut value = value.to_vec();
        if pad && value.len() % 2 == 1 {
            value.push(0);
        }
        header(out, ctx, (0x0002, element), b"UI", value.len() as u32);
        out.bytes.extend(value);
    };
    header(&mut elements, ctx, (0x0002, 0x0001), b"OB", 2);
    elements.bytes.extend([0, 1]);
    ui(&mut elements, 0x0002, b"1.2.840.10008.5.1.4.1.1.4", true);
    ui(&mut elements, 0x0003, b"1.2.3.4.5.6", true);
    if let Some(ts) = &transfer_syntax {
        let pad = !input.chance(32);
        ui(&mut elements, 0x0010, ts, pad);
    }
    ui(&mut elements, 0x0012, b"1.2.276.0.7230010.3.0.3.6.7", true);
    if input.chance(48) {
        header(&mut elements, ctx, (0x0002, 0x0013), b"SH", 6);
        elements.bytes.extend(b"RXFUZZ");
    }
    let mut out = Out::default();
    match input.below(8) {
        0 => {}
        1 => {
            header(&mut out, ctx, (0x0002, 0x0000), b"UL", 4);
            let wrong = elements.bytes.len() as u32 ^ (1 + input.u16() as u32);
            out.bytes.extend(wrong.to_le_bytes());
        }
        _ => {
            header(&mut out, ctx, (0x0002, 0x0000), b"UL", 4);
            out.bytes
                .extend((elements.bytes.len() as u32).to_le_bytes());
        }
    }
    out.append(elements);
    out
}

/// Builds a DICOM file from fuzz bytes.
pub fn generate(data: &[u8]) -> Generated {
    let input = &mut Input::new(data);
    let framing = match input.below(16) {
        0..=10 => Framing::Preamble,
        11 | 12 => Framing::NoPreamble,
        13 => Framing::NoMetaGroup,
        _ => Framing::Bare,
    };
    let encoding = match input.below(16) {
        0..=5 => DataEncoding::ExplicitLe,
        6 | 7 => DataEncoding::ExplicitBe,
        8..=12 => DataEncoding::ImplicitLe,
        _ => DataEncoding::Deflated,
    };
    let ctx = Ctx {
        explicit: encoding != DataEncoding::ImplicitLe,
        big: encoding == DataEncoding::ExplicitBe,
    };
    let mut meta = match framing {
        Framing::Preamble | Framing::NoPreamble => gen_meta(input, encoding),
        _ => Out::default(),
    };
    let budget = &mut Budget { nodes: 160 };
    let mut nodes = gen_nodes(input, ctx, 0, budget, 24);
    gen_image_data(input, ctx, &mut nodes);
    let mut data_set = Out::default();
    for node in &nodes {
        node.write(&mut data_set, ctx);
    }
    let mutations = match input.below(8) {
        0..=3 => 0,
        4 | 5 => 1,
        6 => 2,
        _ => 3,
    };
    for _ in 0..mutations {
        if !meta.bytes.is_empty() && input.chance(32) {
            mutate(input, &mut meta);
        } else {
            mutate(input, &mut data_set);
        }
    }
    let mut bytes = Vec::new();
    match framing {
        Framing::Preamble | Framing::NoMetaGroup => {
            let mut preamble = [0u8; 128];
            if input.chance(32) {
                preamble[..4].copy_from_slice(b"II*\0");
            }
            bytes.extend(preamble);
            bytes.extend(b"DICM");
        }
        Framing::NoPreamble => bytes.extend(b"DICM"),
        Framing::Bare => {}
    }
    bytes.extend(&meta.bytes);
    if encoding == DataEncoding::Deflated && framing != Framing::Bare {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder
            .write_all(&data_set.bytes)
            .expect("writing to a Vec");
        let deflated = encoder.finish().expect("writing to a Vec");
        bytes.extend(deflated);
        if input.chance(32) {
            // Bytes after the deflate stream, which zlib and pydicom ignore.
            let n = 1 + input.below(4);
            bytes.extend(input.bytes(n));
        }
    } else {
        bytes.extend(&data_set.bytes);
    }
    if input.chance(16) {
        // The whole file cut somewhere (in a deflate stream, say).
        let at = input.below(bytes.len() + 1);
        bytes.truncate(at);
    }
    if input.chance(16) && !bytes.is_empty() {
        // A byte changed anywhere (in a deflate stream, say).
        let at = input.below(bytes.len());
        bytes[at] ^= 1 + input.byte() % 255;
    }
    Generated {
        bytes,
        framing,
        encoding,
        mutations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_gives_a_file() {
        let file = generate(&[]);
        assert_eq!(file.framing, Framing::Preamble);
        assert!(file.has_preamble());
    }
}
