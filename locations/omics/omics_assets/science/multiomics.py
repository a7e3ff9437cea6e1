"""Multi-omics integration: the multiomics domain's steps.

views (read and check each view: a TSV matrix or an upstream workflow's step) -> align
(samples matched by ID; features filtered, transformed, centred and scaled per view) ->
factors (MOFA+, ``mofapy2``) -> report (variance explained heatmap, factor plot).

A sample absent from a view is a row of missing values in that view, as MOFA models it: it is
kept, and its factors are inferred from the views that hold it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Discriminator, Field, StringConstraints, Tag, TypeAdapter

from omics_assets.science.multiomics_mofa import ConvergenceMode, fit_mofa
from omics_assets.science.multiomics_views import (
    Transpose,
    check_linked,
    orient_all,
    read_matrix,
)
from omics_assets.science.sample_tables import read_sample_table, read_step_table
from omics_assets.science.specs import FilePath, NoConfig, Step, Strict
from omics_assets.science.steps import InputError, StepContext

ViewName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
# MOFA's own warning: fewer features or samples than this cannot carry meaningful factors
MOFA_MINIMUM = 15


class ViewOptions(Strict):
    """How a view's matrix is read. ``transpose``: false = samples in rows, true = samples in
    columns, auto = the axis the other views' sample IDs match (rows on a tie).
    ``transform``: log2 (values > 0) or log2p1 = log2(x + 1) (counts >= 0), before feature
    filtering: every view is modelled as Gaussian (MOFA's default likelihood), so counts
    are best log-transformed."""

    transpose: Transpose = "auto"
    transform: Literal["none", "log2", "log2p1"] = "none"


class FileView(ViewOptions):
    """A TSV matrix (may be gzipped), the first column the row IDs."""

    path: Annotated[str, "path"]


class WorkflowView(ViewOptions):
    """A table of an upstream workflow's step: its listed file ``file``, or its first
    ``.tsv``; ``run``: latest or a run key (the workflow's ``inputs:``)."""

    workflow: str
    step: str
    run: str = "latest"
    file: str | None = None


def _view_kind(value: Any) -> str | None:
    """Which kind of view a config value is: ``workflow`` if it names one, else ``path``
    if it names a file (None: neither, refused with the union's own message). The tag is
    part of an error's location (``views.rna.workflow.step``): it leads to the line of the
    user's ``workflow:`` or ``path:`` key."""
    if isinstance(value, WorkflowView | FileView):
        return "workflow" if isinstance(value, WorkflowView) else "path"
    if isinstance(value, Mapping):
        return "workflow" if "workflow" in value else "path" if "path" in value else None
    return None


View = Annotated[
    Annotated[FileView, Tag("path")] | Annotated[WorkflowView, Tag("workflow")],
    Discriminator(
        _view_kind,
        custom_error_type="view_kind",
        custom_error_message="a view is a mapping with path (a TSV matrix) or with workflow "
        "and step (an upstream workflow's step)",
    ),
]
VIEWS = TypeAdapter(dict[ViewName, View])


class Inputs(Strict):
    """The multiomics domain's ``domain_specific`` keys: the views by name; optionally a
    sample table (``sample`` column) and its column that colours the factor plot."""

    views: dict[ViewName, View]
    metadata: FilePath
    group: str | None


class AlignConfig(Strict):
    top_features: int | None = Field(
        ge=1, description="per view, the most variable features kept; null: all"
    )
    scale_features: bool = Field(description="each feature to unit variance")
    scale_views: bool = Field(description="each view to unit total variance (MOFA's option)")


class FactorsConfig(Strict):
    factors: int = Field(ge=1, le=50, description="K, the factors MOFA infers")
    iterations: int = Field(ge=2, description="the most iterations")
    convergence_mode: ConvergenceMode = Field(
        description="ELBO change per iteration that counts as converged: fast 5e-4 %, "
        "medium 5e-5 %, slow 5e-6 % of the first ELBO"
    )
    seed: int


def view_specs(ctx: StepContext) -> dict[str, FileView | WorkflowView]:
    return VIEWS.validate_python(ctx.domain_specific["views"])


def _view_path(ctx: StepContext, name: str, view: FileView | WorkflowView) -> Path:
    """A view's file: its path, or the table its upstream step listed."""
    if isinstance(view, FileView):
        return Path(view.path)
    source = f"view {name}: step {view.step} of workflow {view.workflow}"
    if not ctx.has_input(view.step):
        raise InputError(f"{source} was not read (is it in the workflow's inputs?)")
    files: dict[str, str] = dict(ctx.inputs[view.step].get("files") or {})
    if view.file is None:
        tables = [f for f, p in files.items() if p.endswith((".tsv", ".tsv.gz"))]
        if not tables:
            raise InputError(f"{source} lists no .tsv file (files: {', '.join(files)})")
        return ctx.input_file(view.step, tables[0])
    if view.file not in files:
        raise InputError(f"{source} has no file {view.file!r} (files: {', '.join(files)})")
    return ctx.input_file(view.step, view.file)


# what a transform needs of the values: (in words, which values break it)
TRANSFORM_DOMAIN: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "log2": ("> 0", lambda v: v <= 0),
    "log2p1": (">= 0", lambda v: v < 0),
}


def _check_values(name: str, frame: pd.DataFrame, view: ViewOptions) -> None:
    """InputError when values do not suit the view's transform."""
    if view.transform not in TRANSFORM_DOMAIN:
        return
    need, breaks = TRANSFORM_DOMAIN[view.transform]
    values = frame.to_numpy()
    wrong = values[~np.isnan(values) & breaks(values)]
    if len(wrong):
        raise InputError(
            f"view {name}: transform {view.transform} needs values {need}, not {wrong[0]:g} "
            f"({len(wrong)} such values)"
        )


def sample_groups(ctx: StepContext) -> pd.Series | None:
    """The sample groups, ``domain_specific.group`` of the ``metadata`` table (text, by
    sample), or None without a group. InputError for a group without a metadata file, and
    for a metadata table that is not a sample table with that column."""
    path, group = ctx.domain_specific.get("metadata"), ctx.domain_specific.get("group")
    if group and not path:
        raise InputError(f"domain_specific.group is {group!r} but no metadata file is set")
    if not path:
        return None
    metadata = read_sample_table(Path(path), {group: "domain_specific.group"} if group else {})
    return metadata.table[group] if group else None


def views(ctx: StepContext) -> dict[str, Any]:
    """Read every view, orient it (samples in rows) and check it: numbers only, unique
    sample and feature IDs, values that suit its transform, and views linked
    by shared samples. Writes each view and a summary per view (samples, features, samples
    of the other views it lacks, missing values)."""
    specs = view_specs(ctx)
    if not specs:
        raise InputError("domain_specific.views is empty: name at least one view")
    upstream: dict[str, str] = {}  # a step's value arrives under its bare name
    for name, spec in specs.items():
        if not isinstance(spec, WorkflowView):
            continue
        if upstream.setdefault(spec.step, spec.workflow) != spec.workflow:
            raise InputError(
                f"view {name}: step {spec.step} is read from workflows {upstream[spec.step]} "
                f"and {spec.workflow}: a step name may come from one upstream workflow only"
            )
    raws = {name: read_matrix(name, _view_path(ctx, name, spec)) for name, spec in specs.items()}
    oriented = orient_all(raws, {name: spec.transpose for name, spec in specs.items()})
    check_linked({name: frame.index for name, (frame, _) in oriented.items()})
    samples = pd.Index(
        list(dict.fromkeys(s for frame, _ in oriented.values() for s in frame.index))
    )
    groups = sample_groups(ctx)
    (ctx.out / "views").mkdir()
    rows, files = [], {}
    for name, (frame, transposed) in oriented.items():
        _check_values(name, frame, specs[name])
        frame.to_csv(ctx.out / "views" / f"{name}.tsv", sep="\t")
        files[f"view_{name}"] = f"views/{name}.tsv"
        rows.append(
            {
                "view": name,
                "source": str(raws[name].path),
                "transposed": transposed,
                "samples": len(frame),
                "features": frame.shape[1],
                "missing_samples": len(samples) - len(frame),
                "missing_values": int(frame.isna().to_numpy().sum()),
            }
        )
        if min(frame.shape) < MOFA_MINIMUM:
            ctx.warnings.append(
                f"view {name} has {len(frame)} samples and {frame.shape[1]} features: "
                f"MOFA needs at least {MOFA_MINIMUM} of each for meaningful factors"
            )
    if groups is not None and not samples.isin(groups.index).any():
        ctx.warnings.append("metadata: no sample of the views is in it")
    pd.DataFrame(rows).to_csv(ctx.out / "views.tsv", sep="\t", index=False)
    shared = np.logical_and.reduce([samples.isin(f.index) for f, _ in oriented.values()])
    return {
        "files": {"summary": "views.tsv", **files},
        "metrics": {"views": len(specs), "samples": len(samples), "in_all_views": int(shared.sum())}
        | {f"{r['view']}_features": r["features"] for r in rows},
    }


def _prepare(name: str, frame: pd.DataFrame, view: ViewOptions, cfg: AlignConfig) -> pd.DataFrame:
    """One view as MOFA gets it: transformed, without constant or near-empty features,
    its ``top_features`` most variable features, centred and scaled as configured."""
    if view.transform != "none":
        frame = np.log2(frame + (1 if view.transform == "log2p1" else 0))
    variance = frame.var()
    frame = frame.loc[:, (frame.notna().sum() >= 2) & (variance > 0)]
    if frame.empty:
        raise InputError(f"view {name}: no feature varies across its samples")
    if cfg.top_features and frame.shape[1] > cfg.top_features:
        top = variance[frame.columns].nlargest(cfg.top_features, keep="first").index
        frame = frame.loc[:, frame.columns.isin(top)]
    frame = frame - frame.mean()
    if cfg.scale_features:
        frame = frame / frame.std()
    if cfg.scale_views:
        frame = frame / np.nanstd(frame.to_numpy())
    return frame


def align(ctx: StepContext) -> dict[str, Any]:
    """Match samples by ID across views (a sample a view lacks is a row of missing values
    there) and prepare each view's features (see :func:`_prepare`). Writes the sample x view
    presence table (1: the view holds the sample) and each prepared view."""
    specs = view_specs(ctx)
    cfg = AlignConfig.model_validate(ctx.config)
    frames = {name: read_step_table(ctx.input_file("views", f"view_{name}")) for name in specs}
    samples = pd.Index(
        list(dict.fromkeys(s for f in frames.values() for s in f.index)), name="sample"
    )
    presence = pd.DataFrame(
        {name: samples.isin(f.index).astype(int) for name, f in frames.items()}, index=samples
    )
    presence.to_csv(ctx.out / "samples.tsv", sep="\t")
    (ctx.out / "aligned").mkdir()
    files, metrics = {"samples": "samples.tsv"}, {"samples": len(samples)}
    for name, frame in frames.items():
        prepared = _prepare(name, frame, specs[name], cfg).reindex(samples)
        prepared.to_csv(ctx.out / "aligned" / f"{name}.tsv", sep="\t", float_format="%.6g")
        files[f"aligned_{name}"] = f"aligned/{name}.tsv"
        metrics[f"{name}_features"] = prepared.shape[1]
    return {"files": files, "metrics": metrics}


def factors(ctx: StepContext) -> dict[str, Any]:
    """MOFA+ factors: factors.tsv (``sample``, ``factor_1`` ... ``factor_K``, sorted by
    variance explained), weights per view (``feature``, factors) and the variance explained
    per view and factor (percent, and by all factors together)."""
    specs = view_specs(ctx)
    cfg = FactorsConfig.model_validate(ctx.config)
    data = {name: read_step_table(ctx.input_file("align", f"aligned_{name}")) for name in specs}
    fit = fit_mofa(
        data, cfg.factors, cfg.iterations, cfg.convergence_mode, cfg.seed, ctx.threads, ctx.log
    )
    fit.factors.rename_axis("sample").to_csv(ctx.out / "factors.tsv", sep="\t", float_format="%.6g")
    files = {"factors": "factors.tsv", "variance_explained": "variance_explained.tsv"}
    explained = (fit.variance_explained * 100).assign(all_factors=fit.total_explained * 100)
    explained.rename_axis("view").to_csv(
        ctx.out / "variance_explained.tsv", sep="\t", float_format="%.4f"
    )
    for name, weights in fit.weights.items():
        weights.rename_axis("feature").to_csv(
            ctx.out / f"weights_{name}.tsv", sep="\t", float_format="%.6g"
        )
        files[f"weights_{name}"] = f"weights_{name}.tsv"
    verdict = f"{fit.iterations} iterations" + (
        "" if fit.converged else f": the limit, {cfg.iterations}, was reached"
    )
    return {
        "files": files,
        "metrics": {
            "factors": cfg.factors,
            "iterations": fit.iterations,
            "converged": fit.converged,
        }
        | {f"{v}_r2_percent": round(float(t) * 100, 2) for v, t in fit.total_explained.items()},
        "checks": {"converged": {"passed": fit.converged, "description": verdict}},
    }


def report(ctx: StepContext) -> dict[str, Any]:
    """Views, variance explained per view and factor (heatmap), factor 1 against factor 2
    coloured by the metadata's group, and the heaviest features of the first factors, as
    markdown and PNG."""
    from omics_assets.science.multiomics_plots import factor_scatter_png, variance_heatmap_png

    summary = pd.read_csv(ctx.input_file("views", "summary"), sep="\t", keep_default_na=False)
    explained = read_step_table(ctx.input_file("factors", "variance_explained"))
    scores = read_step_table(ctx.input_file("factors", "factors"))
    per_factor = explained.drop(columns="all_factors")
    (ctx.out / "variance_explained.png").write_bytes(variance_heatmap_png(per_factor))
    files = {"report": "report.md", "heatmap": "variance_explained.png"}
    lines = [
        "# Multi-omics integration (MOFA+)",
        "## Views",
        summary.drop(columns="source").to_markdown(index=False),
        "## Variance explained (% of each view's variance)",
        explained.to_markdown(floatfmt=".1f"),
    ]
    if scores.shape[1] >= 2:
        groups = sample_groups(ctx)
        group = str(ctx.domain_specific.get("group") or "")
        png = factor_scatter_png(scores, "factor_1", "factor_2", groups, group)
        (ctx.out / "factors.png").write_bytes(png)
        files["factor_plot"] = "factors.png"
    top = []
    for name in summary["view"]:
        weights = read_step_table(ctx.input_file("factors", f"weights_{name}"))
        for factor in weights.columns[:3]:
            if per_factor.at[name, factor] >= 1.0:
                heaviest = weights[factor].abs().nlargest(5).index
                top.append({"view": name, "factor": factor, "features": ", ".join(heaviest)})
    if top:
        lines += [
            "## Heaviest features (|weight|) of factors 1-3 where they explain >= 1 %",
            pd.DataFrame(top).to_markdown(index=False),
        ]
    (ctx.out / "report.md").write_text("\n\n".join(lines) + "\n")
    return {"files": files, "metrics": {"factors": scores.shape[1], "views": len(summary)}}


STEPS: tuple[Step, ...] = (
    Step("views", views, (), NoConfig, required=True),
    Step("align", align, ("views",), AlignConfig, required=True),
    Step(
        "factors",
        factors,
        ("align",),
        FactorsConfig,
        checks=(("converged", "MOFA's ELBO converged before the iteration limit"),),
    ),
    Step("report", report, ("views", "factors"), NoConfig),
)
