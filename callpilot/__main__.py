"""`python -m callpilot` is the `callpilot` command."""

from callpilot.cli import main

main()
