"""`python -m visionops.cli`: the `visionops` command where it is not installed."""

from visionops.cli import main

main()
