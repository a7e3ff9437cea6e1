"""Microscope detection and filename parsing: a plate folder -> a table of tiles.

Schemes (OpenHCS / EZStitcher handlers):

- ImageXpress: ``[prefix_]A01_s1_w1[_z001].tif`` (``_w`` optional for one channel); z planes
  either in the name (``_z``) or as ``ZStep_<n>`` folders (``TimePoint_1/ZStep_2/...``); the
  site grid (``XSites``, ``YSites``) and channel names (``WaveName<n>`` up to
  ``NWavelengths``) come from the ``.HTD`` file; sites are numbered row-major.
- Opera Phenix: ``r01c01f01p01-ch1sk1fk1fl1.tiff`` (row, column, field, plane, channel); the
  field layout, pixel size and channel names come from ``Index.xml`` / ``Index.idx.xml`` when
  present (stage positions in metres; stage Y points up, so the top row has the largest Y).
- Generic: ``{well}_s{site}_c{channel}[_z{z}].tif``, sites row-major on a square grid.

Without layout metadata the sites must form a square grid (row-major). Pixel units: tile
positions are in pixels of the first tile; ``pixel_size_um`` is metadata only. Channel names
are made safe for column names (``mean_intensity_<name>``): see ``column_safe``.
The plate folder is only read: nothing here opens a file for writing. Files are opened by an
``Opener`` (default: as named); a plate dropped into the inbox passes one that refuses a file
leading out of the plate (platform_core.confine.InputFolder.open).
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from platform_core.confine import Opener, open_as_named

IMAGE_SUFFIXES = (".tif", ".tiff")
TILE_COLUMNS = ["well", "row", "column", "site", "channel", "z", "grid_row", "grid_col", "path"]
ZSTEP_FOLDER = re.compile(r"zstep_(\d+)", re.IGNORECASE)  # ImageXpress z plane folders
NAME_LENGTH = 64  # longest channel name kept (a column name, not a description)


class LayoutError(ValueError):
    """The plate folder cannot be read as a plate (says which file and why)."""


@dataclass(frozen=True)
class Scheme:
    name: str
    example: str
    pattern: re.Pattern[str]


SCHEMES = (
    Scheme(
        "ImageXpress",
        "A01_s1_w1.tif",
        re.compile(
            r"^(?:.*_)?(?P<well>[A-Z]{1,2}\d{2})_s(?P<site>\d+)(?:_w(?P<channel>\d+))?"
            r"(?:_z(?P<z>\d+))?\.tiff?$",
            re.IGNORECASE,
        ),
    ),
    Scheme(
        "Opera Phenix",
        "r01c01f01p01-ch1sk1fk1fl1.tiff",
        re.compile(
            r"^r(?P<row>\d{2})c(?P<col>\d{2})f(?P<site>\d+)p(?P<z>\d+)-ch(?P<channel>\d+)"
            r"sk\d+fk\d+fl\d+\.tiff?$",
            re.IGNORECASE,
        ),
    ),
    Scheme(
        "generic",
        "A01_s1_c1_z1.tif",
        re.compile(
            r"^(?P<well>[A-Z]{1,2}\d{1,2})_s(?P<site>\d+)_c(?P<channel>\d+)(?:_z(?P<z>\d+))?"
            r"\.tiff?$",
            re.IGNORECASE,
        ),
    ),
)


@dataclass(frozen=True)
class PlateLayout:
    """What a plate folder holds: its tiles (TILE_COLUMNS) and how they are laid out."""

    microscope: str
    grid_rows: int
    grid_cols: int
    pixel_size_um: float | None
    # distance between neighbouring sites in pixels, when the metadata says (Opera Phenix);
    # otherwise it follows from the tile size and the configured overlap
    step_px: float | None
    tiles: pd.DataFrame
    # channel -> name from the plate metadata, safe in a column name; empty when unknown
    channel_names: dict[int, str]

    def channel_label(self, channel: int) -> str:
        """The channel's name, or ``ch<N>`` when the metadata does not name it."""
        return self.channel_names.get(channel, f"ch{channel}")


def row_letters(index: int) -> str:
    """1 -> A, 26 -> Z, 27 -> AA (plate rows)."""
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def row_number(letters: str) -> int:
    """A -> 1, Z -> 26, AA -> 27 (inverse of row_letters)."""
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def split_well(well: str) -> tuple[str, int]:
    """'B07' -> ('B', 7)."""
    match = re.fullmatch(r"([A-Z]{1,2})(\d{1,2})", well)
    if not match:
        raise LayoutError(f"not a well name: {well!r} (expected e.g. A01)")
    return match.group(1), int(match.group(2))


def list_plate_files(root: Path) -> list[Path]:
    """Every non-hidden file under ``root``. A symlink that leads outside the plate is an
    error (a plate must not read, or make us read, files it does not contain)."""
    root = root.resolve()
    files: list[Path] = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in [*dirs, *sorted(names)]:
            path = Path(folder, name)
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    raise LayoutError(
                        f"{path.relative_to(root)}: symlink points outside the plate "
                        f"({target}); copy the file into the plate folder instead"
                    )
        files += [Path(folder, n) for n in sorted(names) if not n.startswith(".")]
    return files


def column_safe(name: str) -> str:
    """``name`` usable inside a column name: ASCII letters, digits and ``_`` kept, any other
    character replaced by ``_``, at most NAME_LENGTH characters; "" when no letter or digit
    is left (the channel then counts as unnamed)."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name.strip())[:NAME_LENGTH]
    return safe if re.search(r"[A-Za-z0-9]", safe) else ""


def _channel_names(raw: dict[int, str], channels: set[int]) -> dict[int, str]:
    """The metadata's channel names made column-safe and distinct (ignoring case) from each
    other and from the ``ch<N>`` label of every unnamed channel in ``channels``."""
    safe = {c: column_safe(n) for c, n in sorted(raw.items())}
    safe = {c: n for c, n in safe.items() if n}
    taken = {f"ch{c}" for c in channels if c not in safe}
    names: dict[int, str] = {}
    for channel, name in safe.items():
        while name.lower() in taken:
            name = f"{name}_{channel}"
        taken.add(name.lower())
        names[channel] = name
    return names


@dataclass(frozen=True)
class HtdFile:
    name: str
    values: dict[str, str]  # key -> value, quotes stripped

    def grid(self) -> tuple[int, int]:
        """(rows, columns) of the site grid."""
        try:
            return int(self.values["YSites"]), int(self.values["XSites"])
        except (KeyError, ValueError) as exc:
            raise LayoutError(f"{self.name}: no integer XSites/YSites ({exc})") from exc

    def channel_names(self) -> dict[int, str]:
        """``WaveName<n>`` for n up to ``NWavelengths`` (every one when that is missing)."""
        stated = self.values.get("NWavelengths", "")
        names = {}
        for key, value in self.values.items():
            match = re.fullmatch(r"WaveName(\d+)", key, re.IGNORECASE)
            if match and (not stated.isdigit() or int(match.group(1)) <= int(stated)):
                names[int(match.group(1))] = value
        return names


def _htd_file(files: list[Path], opener: Opener) -> HtdFile | None:
    htd = [f for f in files if f.suffix.lower() == ".htd"]
    if not htd:
        return None
    values: dict[str, str] = {}
    with opener(htd[0]) as handle:
        text = handle.read().decode(errors="replace")
    for line in text.splitlines():
        parts = [p.strip().strip('"') for p in line.split(",", 1)]
        if len(parts) == 2:
            values[parts[0]] = parts[1]
    return HtdFile(htd[0].name, values)


@dataclass(frozen=True)
class OperaIndex:
    field_grid: dict[int, tuple[int, int]]  # field -> (grid row, grid col)
    step_px: float | None  # distance between neighbouring fields, pixels
    pixel_size_um: float | None
    channel_names: dict[int, str]  # channel -> name as written


def _add_channel_name(names: dict[int, str], channel: str | None, name: str | None) -> None:
    """Record ``name`` for ``channel`` (an integer id); the first name given wins."""
    if channel and channel.strip().isdigit() and name:
        names.setdefault(int(channel), name)


def _opera_index(files: list[Path], opener: Opener) -> OperaIndex | None:
    index = [f for f in files if f.name.lower() in ("index.xml", "index.idx.xml")]
    if not index:
        return None
    try:
        with opener(index[0]) as handle:
            tree = ET.parse(handle)
    except ET.ParseError as exc:
        raise LayoutError(f"{index[0].name}: not valid XML ({exc})") from exc
    positions: dict[int, tuple[float, float]] = {}
    resolution: float | None = None
    names: dict[int, str] = {}
    for entry in tree.getroot().iterfind(".//{*}Maps/{*}Map/{*}Entry"):
        _add_channel_name(names, entry.get("ChannelID"), entry.findtext("{*}ChannelName"))
    for image in tree.getroot().iterfind(".//{*}Images/{*}Image"):
        try:
            field = int(image.findtext("{*}FieldID") or "")
            x = float(image.findtext("{*}PositionX") or "")
            y = float(image.findtext("{*}PositionY") or "")
        except ValueError as exc:
            raise LayoutError(f"{index[0].name}: image without FieldID/PositionX/Y") from exc
        positions[field] = (x, y)
        _add_channel_name(names, image.findtext("{*}ChannelID"), image.findtext("{*}ChannelName"))
        text = image.findtext("{*}ImageResolutionX")
        resolution = float(text) if text else resolution
    if not positions:
        raise LayoutError(f"{index[0].name}: no <Images><Image> entries")
    xs = sorted({round(x, 9) for x, _ in positions.values()})
    ys = sorted({round(y, 9) for _, y in positions.values()}, reverse=True)  # stage Y is up
    grid = {f: (ys.index(round(y, 9)), xs.index(round(x, 9))) for f, (x, y) in positions.items()}
    step_px = (xs[1] - xs[0]) / resolution if len(xs) > 1 and resolution else None
    return OperaIndex(grid, step_px, resolution * 1e6 if resolution else None, names)


def _square_grid(sites: int) -> tuple[int, int]:
    side = math.isqrt(sites)
    if side * side != sites:
        raise LayoutError(
            f"{sites} sites per well do not form a square grid and no layout file says how "
            "they are arranged (ImageXpress: the .HTD file; Opera Phenix: Index.xml)"
        )
    return side, side


def _imagexpress_z(path: Path, named: str | None) -> int:
    """An ImageXpress tile's z plane: from its name (``_z``) or else its ``ZStep_<n>``
    folder (1 without either); a name and folder that disagree are an error."""
    folder = ZSTEP_FOLDER.fullmatch(path.parent.name)
    if named and folder and int(named) != int(folder.group(1)):
        raise LayoutError(
            f"{path}: its name says z {int(named)} but its folder {path.parent.name} says "
            f"z {int(folder.group(1))}"
        )
    return int(named or (folder.group(1) if folder else 1))


def parse_plate(root: Path, opener: Opener = open_as_named) -> PlateLayout:
    """Detect the microscope and read every tile of the plate folder ``root`` (its layout
    file opened by ``opener``)."""
    if not root.is_dir():
        raise LayoutError(f"{root}: not a folder")
    files = list_plate_files(root)
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise LayoutError(f"{root}: no TIFF images in the plate folder")
    matches = {s.name: [f for f in images if s.pattern.match(f.name)] for s in SCHEMES}
    scheme = max(SCHEMES, key=lambda s: len(matches[s.name]))
    matched = matches[scheme.name]
    if not matched:
        known = "; ".join(f"{s.name} ({s.example})" for s in SCHEMES)
        raise LayoutError(
            f"{root}: unknown filename scheme: none of {len(images)} images (e.g. "
            f"{images[0].name!r}) matches {known}"
        )
    known_files = set(matched)  # once: a set per image made this quadratic in the tiles
    strays = [f for f in images if f not in known_files and "_thumb" not in f.name.lower()]
    if strays:
        raise LayoutError(
            f"{strays[0].relative_to(root)}: does not match the {scheme.name} scheme "
            f"({scheme.example}) of the other {len(matched)} images ({len(strays)} such files)"
        )
    rows = []
    for path in matched:
        m = scheme.pattern.match(path.name)
        assert m is not None
        parts = m.groupdict()
        if scheme.name == "Opera Phenix":
            row, column = row_letters(int(parts["row"])), int(parts["col"])
        else:
            row, column = split_well(parts["well"].upper())
        if scheme.name == "ImageXpress":
            z = _imagexpress_z(path, parts["z"])
        else:
            z = int(parts.get("z") or 1)
        rows.append(
            {
                "well": f"{row}{column:02d}",
                "row": row,
                "column": column,
                "site": int(parts["site"]),
                "channel": int(parts.get("channel") or 1),
                "z": z,
                "path": str(path),
            }
        )
    tiles = pd.DataFrame(rows)
    plane = ["well", "site", "channel", "z"]
    duplicated = tiles[tiles.duplicated(plane, keep=False)]
    if len(duplicated):
        first = duplicated.iloc[0]
        paths = duplicated.loc[(duplicated[plane] == first[plane]).all(axis=1), "path"]
        raise LayoutError(
            f"well {first['well']} site {first['site']} channel {first['channel']} z "
            f"{first['z']} is in {len(paths)} files: {', '.join(paths)} "
            f"({len(duplicated)} clashing files in all)"
        )
    sites = int(tiles["site"].max())
    step_px, pixel_size, names = None, None, {}
    opera = _opera_index(files, opener) if scheme.name == "Opera Phenix" else None
    if opera is not None:
        unknown = sorted(set(tiles["site"]) - set(opera.field_grid))
        if unknown:
            raise LayoutError(f"Index.xml has no position for field(s) {unknown}")
        grid_rows = 1 + max(r for r, _ in opera.field_grid.values())
        grid_cols = 1 + max(c for _, c in opera.field_grid.values())
        tiles["grid_row"] = tiles["site"].map(lambda f: opera.field_grid[f][0])
        tiles["grid_col"] = tiles["site"].map(lambda f: opera.field_grid[f][1])
        step_px, pixel_size, names = opera.step_px, opera.pixel_size_um, opera.channel_names
    else:
        htd = _htd_file(files, opener) if scheme.name == "ImageXpress" else None
        grid_rows, grid_cols = htd.grid() if htd else _square_grid(sites)
        names = htd.channel_names() if htd else {}
        if sites > grid_rows * grid_cols:
            raise LayoutError(f"site {sites} lies outside the {grid_rows}x{grid_cols} site grid")
        tiles["grid_row"] = (tiles["site"] - 1) // grid_cols
        tiles["grid_col"] = (tiles["site"] - 1) % grid_cols
    tiles = tiles.sort_values(["well", "site", "channel", "z"]).reset_index(drop=True)
    return PlateLayout(
        microscope=scheme.name,
        grid_rows=grid_rows,
        grid_cols=grid_cols,
        pixel_size_um=pixel_size,
        step_px=step_px,
        tiles=tiles[TILE_COLUMNS],
        channel_names=_channel_names(names, set(tiles["channel"])),
    )
