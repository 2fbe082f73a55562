"""``python -m accord`` and the ``accord`` command.

The ``ssh`` of each ``sftp://`` place on the command line starts first,
before the command line interface (click, the commands) is imported: the
connection then takes shape while accord loads (see ``cli.main``, which
starts any not started here). The garbage collector waits meanwhile.
"""

import gc
import sys


def main() -> None:
    # the collector waits until the command's modules are imported (they
    # make no garbage worth a pass): cli._imports_done starts it again
    gc.disable()
    from accord.replicas.ssh_launch import start_early

    start_early(sys.argv[1:])
    from accord.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
