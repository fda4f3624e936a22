"""`visionops data ...`: generate, import, validate, register, export, describe data sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from visionops.cli._app import (
    BackendOpt,
    FormatOpt,
    ProfileOpt,
    TaskOpt,
    _settings,
    app,
    console,
    err_console,
)
from visionops.errors import DataValidationError, VisionOpsError

data_app = typer.Typer(
    no_args_is_help=True, help="Generate, import, validate, register, export and describe data sets."
)
app.add_typer(data_app, name="data")


@data_app.command("generate")
def data_generate(
    profile: ProfileOpt = "quick",
    task: TaskOpt = None,
    out: Annotated[Path | None, typer.Option(help="Target folder (default: data/work/<name>-<profile>).")] = None,
    n_train: Annotated[int | None, typer.Option(
        help="Training images (classification: per class; default: the profile's).")] = None,
    n_val: Annotated[int | None, typer.Option(help="Validation images (classification: per class).")] = None,
    n_test: Annotated[int | None, typer.Option(help="Test images (classification: per class).")] = None,
    image_size: Annotated[int | None, typer.Option(help="Image side in pixels.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (same seed, same bytes, same version).")] = None,
) -> None:
    """Generate the task's synthetic data set (detection: shapes with boxes; classification: one
    object per image) deterministically by seed, with its manifest."""
    from visionops.data.dataset import generate_synthetic
    from visionops.data.manifest import read_manifest
    from visionops.profiles import get_profile
    from visionops.tasks import get_task

    s = _settings(seed=seed)
    kind = get_task(task or s.task)
    spec = get_profile(profile, kind.name).data
    counts = dict(zip(type(spec).count_fields, (n_train, n_val, n_test), strict=True))
    updates = {k: v for k, v in {**counts, "image_size": image_size}.items() if v is not None}
    spec = type(spec).model_validate({**spec.model_dump(), **updates, "seed": s.seed})
    name = kind.synthetic_name(s.dataset_name)
    target = out or s.data_dir / "work" / f"{name}-{profile}"
    generate_synthetic(spec, target, name)
    split = read_manifest(target).splits
    console.print(f"generated {kind.name} data set '{name}': {split['train'].images}/{split['val'].images}/"
                  f"{split['test'].images} images (train/val/test) in {target}")


ImportFormatOpt = Annotated[
    str, typer.Option("--format", "-f", help="auto (recognise it and say so); detection: yolo, coco, voc, automl; "
                      "classification: folders (a folder per class), csv (path,label), jsonl (AutoML multi-class).")
]


@data_app.command("import")
def data_import(
    source: Annotated[Path, typer.Argument(
        help="YOLO folder/yaml, COCO JSON, VOC folder, AutoML JSONL or MLTable; or a folder per class, a "
             "path,label CSV or a multi-class JSONL.")],
    fmt: ImportFormatOpt = "auto",
    images: Annotated[Path | None, typer.Option(
        help="COCO/AutoML/JSONL image folder (default: beside the file); AutoML image URLs (azureml://, "
             "AmlDatastore://, https://) are mapped to the file under it.")] = None,
    out: Annotated[Path | None, typer.Option(help="Target folder (default: data/work/<name>-import).")] = None,
    name: Annotated[str | None, typer.Option(
        help="Data set name (default: derived from the source folder or file name).")] = None,
    unlabeled: Annotated[bool, typer.Option(
        "--unlabeled", help="YOLO: images with no label file at all are background (default: an error).")] = False,
    difficult: Annotated[str, typer.Option(help="VOC objects marked difficult: keep or skip.")] = "keep",
    crowd: Annotated[str, typer.Option(help="COCO iscrowd=1 annotations: keep or skip.")] = "keep",
    seed: Annotated[int, typer.Option(help="Seed for carving missing val/test splits.")] = 0,
    into: Annotated[str | None, typer.Option(
        help="A labeled batch (visionops label export) merged into data set NAME[:VERSION] (default version: "
             "the current one) as a new, current version: new images to train/val, never test.")] = None,
) -> None:
    """Import a data set into the VisionOps layout, print the import report (per split: images, label
    files, boxes, background, skipped; classification: images per class, skipped) and fail when labels
    in the source did not make it. With --into, merge a labeled batch into a registered data set."""
    from visionops.data.dataset import import_dataset
    from visionops.data.formats.report import read_import_report
    from visionops.data.naming import NAME_PATTERN, derived_name

    s = _settings()
    if not source.exists():
        raise VisionOpsError(f"{source} does not exist; pass the path of the data set to import")
    if into is not None:  # a labeled batch back into its data set (visionops.monitoring.labeling)
        from visionops.monitoring.labeling import label_import

        ref, merged = label_import(s, source, into, out, say=lambda step, msg: err_console.print(f"[dim]{msg}[/]"))
        console.print(f"merged {source} into {merged.base}: {merged.added['train']} train + {merged.added['val']} "
                      f"val image(s) (test unchanged), {merged.boxes} boxes, {merged.background} background",
                      highlight=False)
        for what, names in (("already in the data set, its labels kept", merged.duplicates),
                            ("of those relabeled differently (review them in the data set)", merged.conflicts),
                            ("in the batch but not in the labeled COCO (not added)", merged.unlabeled)):
            if names:
                console.print(f"{len(names)} {what}: {', '.join(names[:10])}", highlight=False)
        console.print(f"registered {ref.name}:{ref.version} (now the current data set); next: visionops run "
                      "(the gate decides whether the retrained model replaces the champion)", highlight=False)
        return
    for option, value in (("--difficult", difficult), ("--crowd", crowd)):
        if value not in ("keep", "skip"):
            raise VisionOpsError(f"{option} {value!r}: choose keep or skip")
    from visionops.data.formats.detect import FORMATS

    if fmt not in ("auto", *FORMATS):
        raise VisionOpsError(f"--format {fmt!r}: choose auto, {', '.join(FORMATS)}")
    dataset_name = name or derived_name(source)
    if not NAME_PATTERN.match(dataset_name):
        raise VisionOpsError(
            f"--name {dataset_name!r}: use lower-case letters, digits, '-' and '_' (starting with a letter or digit)"
        )
    target = out or s.data_dir / "work" / f"{dataset_name}-import"
    import_dataset(source, target, dataset_name, fmt, images_dir=images, seed=seed,  # type: ignore[arg-type]
                   unlabeled=unlabeled, difficult=difficult, crowd=crowd)  # type: ignore[arg-type]
    report = read_import_report(target)
    if report is not None:
        console.print(report.render(), highlight=False)
    console.print(f"imported {source} as data set '{dataset_name}' into {target}; "
                  f"next: visionops data validate {target}")


@data_app.command("validate")
def data_validate(
    path: Annotated[Path, typer.Argument(help="Data set folder.")],
    report: Annotated[Path | None, typer.Option(help="Also write the full report as JSON here.")] = None,
) -> None:
    """Check every image and label (detection) or class folder (classification); lists all problems
    (file, line, fix) and fails if there are any."""
    from visionops.data.validation import validate

    r = validate(path)
    if report:
        report.write_text(json.dumps(r.to_dict(), indent=2))
    if r.ok:
        console.print(r.summary(), highlight=False)
        return
    err_console.print(r.summary(limit=50), highlight=False)
    raise DataValidationError(f"{len(r.problems)} problem(s) in {path}", report=r)


@data_app.command("register")
def data_register(
    path: Annotated[Path, typer.Argument(help="Data set folder (validated first).")],
    name: Annotated[str | None, typer.Option(
        help="Name (default: the name its import gave it, else VISIONOPS_DATASET_NAME).")] = None,
    backend: BackendOpt = None,
) -> None:
    """Validate, version by content hash, register (same content, same version) and make it the
    current data set: training, evaluation, deployment and the pipeline use it from now on."""
    from visionops.data.layout import MANIFEST
    from visionops.data.manifest import read_manifest
    from visionops.runner import Runner

    s = _settings(backend)
    if name is None and (Path(path) / MANIFEST).is_file():
        name = read_manifest(Path(path)).name
    ref = Runner(s).register_folder(path, name or s.dataset_name)
    console.print(f"registered {ref.name}:{ref.version} at {ref.path} (now the current data set)")


@data_app.command("list")
def data_list(backend: BackendOpt = None) -> None:
    """List registered data sets: name, version, counts, created; the current one is marked."""
    from visionops.workspace import get_workspace

    ws = get_workspace(_settings(backend))
    current = ws.current_dataset()
    table = Table("", "name", "version", "train", "val", "test", "classes", "created", "path")
    for r in ws.list_datasets():
        c = r.counts
        mark = "*" if current is not None and (r.name, r.version) == (current.name, current.version) else ""
        classes = ", ".join(r.classes[:4]) + (f" (+{len(r.classes) - 4})" if len(r.classes) > 4 else "")
        table.add_row(mark, r.name, r.version, *(str(c.get(s, {}).get("images", 0)) for s in ("train", "val", "test")),
                      classes, r.created, r.path)
    console.print(table)
    console.print("* the current data set (used when a command or notebook is not given one)" if current
                  else "no current data set: import one (visionops data import) and register it")


@data_app.command("export")
def data_export(
    path: Annotated[Path, typer.Argument(help="Data set folder.")],
    fmt: FormatOpt = "automl",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: <path>/export/<format>).")] = None,
    image_url_prefix: Annotated[str | None, typer.Option(help="AutoML: prefix for image_url (azureml://...).")] = None,
) -> None:
    """Export to COCO JSON, Pascal VOC or Azure ML AutoML-for-Images JSONL + MLTable."""
    from visionops.data import formats
    from visionops.data.kinds import data_kind

    if not data_kind(Path(path)).has_boxes:
        raise VisionOpsError(
            f"{path} is a classification data set: export writes detection formats (COCO, VOC, AutoML boxes); "
            "the folder-per-class layout is itself what Azure ML and Ultralytics read"
        )
    target = out or Path(path) / "export" / fmt
    if fmt == "coco":
        written = formats.export_coco(path, target)
    elif fmt == "voc":
        written = {"voc": formats.export_voc(path, target)}
    elif fmt == "automl":
        written = formats.export_automl(path, target, image_url_prefix=image_url_prefix)
    else:
        raise VisionOpsError(f"cannot export to {fmt!r}; choose coco, voc or automl")
    for key, p in written.items():
        console.print(f"{key}: {p}")


@data_app.command("stats")
def data_stats(
    path: Annotated[Path, typer.Argument(help="Data set folder.")],
    plots: Annotated[Path | None, typer.Option(help="Write the plots (PNG) into this folder.")] = None,
) -> None:
    """Images and boxes per split and class, box sizes (classification: images per class); optionally
    the plots."""
    from visionops.data import plots as dplots
    from visionops.data import stats
    from visionops.data.kinds import kind_for

    tables = stats.load_tables(path)
    console.print(stats.split_table(tables).to_string())
    console.print(stats.class_table(tables).to_string())
    console.print(json.dumps(stats.summary(tables), indent=2, default=str))
    if plots:
        plots.mkdir(parents=True, exist_ok=True)
        dplots.plot_class_counts(tables, save=plots / "class_counts.png")
        if kind_for(tables.task).has_boxes:
            dplots.plot_box_sizes(tables, save=plots / "box_sizes.png")
        dplots.plot_samples(path, save=plots / "samples.png")
        console.print(f"plots written to {plots}")
