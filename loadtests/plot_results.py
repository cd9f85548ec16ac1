#!/usr/bin/env python3
"""Draws loadtests/results-17.svg from the figures of RESULTS.md section 13:
req/s and p99 against VUs. Standard library only (no plotting package on
the bench machine). Run from the repository root: python3 loadtests/plot_results.py"""

VUS = [1, 4, 50]
# name: (colour, dashed, req/s by VUs, p99 ms by VUs), RESULTS.md section 13.
SERIES = {
    "feed, posts cached": ("#888", False, [297.3, 560.3, 688.5], [6.15, 16.22, 165.52]),
    "feed, ids cached too (warm)": ("#1f6fd1", False, [814.3, 1567.9, 1549.8], [3.13, 6.00, 76.14]),
    "constant 12 KB (ceiling)": ("#1f6fd1", True, [1404.1, 2600.6, 2517.9], [1.94, 4.33, 50.91]),
    "microblog feed, posts cached": ("#e8a07f", False, [22.3, 34.5, 34.2], [66.5, 201.6, 1815.5]),
    "microblog feed, candidates and likers cached": ("#d1541f", False, [52.2, 98.5, 95.6], [25.2, 74.6, 694.8]),
    "constant 358 KB (ceiling)": ("#d1541f", True, [149.2, 214.5, 241.2], [9.47, 37.8, 575.4]),
}
W, H, PAD = 420, 300, 50


def panel(x0, title, values, top, unit):
    out = [f'<text x="{x0 + W / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>']
    out.append(f'<line x1="{x0 + PAD}" y1="{H - PAD}" x2="{x0 + W - 10}" y2="{H - PAD}" stroke="black"/>')
    out.append(f'<line x1="{x0 + PAD}" y1="{H - PAD}" x2="{x0 + PAD}" y2="30" stroke="black"/>')
    xs = [x0 + PAD + 20 + i * (W - PAD - 50) / (len(VUS) - 1) for i in range(len(VUS))]
    for x, v in zip(xs, VUS):
        out.append(f'<text x="{x}" y="{H - PAD + 16}" text-anchor="middle" font-size="11">{v}</text>')
    out.append(f'<text x="{x0 + W / 2}" y="{H - PAD + 32}" text-anchor="middle" font-size="11">virtual users</text>')
    for i in range(5):
        v = top * i / 4
        y = H - PAD - (H - PAD - 30) * i / 4
        out.append(f'<text x="{x0 + PAD - 4}" y="{y + 4}" text-anchor="end" font-size="10">{v:g}</text>')
        out.append(f'<line x1="{x0 + PAD}" y1="{y}" x2="{x0 + W - 10}" y2="{y}" stroke="#eee"/>')
    out.append(f'<text x="{x0 + 12}" y="{H / 2}" font-size="11" transform="rotate(-90 {x0 + 12} {H / 2})" text-anchor="middle">{unit}</text>')
    for colour, dashed, ys in values:
        pts = " ".join(f"{x:.1f},{H - PAD - (H - PAD - 30) * min(y, top) / top:.1f}" for x, y in zip(xs, ys))
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
    return out


def main():
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H + 110}" font-family="sans-serif">',
             '<rect width="100%" height="100%" fill="white"/>']
    parts += panel(0, "req/s against VUs", [(c, d, r) for c, d, r, _ in SERIES.values()], 2800, "req/s")
    parts += panel(W, "p99 against VUs (capped at 400 ms)", [(c, d, p) for c, d, _, p in SERIES.values()], 400, "p99, ms")
    for i, (name, (colour, dashed, _, _)) in enumerate(SERIES.items()):
        y = H + 10 + i * 18
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        parts.append(f'<line x1="60" y1="{y}" x2="95" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/>')
        parts.append(f'<text x="102" y="{y + 4}" font-size="11">{name}</text>')
    parts.append("</svg>")
    with open("loadtests/results-17.svg", "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
