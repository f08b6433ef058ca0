"""The PEP 517 backend of `pip install ./python`: standard library only, so that pip needs nothing
from a package index (no network on the GPU host; no scikit-build-core in Debian 12).

It puts the Python package and a built libbsattn.so into the wheel. The library is, in this order:
$BSATTN_LIBRARY; $BSATTN_BUILD_DIR/libbsattn.so; the newest build*/libbsattn.so of this checkout;
else CMake builds it here (cmake -S <checkout> -B <checkout>/build, target bsattn_capi; CUDA when nvcc
is found, as scripts/setup.sh builds)."""
import base64
import glob
import hashlib
import io
import os
import subprocess
import sys
import sysconfig
import zipfile

NAME, VERSION = "bsattn", "0.1.0"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # python/
ROOT = os.path.dirname(HERE)                                       # the checkout
METADATA = """Metadata-Version: 2.1
Name: {name}
Version: {version}
Summary: Block-sparse attention from PyTorch and NumPy over libbsattn
Requires-Python: >=3.8
Requires-Dist: numpy
""".format(name=NAME, version=VERSION)


def _library():
    env = os.environ.get("BSATTN_LIBRARY")
    if env:
        if not os.path.isfile(env):
            raise RuntimeError("BSATTN_LIBRARY=%s is not a file" % env)
        return env
    build = os.environ.get("BSATTN_BUILD_DIR")
    if build:
        path = os.path.join(build, "libbsattn.so")
        if not os.path.isfile(path):
            raise RuntimeError("BSATTN_BUILD_DIR=%s has no libbsattn.so (cmake --build %s --target bsattn_capi)"
                               % (build, build))
        return path
    built = sorted(glob.glob(os.path.join(ROOT, "build*", "libbsattn.so")), key=os.path.getmtime, reverse=True)
    if built:
        return built[0]
    build = os.path.join(ROOT, "build")
    sys.stderr.write("bsattn: no libbsattn.so built yet; building it with CMake in %s\n" % build)
    subprocess.check_call(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DBSATTN_TESTS=OFF"],
                          stdout=sys.stderr)
    subprocess.check_call(["cmake", "--build", build, "--target", "bsattn_capi", "-j%d" % (os.cpu_count() or 2)],
                          stdout=sys.stderr)
    return os.path.join(build, "libbsattn.so")


def _tag():
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return "py3-none-" + plat


class _Wheel:
    def __init__(self, directory, tag):
        self.name = "%s-%s-%s.whl" % (NAME, VERSION, tag)
        self.path = os.path.join(directory, self.name)
        self.zip = zipfile.ZipFile(self.path, "w", zipfile.ZIP_DEFLATED)
        self.records = []
        self.tag = tag

    def add(self, arcname, data, mode=0o644):
        info = zipfile.ZipInfo(arcname, date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = (mode | 0o100000) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        self.records.append("%s,sha256=%s,%d" % (arcname, digest, len(data)))

    def close(self):
        info = "%s-%s.dist-info" % (NAME, VERSION)
        self.add(info + "/METADATA", METADATA.encode())
        self.add(info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: bsattn_build\nRoot-Is-Purelib: false\nTag: %s\n"
                                   % self.tag).encode())
        self.records.append(info + "/RECORD,,")
        self.zip.writestr(info + "/RECORD", "\n".join(self.records) + "\n")
        self.zip.close()
        return self.name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    lib = _library()
    w = _Wheel(wheel_directory, _tag())
    for path in sorted(glob.glob(os.path.join(HERE, NAME, "*.py"))):
        with open(path, "rb") as f:
            w.add(NAME + "/" + os.path.basename(path), f.read())
    with open(lib, "rb") as f:
        w.add(NAME + "/libbsattn.so", f.read(), 0o755)
    return w.close()


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # The package stays in python/ (a .pth file points there); it finds the checkout's build*/libbsattn.so
    # at import, or $BSATTN_LIBRARY.
    w = _Wheel(wheel_directory, _tag())
    w.add("bsattn_editable.pth", (HERE + "\n").encode())
    return w.close()
