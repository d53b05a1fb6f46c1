"""What the run records for the proof, and what the capture step is told about preprocessing.

The analysis (`analysis.preprocess`) decides which expressions of which cells to record; this
module turns that into run-notebook edits (cell sources with recorder calls spliced in, on the
same lines, and the recorder definitions run before the first edited cell) and into the
`preprocessing` part of the capture step's config.
"""

from __future__ import annotations

from typing import Any

from nb2prod.analysis.preprocess import PreprocessModule
from nb2prod.analysis.splice import Edit, apply_edits
from nb2prod.notebook.spec import NotebookSpec
from nb2prod.run.execute import CellEdits

RECORDER_MODULES = ("common", "record")


def recording_edits(spec: NotebookSpec, module: PreprocessModule) -> CellEdits:
    """Edited sources of the cells the analysis records in, and what runs before them."""
    from nb2prod.run.capture import kernel_source

    edits = {index: list(found) for index, found in module.run_edits.items() if found}
    replay = module.replay
    snapshot_at = replay.snapshot_before if replay is not None and replay.raw else None
    offset = replay.snapshot_offset if replay is not None and snapshot_at is not None else None
    inside = offset is not None and snapshot_at is not None
    if offset is not None and snapshot_at is not None:  # right after the read, in its cell (`analysis.read_tail`)
        snapshot = f"; _nb2prod_snapshot({replay.raw!r}, globals())"  # type: ignore[union-attr]
        edits.setdefault(snapshot_at, []).append(Edit(offset, offset, snapshot))
    if not edits and snapshot_at is None:
        return CellEdits()
    sources = {index: apply_edits(spec.cells[index].source, found) for index, found in edits.items()}
    # the recorders run before the first cell that calls one, the snapshot included: the raw
    # frame's first replayed cell may need no recording (`df.drop(..., inplace=True)`)
    first = min([*sources, *([snapshot_at] if snapshot_at is not None else [])])
    setup = "# nb2prod: records training values and the fit input for the proof; not part of your notebook.\n"
    before = {first: setup + kernel_source(RECORDER_MODULES)}
    if replay is not None and snapshot_at is not None and not inside:
        snapshot = f"_nb2prod_snapshot({replay.raw!r}, globals())\n"
        before[snapshot_at] = before.get(snapshot_at, "# nb2prod: keeps a copy of the raw frame for the proof.\n")
        before[snapshot_at] += snapshot
    return CellEdits(sources=sources, before=before)


def preprocessing_config(module: PreprocessModule) -> dict[str, Any]:
    """The capture step's view of preprocessing: the module to ship, what to freeze, the chains."""
    replay = module.replay
    fits = module.fits
    return {
        "module": module.source,
        "frozen": [[f.key, f.what] for f in replay.frozen] if replay else [],
        "generates_function": module.generates_preprocess,
        "raw": replay.raw if replay else None,
        "label_columns": sorted(fits.label_columns) if fits else [],
        "chains": {
            chain.receiver: {
                "transformers": list(chain.transformers),
                "function": chain.function,
                "start": chain.start,
                "features": chain.features,
            }
            for chain in (fits.chains if fits else ())
        },
    }
