"""`python -m gridkit.cli` runs the gridkit command."""

from gridkit.cli import main

main()
