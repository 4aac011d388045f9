"""`pa` (the console script) and `python -m parallel_agents`.

`pa diff` is tried first without click (``_quick``: issue 14 §4); every other command,
and `pa diff` whenever that path cannot serve it, goes to the click group.
"""

import sys


def main() -> None:
    if sys.argv[1:2] == ["diff"]:
        from parallel_agents import _quick

        _quick.diff(sys.argv[2:])  # exits when it served the command
    from parallel_agents.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
