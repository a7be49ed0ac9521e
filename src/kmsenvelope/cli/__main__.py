"""``python -m kmsenvelope.cli``: the same as the ``kmsenvelope`` console script."""

from . import main

main()
