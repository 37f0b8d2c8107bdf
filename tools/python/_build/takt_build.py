# SPDX-License-Identifier: MIT
"""A minimal PEP 517 / PEP 660 build backend, standard library only.

It packs src/takt_peer into a pure-Python wheel (and an sdist), so that
`pip install tools/python` needs neither network nor setuptools.  The
project's metadata comes from pyproject.toml's [project] table (name,
version, description, requires-python); only what this package uses is
supported.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = "takt_peer"


def _meta():
    text = open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8").read()
    proj = text.split("[project]", 1)[1]
    def get(key):
        m = re.search(r'^%s\s*=\s*"([^"]*)"' % key, proj, re.M)
        return m.group(1) if m else None
    return {"name": get("name"), "version": get("version"), "summary": get("description"),
            "requires_python": get("requires-python")}


def _dist(meta):
    return meta["name"].replace("-", "_")


def _metadata_text(meta):
    lines = ["Metadata-Version: 2.1", "Name: %s" % meta["name"], "Version: %s" % meta["version"]]
    if meta["summary"]:
        lines.append("Summary: %s" % meta["summary"])
    if meta["requires_python"]:
        lines.append("Requires-Python: %s" % meta["requires_python"])
    lines.append("License: MIT")
    readme = os.path.join(ROOT, "README.md")
    body = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        body = "\n" + open(readme, encoding="utf-8").read()
    return "\n".join(lines) + "\n" + body


WHEEL_TEXT = "Wheel-Version: 1.0\nGenerator: takt_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _sources():
    base = os.path.join(ROOT, "src")
    for dirpath, dirnames, filenames in os.walk(os.path.join(base, PKG)):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for f in sorted(filenames):
            if f.endswith(".py") or f == "py.typed":
                full = os.path.join(dirpath, f)
                yield full, os.path.relpath(full, base).replace(os.sep, "/")


def _write_wheel(directory, files, meta):
    dist, ver = _dist(meta), meta["version"]
    name = "%s-%s-py3-none-any.whl" % (dist, ver)
    info = "%s-%s.dist-info" % (dist, ver)
    files = list(files) + [
        ("%s/METADATA" % info, _metadata_text(meta).encode("utf-8")),
        ("%s/WHEEL" % info, WHEEL_TEXT.encode()),
        ("%s/top_level.txt" % info, (PKG + "\n").encode()),
    ]
    record = []
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in files:
            z.writestr(zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0)), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append("%s,sha256=%s,%d" % (arc, digest, len(data)))
        record.append("%s/RECORD,," % info)
        z.writestr(zipfile.ZipInfo("%s/RECORD" % info, date_time=(2020, 1, 1, 0, 0, 0)),
                   "\n".join(record) + "\n")
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = [(arc, open(full, "rb").read()) for full, arc in _sources()]
    return _write_wheel(wheel_directory, files, _meta())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = (os.path.join(ROOT, "src") + "\n").encode()
    return _write_wheel(wheel_directory, [("%s_editable.pth" % PKG, pth)], _meta())


def build_sdist(sdist_directory, config_settings=None):
    meta = _meta()
    base = "%s-%s" % (_dist(meta), meta["version"])
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as t:
        for rel in ["pyproject.toml", "README.md"]:
            t.add(os.path.join(ROOT, rel), "%s/%s" % (base, rel))
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "_build")):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for f in filenames:
                if f.endswith(".py"):
                    full = os.path.join(dirpath, f)
                    t.add(full, "%s/%s" % (base, os.path.relpath(full, ROOT)))
        for full, arc in _sources():
            t.add(full, "%s/src/%s" % (base, arc))
        data = _metadata_text(meta).encode()
        ti = tarfile.TarInfo("%s/PKG-INFO" % base)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    return name
