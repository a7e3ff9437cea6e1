"""Per-well work (registration, stitching) run over a worker pool; one well's failure is
recorded with its error and never stops the others. No Dagster here: the assets call it."""

from __future__ import annotations

import resource
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import threadpoolctl

from imaging_assets.science import omezarr
from imaging_assets.science.qc import focus_score, intensity_stats
from imaging_assets.science.registration import (
    RegistrationParams,
    StepEstimate,
    neighbour_pairs,
    register_tiles,
    wide_pair_offset,
)
from imaging_assets.science.stitch import stitch
from imaging_assets.science.tiles import TileHeader, read_tile
from platform_core.confine import Opener, open_as_named
from platform_core.pool import map_in_pool


@dataclass(frozen=True)
class WellTiles:
    """Everything a worker needs for one well. ``tiles``: rows of the plate manifest
    (site, channel, z, grid_row, grid_col, path) for this well; ``opener``: how its tiles
    are opened (a dropped plate's ``InputFolder.open``: picklable, confined in the worker)."""

    well: str
    row: str
    column: int
    tiles: list[dict[str, Any]]
    header: TileHeader
    opener: Opener = open_as_named

    def sites(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.tiles)
        return (
            frame.drop_duplicates("site")[["site", "grid_row", "grid_col"]]
            .sort_values("site")
            .reset_index(drop=True)
        )

    def planes(self) -> tuple[list[int], list[int]]:
        frame = pd.DataFrame(self.tiles)
        return sorted(frame["channel"].unique()), sorted(frame["z"].unique())

    def read(self, path: str) -> np.ndarray:
        """One tile's pixels (checked against the plate's header)."""
        return read_tile(path, self.header, self.opener)

    def stack(self, site: int, channels: list[int], zs: list[int]) -> np.ndarray:
        """(channels, z, H, W) pixels of one site."""
        paths = {(t["channel"], t["z"]): t["path"] for t in self.tiles if t["site"] == site}
        return np.stack([np.stack([self.read(paths[(c, z)]) for z in zs]) for c in channels])


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _guarded(function: Callable[..., dict], well: str, *args: Any) -> dict:
    started = time.perf_counter()
    try:
        result = function(*args)
        result["error"] = ""
    except Exception as exc:  # one bad well must not lose the others: record and go on
        last = traceback.extract_tb(exc.__traceback__)[-1]
        result = {
            "error": f"{type(exc).__name__}: {exc} (at {Path(last.filename).name}:{last.lineno})"
        }
    result.update(well=well, seconds=time.perf_counter() - started, peak_mb=peak_memory_mb())
    return result


def registration_images(well: WellTiles, channel: int) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """The well's sites and, per site, ``channel`` as a maximum projection over z."""
    sites = well.sites()
    _, zs = well.planes()
    return sites, [well.stack(site, [channel], zs)[0].max(axis=0) for site in sites["site"]]


def survey_well(well: WellTiles, params: RegistrationParams, channel: int) -> dict:
    """What the plate's step and flat field are estimated from: the wide-window offset of
    every neighbour pair (direction, dy, dx, NCC) and the per-pixel median of the tiles."""
    sites, images = registration_images(well, channel)
    offsets = [
        (direction, *wide_pair_offset(images[a], images[b], direction, params))
        for a, b, direction in neighbour_pairs(sites)
    ]
    median = np.median(np.stack(images).astype(np.float32), axis=0)
    return {"offsets": offsets, "median": median}


def channel_medians(well: WellTiles) -> dict:
    """Per channel, the per-pixel median over the well's sites (each a maximum over z): what
    a channel's flat field is estimated from."""
    channels, zs = well.planes()
    stacks = np.stack([well.stack(site, channels, zs).max(axis=1) for site in well.sites()["site"]])
    medians = np.median(stacks.astype(np.float32), axis=0)
    return {"medians": dict(zip(channels, medians, strict=True))}


def register_well(
    well: WellTiles,
    step: tuple[float, float] | StepEstimate,
    params: RegistrationParams,
    channel: int,
    flat: np.ndarray | None = None,
) -> dict:
    """Positions of one well's sites, from ``channel`` (maximum projection over z), each
    tile divided by the plate's ``flat`` field first when there is one."""
    sites, images = registration_images(well, channel)
    if flat is not None:
        images = [image / flat for image in images]
    positions, pairs = register_tiles(images, sites, step, params)
    return {
        "positions": positions[["site", "grid_row", "grid_col", "x", "y", "quality"]],
        "untrusted_pairs": sum(not p.trusted for p in pairs),
    }


def stitch_well(
    well: WellTiles,
    positions: pd.DataFrame,
    shape: tuple[int, int],
    store: Path,
    pixel_size_um: float | None,
    provenance: dict,
    flats: dict[int, np.ndarray] | None = None,
) -> dict:
    """Stitch every channel and z plane of one well into a ``shape`` mosaic and write it into
    the plate store; with ``flats`` (channel -> flat field) each channel's tiles are divided
    by its flat field first, in the tiles' own dtype."""
    channels, zs = well.planes()
    ordered = positions.sort_values("site")
    stacks = [well.stack(int(site), channels, zs) for site in ordered["site"]]
    if flats is not None:
        stacks = [_flattened(stack, [flats[c] for c in channels]) for stack in stacks]
    image = stitch(stacks, ordered[["y", "x"]].to_numpy(), shape)
    size = {"height": image.shape[-2], "width": image.shape[-1], "tiles": len(stacks)}
    names = [f"ch{c}" for c in channels]
    omezarr.write_well(
        store, well.row, well.column, image, pixel_size_um, names, {**provenance, "size": size}
    )
    return size


def _flattened(stack: np.ndarray, flats: list[np.ndarray]) -> np.ndarray:
    """(channels, z, H, W) ``stack`` divided channel by channel, rounded and clipped back to
    its dtype."""
    corrected = stack / np.stack(flats)[:, None]
    if np.issubdtype(stack.dtype, np.integer):
        limits = np.iinfo(stack.dtype)
        corrected = np.clip(np.rint(corrected), limits.min, limits.max)
    return corrected.astype(stack.dtype)


def run_wells(
    function: Callable[..., dict], jobs: Iterable[tuple[str, tuple]], workers: int
) -> list[dict]:
    """``function(*args)`` for each (well, args), ``workers`` processes at once (in this
    process when 1). Each result has well, error ('' if none), seconds and peak_mb (of the
    worker process)."""
    calls = [(function, well, *args) for well, args in jobs]
    if workers <= 1 or len(calls) <= 1:
        return [_guarded(*call) for call in calls]
    return map_in_pool(_guarded, calls, workers, initializer=_one_thread_each)


_THREAD_LIMITS: list[threadpoolctl.threadpool_limits] = []


def _one_thread_each() -> None:
    """Worker start-up: one BLAS/OpenMP thread per worker process. The workers already use
    every core; a multi-threaded BLAS in each (e.g. in the sub-pixel DFT) made two workers
    slower than one."""
    _THREAD_LIMITS.append(threadpoolctl.threadpool_limits(limits=1))


def qc_well(store: Path, row: str, column: int, thumbnail_level: int) -> dict:
    """Focus and intensity statistics per channel (full resolution, maximum over z) and a
    grey thumbnail of the first channel from a coarse pyramid level."""
    image = omezarr.read_well(store, row, column)
    channels = [
        {"channel": c + 1, "focus": focus_score(plane), **intensity_stats(plane)}
        for c, plane in enumerate(image.max(axis=1))
    ]
    thumbnail = omezarr.read_well(store, row, column, thumbnail_level)[0].max(axis=0)
    return {"channels": channels, "thumbnail": thumbnail}
