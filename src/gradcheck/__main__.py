"""Run the command-line tool: ``python -m gradcheck``."""

from ._cli import main

if __name__ == "__main__":
    main()
