"""benches/listen.sh's report: hyperfine's results as a Markdown table
(printed) and as a bar chart (an SVG file).

Usage: listen_report.py ONE.json FOUR.json FOUR_BYTES FILESYSTEM OUT.svg
ONE.json: one sender, contenders a-f; FOUR.json: four senders at once,
contenders c-f; FOUR_BYTES: the bytes the four sent.
"""

import json
import sys
from html import escape

NAMES = {
    "a": "storescp --ignore (the sender's floor)",
    "b": "storescp writing the files",
    "c": "storescp --fork -xcr rx-repack --cleanup (until all placed)",
    "d": "rx-listen --fsync never",
    "e": "rx-listen --fsync always",
    "f": "rx-listen --fsync always, series events to a hook and NDJSON",
}
ONE_SENDER = 192
FOUR_SENDERS = 4 * ONE_SENDER


def results(path):
    return {r["command"]: r for r in json.load(open(path))["results"]}


def bars(title, unit, rows, top, width=760, row_height=26):
    """One chart: a title, then a labelled bar per (label, value) row,
    scaled to the largest value. Returns the SVG elements and the height
    they take below `top`."""
    label_width, value_width = 400, 90
    scale = (width - label_width - value_width) / max(value for _, value in rows)
    out = [f'<text x="0" y="{top + 16}" font-weight="bold">{escape(title)}</text>']
    y = top + 28
    for label, value in rows:
        length = value * scale
        colour = "#2b6cb0" if label.startswith("rx-listen") else "#a0aec0"
        out.append(f'<text x="0" y="{y + 16}">{escape(label)}</text>')
        out.append(
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" '
            f'height="{row_height - 8}" fill="{colour}"/>'
        )
        out.append(
            f'<text x="{label_width + length + 6:.1f}" y="{y + 16}">'
            f"{value:.3g} {unit}</text>"
        )
        y += row_height
    return out, y - top


def main():
    one, four = results(sys.argv[1]), results(sys.argv[2])
    four_bytes, filesystem, svg_path = int(sys.argv[3]), sys.argv[4], sys.argv[5]
    median = {k: r["median"] for k, r in one.items()}

    print(f"storescu sending {ONE_SENDER} SAG-anon instances on one association, "
          f"loopback; files on {filesystem}.\n")
    print("| | receiver | median | runs |")
    print("|---|---|---:|---:|")
    for key, name in NAMES.items():
        print(f"| ({key}) | {name} | {median[key]:.3f} s | {len(one[key]['times'])} |")
    print()
    print(f"rx-listen (d) / the sender's floor (a): {median['d'] / median['a']:.2f}x; "
          f"(d) / storescp writing (b): {median['d'] / median['b']:.2f}x; "
          f"(d) / storescp + rx-repack (c): {median['d'] / median['c']:.2f}x; "
          f"--fsync always costs {(median['e'] - median['d']) / ONE_SENDER * 1e3:.2f} ms "
          "per instance; series events with a hook (f) / without (e): "
          f"{median['f'] / median['e']:.2f}x")
    print()
    print(f"No receiver can be faster than the sender's floor: (a) / (c) is "
          f"{median['a'] / median['c']:.2f}x, the best (d) / (c) could be in this run.")
    print()
    print(f"Four storescu at once, {FOUR_SENDERS} instances "
          f"({four_bytes / 1e6:.0f} MB) under four studies:\n")
    print("| | receiver | median | instances/s | MB/s | runs |")
    print("|---|---|---:|---:|---:|---:|")
    throughput = {}
    for key in "cdef":
        seconds = four[key]["median"]
        throughput[key] = FOUR_SENDERS / seconds
        print(f"| ({key}) | {NAMES[key]} | {seconds:.3f} s | {throughput[key]:.0f} | "
              f"{four_bytes / 1e6 / seconds:.0f} | {len(four[key]['times'])} |")
    print(f"\nSeries events with a hook (f) / without (e), four senders: "
          f"{four['f']['median'] / four['e']['median']:.2f}x")

    short = {
        "a": "storescp --ignore (floor)",
        "b": "storescp writing files",
        "c": "storescp + rx-repack per file",
        "d": "rx-listen --fsync never",
        "e": "rx-listen --fsync always",
        "f": "rx-listen, events and a hook",
    }
    first, first_height = bars(
        f"One sender, {ONE_SENDER} instances, files on {filesystem}: seconds (shorter is better)",
        "s", [(short[k], median[k]) for k in NAMES], 0)
    second, second_height = bars(
        "Four senders at once: instances per second (longer is better)",
        "/s", [(short[k], throughput[k]) for k in "cdef"], first_height + 20)
    height = first_height + 20 + second_height + 10
    with open(svg_path, "w") as svg:
        svg.write(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="800" height="{height}" '
            'font-family="sans-serif" font-size="13">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(first + second) + "\n</svg>\n"
        )


if __name__ == "__main__":
    main()
