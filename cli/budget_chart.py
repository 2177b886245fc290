"""The budget chart (`disburse budget --chart FILE.svg|FILE.png`): per year, the budget against
what is paid, committed (by the support year it draws on) and forecast (the unpaid tranches by the
year they fall due). matplotlib is imported here only, with the Agg backend (no display)."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

WAN = Decimal(10000)            # amounts shown in 万元


def series(rows: list[dict]) -> dict[int, dict[str, Decimal]]:
    """year -> budget, paid, committed (lines of that support year), forecast (tranches due that year)."""
    out: dict[int, dict[str, Decimal]] = {}

    def at(year: int) -> dict[str, Decimal]:
        return out.setdefault(year, {k: Decimal(0) for k in ("budget", "paid", "committed", "forecast")})
    for r in rows:
        y = at(r["year"])
        y["budget"] += r["budget"]
        y["paid"] += r["paid"]
        y["committed"] += r["committed"]
        for due_year, amount in r["forecast"].items():
            at(due_year)["forecast"] += amount
    return dict(sorted(out.items()))


def draw(rows: list[dict], path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    data = series(rows)
    years = list(data)
    fig = Figure(figsize=(max(6.0, 1.6 * len(years) + 2), 4.5))
    ax = fig.subplots()
    x = list(range(len(years)))
    width = 0.38

    def col(key: str) -> list[float]:
        return [float(data[y][key] / WAN) for y in years]      # drawing only: the figures stay Decimal
    paid, committed = col("paid"), col("committed")
    ax.bar([i - width / 2 for i in x], paid, width, label="paid", color="#2e7d32")
    ax.bar([i - width / 2 for i in x], committed, width, bottom=paid, label="committed", color="#81c784")
    ax.bar([i + width / 2 for i in x], col("forecast"), width, label="forecast (tranches due)", color="#ffb74d")
    budget = col("budget")
    has = [i for i in x if budget[i] > 0]                     # a year with tranches due but no line: no budget mark
    ax.hlines([budget[i] for i in has], [i - 0.45 for i in has], [i + 0.45 for i in has], colors="#c62828",
              linewidth=2.5, label="budget", zorder=3)
    top = max([*budget, *[p + c for p, c in zip(paid, committed)], *col("forecast"), 1.0])
    ax.set_ylim(0, top * 1.3)                                 # room above the highest figure for the legend
    ax.set_xlim(-0.6, len(years) - 0.4)
    ax.set_xticks(x, [str(y) for y in years])
    ax.set_ylabel("10,000 yuan")
    ax.set_title("Budget lines: paid, committed and forecast per year")
    ax.legend(loc="upper left", fontsize="small", ncols=4)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with matplotlib.rc_context({"svg.fonttype": "none"}):     # SVG text stays text (searchable, accessible)
        fig.savefig(path, format=path.suffix.lower().lstrip("."),
                    metadata=None if path.suffix.lower() == ".png" else {"Date": None})
    return path
