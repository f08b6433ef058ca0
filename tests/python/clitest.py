"""What every CLI test script shares: its arguments (BSATTN_BINARY SCRATCH_DIR, as ctest passes them), a
scratch folder of its own, and the list of failed checks, printed and turned into exit 1 at the end."""
import os
import subprocess
import sys


def cuda_build(binary):
    """Whether the binary was built with the CUDA kernels (`bench --list-kernels` answers only then)."""
    return subprocess.run([binary, "bench", "--list-kernels"], capture_output=True, text=True).returncode == 0


class CliTest:
    def __init__(self, name):
        self.bin = sys.argv[1]
        self.scratch = os.path.join(sys.argv[2], name)
        os.makedirs(self.scratch, exist_ok=True)
        self.failures = []

    def path(self, name):
        return os.path.join(self.scratch, name)

    def check(self, cond, what):
        if not cond:
            self.failures.append(what)
            print("FAIL:", what)

    def finish(self, ok_line):
        if self.failures:
            print("%d failure(s)" % len(self.failures))
            sys.exit(1)
        print(ok_line)
