"""What generate_base_grid reports: per community, cells outside the target with reasons, notes; text or JSON.

Reasons and notes are `Message`s (catalogue keys under `generate.`), rendered in the reader's
language by `text(lang)` and `as_dict(lang)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gridkit.messages import Message, render


@dataclass
class CellProblem:
    """A generated cell left outside the target, with the reason."""

    code: str
    status: str
    reason: Message
    buildings: int
    area_m2: float


@dataclass
class CellNote:
    """A note on one generated cell: it straddles a major road, or it stays elongated, and why."""

    code: str
    note: Message


@dataclass
class CommunityReport:
    """What generation did in one community."""

    code: str
    name: str
    epsg: int
    faces: int
    cells: int
    in_target: int
    water_cells: int
    buildings: int
    area_m2: float
    tiling_error_m2: float
    seconds: float
    outside: list[CellProblem] = field(default_factory=list)
    notes: list[Message] = field(default_factory=list)
    cell_notes: list[CellNote] = field(default_factory=list)
    carriageways: int = 0
    min_compactness: float = 1.0
    counts: dict[str, int] = field(default_factory=dict)  # buildings per cell code, by the building rule


@dataclass
class GenerationReport:
    """The result of generate_base_grid: the draft edition, per-community counts and timings."""

    edition: str
    edition_id: int
    target: Message
    communities: list[CommunityReport]
    copied_cells: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    preview: str | None = None  # path of the preview written, if asked

    @property
    def cells(self) -> int:
        """Return the number of generated cells."""
        return sum(c.cells for c in self.communities)

    @property
    def in_target(self) -> int:
        """Return the number of generated cells within the target."""
        return sum(c.in_target for c in self.communities)

    def as_dict(self, lang: str = "en") -> dict:
        """Return the report as plain JSON-ready data, messages rendered in `lang` (keys kept)."""

        def message(m: Message) -> dict:
            return {"key": m.key, "text": m.render(lang)}

        communities = []
        for c in self.communities:
            data = {k: v for k, v in vars(c).items() if k not in ("outside", "notes", "cell_notes")}
            data["outside"] = [{**vars(p), "reason": message(p.reason)} for p in c.outside]
            data["notes"] = [message(n) for n in c.notes]
            data["cell_notes"] = [{"code": n.code, "note": message(n.note)} for n in c.cell_notes]
            communities.append(data)
        return {
            "edition": self.edition,
            "edition_id": self.edition_id,
            "target": self.target.render(lang),
            "communities": communities,
            "copied_cells": self.copied_cells,
            "timings": self.timings,
            "cells": self.cells,
            "in_target": self.in_target,
            "preview": self.preview,
        }

    def text(self, lang: str | None = None) -> str:
        """Return the report as readable lines for the CLI, in `lang` (default zh-CN)."""
        lines = [
            render(
                "generate.report.summary",
                lang,
                edition=self.edition,
                cells=self.cells,
                communities=len(self.communities),
                in_target=self.in_target,
                target=self.target,
            )
        ]
        if self.copied_cells:
            lines.append(render("generate.report.copied", lang, cells=self.copied_cells))
        for c in self.communities:
            lines.append(
                "  "
                + render(
                    "generate.report.community",
                    lang,
                    code=c.code,
                    name=c.name,
                    faces=c.faces,
                    cells=c.cells,
                    in_target=c.in_target,
                    water=c.water_cells,
                    buildings=c.buildings,
                    area=c.area_m2,
                    epsg=c.epsg,
                    seconds=c.seconds,
                    carriageways=c.carriageways,
                    compactness=c.min_compactness,
                )
            )
            for note in c.notes:
                lines.append("    " + render("generate.report.note", lang, note=note))
            for p in c.outside:
                lines.append(
                    "    "
                    + render(
                        "generate.report.outside",
                        lang,
                        code=p.code,
                        reason=p.reason,
                        buildings=p.buildings,
                        area=p.area_m2,
                    )
                )
            for n in c.cell_notes:
                lines.append("    " + render("generate.report.cell_note", lang, code=n.code, note=n.note))
        if self.preview:
            lines.append(render("generate.report.preview", lang, path=self.preview))
        timings = render("generate.report.timing_separator", lang).join(
            render("generate.report.timing", lang, step=render(f"generate.step.{k}", lang), seconds=v)
            for k, v in self.timings.items()
        )
        lines.append(render("generate.report.timings", lang, timings=timings))
        return "\n".join(lines)
