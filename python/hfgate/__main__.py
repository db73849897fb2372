"""``python -m hfgate ARGS``: runs the installed hfgate binary with ARGS, in this process.

For when the scripts directory is not on PATH (a Space, a ``--target`` install): the binary
replaces the interpreter (``os.execv``), so it gets the signals and its exit status is the
command's.
"""

import os
import sys

from . import HfgateNotFound, find_hfgate_bin


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    try:
        binary = find_hfgate_bin()
    except HfgateNotFound as e:
        sys.stderr.write("python -m hfgate: " + str(e) + "\n")
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(binary, [binary] + list(args))
    except OSError as e:
        sys.stderr.write("python -m hfgate: cannot run " + binary + ": " + e.strerror + "\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
