"""Read a :class:`~explorer.models.pictures.PictureSet` from a folder of class folders.

The layout of torchvision's ``ImageFolder``: one sub-folder per class, named after it, with
that class's pictures inside (``cats/1.jpg``, ``dogs/a.png`` …). Files with other extensions
and hidden entries are skipped, as ``ImageFolder`` does; sizes are checked before a file is
read, and every picture is decoded once by the safe reader, so a bad file is named.
"""

from __future__ import annotations

import os
from pathlib import Path

from explorer.models.pictures import (
    MAX_CLASSES,
    MAX_PER_CLASS,
    MAX_PICTURE_MB,
    MAX_TOTAL_MB,
    Picture,
    PictureError,
    PictureSet,
    picture_set,
)

__all__ = ["IMAGE_EXTENSIONS", "read_folder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
"""The picture files ``ImageFolder`` reads."""
_MAX_ENTRIES = 10 * MAX_PER_CLASS  # entries listed in one folder before giving up


def read_folder(folder: str | os.PathLike[str]) -> PictureSet:
    """The pictures of ``folder``'s class folders.

    Raises:
        PictureError: No such folder, too few or too many class folders, a class with too
            few or too many pictures, a file too big or not a picture (named).
    """
    root = Path(folder)
    if not root.is_dir():
        raise PictureError(f"{root}: not a folder")
    class_dirs = _listing(root, want_dirs=True)
    if not class_dirs:
        raise PictureError(f"{root}: no class folders inside (give one sub-folder per class)")
    if len(class_dirs) > MAX_CLASSES:
        raise PictureError(f"{root}: {len(class_dirs)} class folders, at most {MAX_CLASSES}")
    classes: dict[str, list[Picture]] = {}
    total = 0
    for class_dir in class_dirs:
        files = _listing(class_dir, want_dirs=False)
        if len(files) > MAX_PER_CLASS:
            raise PictureError(
                f"{class_dir}: {len(files)} pictures, at most {MAX_PER_CLASS} a class"
            )
        pictures = []
        for file in files:
            size = file.stat().st_size
            if size > MAX_PICTURE_MB * 1024 * 1024:
                raise PictureError(f"{file}: over {MAX_PICTURE_MB} MB")
            total += size
            if total > MAX_TOTAL_MB * 1024 * 1024:
                raise PictureError(f"{root}: the pictures are over {MAX_TOTAL_MB} MB together")
            pictures.append(Picture(str(file), file.read_bytes()))
        classes[class_dir.name] = pictures
    return picture_set(classes, where=f"{root}{os.sep}")


def _listing(folder: Path, want_dirs: bool) -> list[Path]:
    """Sorted sub-folders (or picture files) of ``folder``, hidden entries skipped."""
    found = []
    with os.scandir(folder) as entries:
        for count, entry in enumerate(entries):
            if count >= _MAX_ENTRIES:
                raise PictureError(f"{folder}: over {_MAX_ENTRIES} entries")
            if entry.name.startswith("."):
                continue
            if (want_dirs and entry.is_dir()) or (
                not want_dirs and entry.is_file() and entry.name.lower().endswith(IMAGE_EXTENSIONS)
            ):
                found.append(Path(entry.path))
    return sorted(found)
